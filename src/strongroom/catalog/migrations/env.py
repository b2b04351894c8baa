"""Alembic environment: runs on the connection :mod:`strongroom.catalog.migrate` hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from strongroom.catalog.models import Base


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    connection = context.config.attributes.get("connection")
    if context.is_offline_mode() or not isinstance(connection, Connection):
        raise RuntimeError(
            "strongroom migrations run online on a connection given by "
            "strongroom.catalog.migrate; alembic.ini and offline mode are not supported"
        )
    _run(connection)


_main()
