"""The packaged schema revisions, read from the migration files with the standard library.

Kept apart from :mod:`strongroom.catalog.migrate` (which imports SQLAlchemy) so that a
command which only needs to know the packaged head revision (the embedded catalog's
fast vault lookup, :mod:`strongroom.catalog.embedded`) loads neither SQLAlchemy nor
Alembic.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

MIGRATIONS_DIR: Final = Path(__file__).with_name("migrations")
"""The Alembic migrations packaged with strongroom."""

_REVISION_LINE: Final = re.compile(
    r"^(revision|down_revision)\s*(?::[^=]*)?=\s*['\"]([0-9a-zA-Z_]+)['\"]", re.M
)


def packaged_head() -> str | None:
    """Read the head revision from the migration files without importing Alembic.

    Returns None when the files do not describe one linear history (then callers ask
    Alembic, which knows every rule).
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        for kind, value in _REVISION_LINE.findall(path.read_text(encoding="utf-8")):
            (revisions if kind == "revision" else parents).add(value)
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None
