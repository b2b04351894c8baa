"""Reads of the embedded SQLite catalog with the standard library, for commands that must
start fast.

Loading SQLAlchemy and the catalog models costs more than half a second per command. A
``vault`` command only needs one row (the vault's settings), so when the catalog is the
embedded SQLite file at the packaged schema revision, :func:`vault_settings_without_sqlalchemy`
reads that row with :mod:`sqlite3`. Any other case (PostgreSQL, a file not yet migrated,
anything unexpected) answers None and the caller opens the catalog as usual.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from strongroom.catalog.revisions import packaged_head

CATALOG_FILE: Final = "catalog.db"
"""The embedded catalog's file in the home folder."""
_SQLITE_PREFIX: Final = "sqlite:///"
_SQLITE_TIMEOUT_SECONDS: Final = 30.0


@dataclass(frozen=True, slots=True)
class VaultRow:
    """What :func:`vault_settings_without_sqlalchemy` found: the vault's stored settings,
    or None when the catalog has no vault of that name, and its lock mode (None: unlocked)."""

    settings: Any | None
    lock_mode: str | None = None


def vault_settings_without_sqlalchemy(
    home: Path, catalog_url: str | None, name: str
) -> VaultRow | None:
    """Read vault ``name``'s settings from the embedded SQLite catalog without SQLAlchemy.

    Given the home folder and the catalog URL (None: the embedded default). Returns None
    when this cannot answer for sure, and the caller must ask the catalog: the catalog is
    not a SQLite file (or not one this recognises), the file does not exist, its schema is
    not the packaged head revision (the catalog would migrate it first), or reading fails
    in any way. Never writes, never creates the file.
    """
    path = sqlite_catalog_file(home, catalog_url)
    head = packaged_head()
    if path is None or head is None or not path.is_file():
        return None
    try:
        connection = sqlite3.connect(
            f"{path.absolute().as_uri()}?mode=ro",
            uri=True,
            timeout=_SQLITE_TIMEOUT_SECONDS,
            isolation_level=None,
        )
        with closing(connection):
            connection.execute("BEGIN")  # one read transaction: version and row agree
            versions = [
                row[0] for row in connection.execute("SELECT version_num FROM alembic_version")
            ]
            if versions != [head]:
                return None
            row = connection.execute(
                "SELECT settings, lock_mode FROM vaults WHERE name = ?", (name,)
            ).fetchone()
        if row is None:
            return VaultRow(None)
        settings = json.loads(row[0]) if isinstance(row[0], str | bytes) else None
    except (sqlite3.Error, ValueError):
        return None
    lock_mode = row[1] if isinstance(row[1], str) else None
    return VaultRow(settings, lock_mode) if isinstance(settings, dict) else None


def sqlite_catalog_file(home: Path, catalog_url: str | None) -> Path | None:
    """The SQLite file of a catalog: ``HOME/catalog.db`` by default, or the path of a
    plain ``sqlite:///PATH`` URL; None for anything else."""
    if catalog_url is None:
        return home / CATALOG_FILE
    path = catalog_url.removeprefix(_SQLITE_PREFIX)
    if path == catalog_url or not path or path == ":memory:" or any(c in path for c in "?#%"):
        return None
    return Path(path)
