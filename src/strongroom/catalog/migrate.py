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

from typing import TYPE_CHECKING, Final

from sqlalchemy import Engine, create_engine, func, inspect, select, text
from sqlalchemy.engine import Connection

from strongroom.catalog.revisions import MIGRATIONS_DIR, packaged_head

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATION_LOCK_KEY: Final = 0x53524D47  # "SRMG": strongroom migrations
"""PostgreSQL advisory lock key held while migrating."""


def alembic_config(connection: Connection | None = None) -> Config:
    """Return an Alembic configuration for the packaged migrations, bound to ``connection``."""
    from alembic.config import Config  # imported on demand: alembic is slow to import

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """Return the newest revision of the packaged migrations."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def current_revision(engine: Engine) -> str | None:
    """Return the revision the database is at (``None`` for an empty database)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def is_current(engine: Engine) -> bool:
    """Tell, cheaply, whether the database already is at the packaged head revision."""
    head = packaged_head()
    if head is None:
        return False
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return False
        versions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars()
        return list(versions) == [head]


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to ``revision`` (default: the newest) in one locked transaction.

    Opening an up-to-date catalog costs one query: Alembic is imported only to migrate.
    """
    if revision == "head" and is_current(engine):
        return
    from alembic import command

    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(select(func.pg_advisory_xact_lock(MIGRATION_LOCK_KEY)))
        command.upgrade(alembic_config(connection), revision)


def new_revision(url: str, message: str) -> None:
    """Autogenerate a revision file from the difference between ``models.py`` and ``url``.

    ``url`` should name a scratch database; it is first upgraded to the current head.
    A developer tool, never called at run time.
    """
    from alembic import command

    engine = create_engine(url)
    try:
        upgrade(engine)
        with engine.begin() as connection:
            command.revision(alembic_config(connection), message=message, autogenerate=True)
    finally:
        engine.dispose()
