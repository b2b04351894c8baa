"""Infrastructure layer: the SQLAlchemy catalog of resources, plans, jobs and recovery points, with Alembic migrations.

Open it with :func:`open_catalog`; take a one-transaction session with
:meth:`Catalog.session` and call the repository functions of ``jobs``, ``points``,
``failures``, ``events`` and ``resources`` with it. See ``docs/catalog.md``.
"""

from strongroom.catalog.database import Catalog, open_catalog
from strongroom.catalog.types import JobKind, JobState, PointState, Tier

__all__ = ["Catalog", "JobKind", "JobState", "PointState", "Tier", "open_catalog"]
