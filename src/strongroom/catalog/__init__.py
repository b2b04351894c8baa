"""Infrastructure layer: the SQLAlchemy catalog of resources, plans, jobs and recovery points, with Alembic migrations.

Open it with :func:`open_catalog`; take a one-transaction session with
:meth:`Catalog.session` and call the repository functions of ``jobs``, ``points``,
``failures``, ``events`` and ``resources`` with it. See ``docs/catalog.md``.

The package imports its parts on first use of a name, so that
:mod:`strongroom.catalog.embedded` (standard library only) can be read without loading
SQLAlchemy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from strongroom.catalog.database import Catalog, open_catalog
    from strongroom.catalog.types import JobKind, JobState, PointState, Tier

_HOMES = {
    "Catalog": "strongroom.catalog.database",
    "open_catalog": "strongroom.catalog.database",
    "JobKind": "strongroom.catalog.types",
    "JobState": "strongroom.catalog.types",
    "PointState": "strongroom.catalog.types",
    "Tier": "strongroom.catalog.types",
}
"""Where each public name lives (imported on first use, as in ``strongroom.vault``)."""


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


__all__ = ["Catalog", "JobKind", "JobState", "PointState", "Tier", "open_catalog"]
