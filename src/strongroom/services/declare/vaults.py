"""What apply does outside the catalog transaction: vault stores and the catalog to use.

A vault that is new to the catalog (or whose URL or key changed) is opened in its store
with its configured key before the catalog transaction starts — created there when the
store holds no vault yet, adopted when it does — so the key is known to work before the
vault is registered. A store is never written while the catalog is locked.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from strongroom.config.models import CatalogConfig
from strongroom.config.secrets import resolve_secret
from strongroom.config.vaults import KeyFileKey, VaultConfig
from strongroom.errors import ConfigError, SecretError, StrongroomError
from strongroom.services.context import AppContext
from strongroom.services.vaults.keyref import key_provider
from strongroom.services.vaults.stores import open_or_create_vault, open_vault_store
from strongroom.storage.open import redact_url

ErrorT = TypeVar("ErrorT", bound=StrongroomError)


def reworded(error: ErrorT, message: str) -> ErrorT:
    """Return an error of the same class, hint and retryability with another message."""
    return type(error)(message, hint=error.hint, retryable=error.retryable)


@dataclass(frozen=True, slots=True)
class PreparedVault:
    """A vault store checked before apply: ``created`` when apply made the vault there."""

    name: str
    url: str
    vault_id: str
    created: bool


def prepare_vault_store(context: AppContext, name: str, config: VaultConfig) -> PreparedVault:
    """Open vault ``name`` in its store with its key, creating it there if absent.

    A key file that does not exist yet is generated when the store is empty. Raises the error of the failing step
    with the vault's name and URL in the message: ``SecretError`` naming the reference
    when the passphrase does not resolve, ``WrongKeyError`` when the key does not open
    the vault already at the URL, ``UnsupportedError`` for a store strongroom cannot open.
    """
    where = f"vault {name!r} at {redact_url(config.url)}"
    try:
        store = open_vault_store(config.url, config.s3)
        key = config.key
        # A new key file is generated only for a new vault, never beside an existing one.
        if (
            isinstance(key, KeyFileKey)
            and not Path(key.path).exists()
            and next(iter(store.list()), None) is not None
        ):
            raise SecretError(
                f"the key file {key.path} does not exist and the store already holds data",
                hint="Put the vault's key file at that path, or fix key.path.",
            )
        provider = key_provider(key, create_key_file=True)
        vault, created = open_or_create_vault(
            store, provider, config, cache_dir=context.cache_dir, label="initial"
        )
        with vault:
            description = vault.describe()
    except StrongroomError as error:
        raise reworded(error, f"{where}: {error.message}") from error
    return PreparedVault(name, config.url, description.vault_id, created)


def prepare_vault_stores(
    context: AppContext, vaults: dict[str, VaultConfig]
) -> dict[str, PreparedVault]:
    """Prepare every vault given; raise one error naming each vault that failed.

    The error is the first failure's class, its message lists every failure.
    """
    prepared: dict[str, PreparedVault] = {}
    failures: list[StrongroomError] = []
    for name, config in sorted(vaults.items()):
        try:
            prepared[name] = prepare_vault_store(context, name, config)
        except StrongroomError as error:
            failures.append(error)
    if len(failures) == 1:
        raise failures[0]
    if failures:
        lines = [f"{len(failures)} vaults cannot be prepared; nothing was applied:"]
        raise reworded(failures[0], "\n".join(lines + [error.message for error in failures]))
    return prepared


def use_declared_catalog(context: AppContext, catalog: CatalogConfig) -> None:
    """Point ``context`` at the catalog a configuration declares, unless one was given.

    ``--catalog`` / ``STRONGROOM_CATALOG_URL`` win; otherwise ``catalog.url`` of the file
    is used, with the password its ``catalog.password`` reference resolves to. Raises
    ``SecretError`` when that reference does not resolve.
    """
    if context.catalog_url is not None or catalog.url is None:
        return
    url = catalog.url
    if catalog.password is not None:
        try:
            parsed = make_url(url)
        except (ArgumentError, ValueError) as error:
            raise ConfigError(f"catalog.url is not a database URL: {error}") from None
        url = parsed.set(password=resolve_secret(catalog.password)).render_as_string(
            hide_password=False
        )
    context.catalog_url = url
