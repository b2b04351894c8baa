"""Schema migrations, run from code: no ``alembic.ini`` is needed at run time.

:func:`upgrade` brings a database to the newest revision; it runs inside one transaction
that also serialises concurrent openers (an advisory lock on PostgreSQL, ``BEGIN
IMMEDIATE`` on SQLite), so two processes starting at once cannot both create the tables.

To add a revision after changing ``models.py``::

    .venv/bin/python -c "from strongroom.catalog.migrate import new_revision; \\
        new_revision('sqlite:////tmp/scratch.db', 'add a column')"

then read and tidy the generated file under ``migrations/versions``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.engine import Connection

MIGRATIONS_DIR: Final = Path(__file__).with_name("migrations")
MIGRATION_LOCK_KEY: Final = 0x53524D47  # "SRMG": strongroom migrations
"""PostgreSQL advisory lock key held while migrating."""


def alembic_config(connection: Connection | None = None) -> Config:
    """Return an Alembic configuration for the packaged migrations, bound to ``connection``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """Return the newest revision of the packaged migrations."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def current_revision(engine: Engine) -> str | None:
    """Return the revision the database is at (``None`` for an empty database)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to ``revision`` (default: the newest) in one locked transaction."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(select(func.pg_advisory_xact_lock(MIGRATION_LOCK_KEY)))
        command.upgrade(alembic_config(connection), revision)


def new_revision(url: str, message: str) -> None:
    """Autogenerate a revision file from the difference between ``models.py`` and ``url``.

    ``url`` should name a scratch database; it is first upgraded to the current head.
    A developer tool, never called at run time.
    """
    engine = create_engine(url)
    try:
        upgrade(engine)
        with engine.begin() as connection:
            command.revision(alembic_config(connection), message=message, autogenerate=True)
    finally:
        engine.dispose()
