"""Catalog-wide settings a configuration declares: the concurrency limits.

The configuration's ``concurrency`` section (``global``, ``per_vault``,
``per_resource_type``) becomes the :class:`~strongroom.catalog.settings.ConcurrencyLimits`
every executor's claim reads from the catalog. ``apply`` compares and writes them in its
one transaction. A catalog that never stored limits is compared as if it held the
configuration's defaults, so a first ``apply`` without a ``concurrency`` section shows no
change (it still stores them: nothing can run before an ``apply`` declared resources).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from sqlalchemy.orm import Session

from strongroom.catalog.settings import (
    ConcurrencyLimits,
    read_concurrency_limits,
    write_concurrency_limits,
)
from strongroom.config.models import ConcurrencyConfig
from strongroom.errors import ConfigError

DAMAGED: Final = "(unreadable in the catalog)"
"""How a diff names limits the catalog holds but cannot read (apply replaces them)."""


def concurrency_limits(config: ConcurrencyConfig) -> ConcurrencyLimits:
    """Return the engine's limits for a configuration's ``concurrency`` section."""
    return ConcurrencyLimits(
        max_running=config.global_,
        per_vault_default=config.per_vault,
        per_resource_type={str(kind): limit for kind, limit in config.per_resource_type.items()},
    )


def limits_as_config(limits: ConcurrencyLimits) -> dict[str, Any]:
    """Return limits under the configuration's names (what a diff shows)."""
    return {
        "global": limits.max_running,
        "per_vault": limits.per_vault_default,
        "per_resource_type": dict(sorted(limits.per_resource_type.items())),
    }


def default_limits() -> ConcurrencyLimits:
    """Return the limits of a configuration without a ``concurrency`` section."""
    return concurrency_limits(ConcurrencyConfig())


def write_limits(session: Session, declared: ConcurrencyLimits, at: datetime) -> None:
    """Store ``declared`` unless the catalog already holds exactly these limits."""
    try:
        stored = read_concurrency_limits(session)
    except ConfigError:
        stored = None
    if stored != declared:
        write_concurrency_limits(session, declared, at=at)
