"""Vaults as the catalog records them: by name, with the configuration they were declared with.

A vault row keeps the same ``VaultConfig`` model a config file declares (URL, key
*setting* — never the key — chunking, compression, lock, cold tier). Looking a vault up
by name does not load the catalog when the catalog is the embedded SQLite file at the
packaged schema revision (:mod:`strongroom.catalog.embedded` reads the one row with the
standard library); any other case goes through the catalog.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from strongroom.catalog.embedded import vault_settings_without_sqlalchemy
from strongroom.config.vaults import VaultConfig
from strongroom.errors import ConfigError, NotFoundError
from strongroom.services.context import AppContext

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


def register_vault(session: Session, name: str, config: VaultConfig, at: datetime) -> None:
    """Record vault ``name`` and its configuration in the catalog (insert or update)."""
    from strongroom.catalog.resources import upsert_vault

    lock = config.lock
    upsert_vault(
        session,
        name=name,
        url=config.url,
        at=at,
        settings=config.model_dump(mode="json"),
        lock_mode=lock.mode if lock else None,
        lock_min_retention_days=lock.min_retention_days if lock else None,
        lock_max_retention_days=lock.max_retention_days if lock else None,
    )


def registered_config(session: Session, name: str) -> VaultConfig:
    """Return the configuration of vault ``name``; raises ``NotFoundError``."""
    from strongroom.catalog.resources import get_vault

    try:
        row = get_vault(session, name)
    except NotFoundError as error:
        raise no_vault(name) from error
    return _parse_settings(name, row.settings)


def vault_config(context: AppContext, name: str) -> VaultConfig:
    """Return the registered configuration of vault ``name``; raises ``NotFoundError``.

    Reads the embedded catalog file directly when it can, else opens the catalog.
    """
    found = vault_settings_without_sqlalchemy(context.home, context.catalog_url, name)
    if found is None:
        with context.catalog.session(readonly=True) as session:
            return registered_config(session, name)
    if found.settings is None:
        raise no_vault(name)
    return _parse_settings(name, found.settings)


def unlocked_without_catalog(context: AppContext, name: str) -> bool:
    """Tell whether the embedded catalog file says, read without SQLAlchemy, that vault
    ``name`` has no lock (False: locked, or not known without opening the catalog)."""
    found = vault_settings_without_sqlalchemy(context.home, context.catalog_url, name)
    return found is not None and found.settings is not None and found.lock_mode is None


def no_vault(name: str) -> NotFoundError:
    """The error for a vault name the catalog does not know."""
    return NotFoundError(
        f"no vault named {name!r}",
        hint="Create it with 'strongroom vault create NAME --url URL ...' or declare it "
        "in a config file and run 'strongroom apply'.",
    )


def _parse_settings(name: str, settings: Any) -> VaultConfig:
    try:
        return VaultConfig.model_validate(settings)
    except ValidationError as error:
        raise ConfigError(f"the catalog's record of vault {name!r} is not valid: {error}") from None
