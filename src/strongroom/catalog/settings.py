"""Catalog-wide settings that ``apply`` declares and every worker reads: concurrency limits.

The ``settings`` table holds one JSON value per name. ``apply`` writes the configuration's
``concurrency`` section as :class:`ConcurrencyLimits` (:func:`write_concurrency_limits`);
each claim reads it back in its own transaction (:func:`read_concurrency_limits`), so an
``apply`` reaches every daemon and ``--wait`` process sharing the catalog at its next
claim, without a restart. A catalog where nothing was applied has no row: no limits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from sqlalchemy.orm import Session

from strongroom.catalog.models import Setting
from strongroom.errors import ConfigError

CONCURRENCY: Final = "concurrency"
"""The name of the concurrency limits' row in ``settings``."""


@dataclass(frozen=True)
class ConcurrencyLimits:
    """How many jobs may be RUNNING at once across every worker sharing the catalog.

    ``None`` means no limit. Per-vault and per-resource-type limits are looked up by
    name, falling back to the ``*_default``. Whatever the limits, one resource never has
    two backups RUNNING at once.
    """

    max_running: int | None = None
    per_vault: Mapping[str, int] = field(default_factory=dict)
    per_vault_default: int | None = None
    per_resource_type: Mapping[str, int] = field(default_factory=dict)
    per_resource_type_default: int | None = None

    def __post_init__(self) -> None:
        limits = [
            self.max_running,
            self.per_vault_default,
            self.per_resource_type_default,
            *self.per_vault.values(),
            *self.per_resource_type.values(),
        ]
        if any(limit is not None and limit < 1 for limit in limits):
            raise ValueError(f"concurrency limits must be at least 1 (or None): {self}")

    def vault_limit(self, vault: str) -> int | None:
        """Return the limit for one vault, or ``None``."""
        return self.per_vault.get(vault, self.per_vault_default)

    def resource_type_limit(self, resource_type: str) -> int | None:
        """Return the limit for one resource type, or ``None``."""
        return self.per_resource_type.get(resource_type, self.per_resource_type_default)

    def as_json(self) -> dict[str, Any]:
        """Return the limits as stored in the catalog (and shown by ``apply``)."""
        return {
            "max_running": self.max_running,
            "per_vault": dict(sorted(self.per_vault.items())),
            "per_vault_default": self.per_vault_default,
            "per_resource_type": dict(sorted(self.per_resource_type.items())),
            "per_resource_type_default": self.per_resource_type_default,
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> ConcurrencyLimits:
        """Read limits written by :meth:`as_json`; raises ConfigError for anything else."""
        try:
            return cls(
                max_running=_limit(value.get("max_running")),
                per_vault=_limits(value.get("per_vault")),
                per_vault_default=_limit(value.get("per_vault_default")),
                per_resource_type=_limits(value.get("per_resource_type")),
                per_resource_type_default=_limit(value.get("per_resource_type_default")),
            )
        except (TypeError, ValueError) as error:
            raise ConfigError(
                f"the catalog's concurrency limits are damaged: {value!r} ({error})",
                hint="Run 'strongroom apply -f CONFIG' again to store them afresh.",
            ) from error


def _limit(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"a limit is an integer, not {value!r}")
    return value


def _limits(value: Any) -> dict[str, int]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"limits by name are a mapping, not {value!r}")
    return {str(name): limit for name, raw in value.items() if (limit := _limit(raw)) is not None}


def read_concurrency_limits(session: Session) -> ConcurrencyLimits | None:
    """Return the limits ``apply`` stored, or ``None`` when none were stored.

    Raises ConfigError when the stored value cannot be read.
    """
    row = session.get(Setting, CONCURRENCY, populate_existing=True)
    return None if row is None else ConcurrencyLimits.from_json(row.value)


def write_concurrency_limits(session: Session, limits: ConcurrencyLimits, *, at: datetime) -> None:
    """Store ``limits`` for every worker sharing the catalog (replacing any stored ones)."""
    row = session.get(Setting, CONCURRENCY)
    if row is None:
        session.add(Setting(name=CONCURRENCY, value=limits.as_json(), updated_at=at))
    else:
        row.value = limits.as_json()
        row.updated_at = at
    session.flush()
