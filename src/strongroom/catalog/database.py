"""Opening the catalog: SQLite under the home folder by default, or PostgreSQL by URL.

:func:`open_catalog` builds the engine, checks that the database answers, and brings the
schema to the newest migration. :class:`Catalog` hands out sessions, each one a single
transaction, and translates database failures into strongroom's error tree.

SQLite runs in WAL mode with foreign keys on and a busy timeout; its write transactions
start with ``BEGIN IMMEDIATE`` so that two writers queue for the lock up front instead of
one failing half way (a deferred transaction that reads, then writes, can lose the race
with no retry). Threads of one process also queue on a lock of the :class:`Catalog`
before they begin a write: SQLite's busy handler makes a waiting writer sleep in steps of
up to 100 ms, which caps a thread pool of workers at a few commits a second, while a
released lock wakes the next thread at once (writers of other processes still queue in
SQLite). PostgreSQL uses the psycopg 3 driver.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Engine, create_engine, event, exc, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.orm import Session, sessionmaker

from strongroom.catalog.embedded import CATALOG_FILE
from strongroom.catalog.migrate import upgrade
from strongroom.errors import (
    AccessDeniedError,
    ConfigError,
    ConflictError,
    NotFoundError,
    ServiceUnavailableError,
)
from strongroom.logs import get_logger, mask, register_secret

SQLITE_BUSY_TIMEOUT_SECONDS: Final = 30.0
POSTGRES_CONNECT_TIMEOUT_SECONDS: Final = 10

_logger = get_logger(__name__)
_BEGIN_OPTION: Final = "strongroom_sqlite_begin"
_AUTH_FAILED: Final = frozenset({"28P01", "28000"})
_NO_DATABASE: Final = "3D000"


class Catalog:
    """An open catalog: an engine plus a factory of one-transaction sessions.

    Safe to share between threads; every thread takes its own sessions.
    """

    def __init__(self, engine: Engine, url: URL) -> None:
        self.engine = engine
        self.display_url = url.render_as_string(hide_password=True)
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(
            engine.execution_options(**{_BEGIN_OPTION: "DEFERRED"}), expire_on_commit=False
        )
        # Re-entrant: a thread that nests a write session in another one blocks in SQLite
        # (and times out there) exactly as it did without this lock.
        self._writers = threading.RLock() if engine.dialect.name == "sqlite" else None

    @property
    def dialect(self) -> str:
        """The database in use: ``"sqlite"`` or ``"postgresql"``."""
        return self.engine.dialect.name

    @contextmanager
    def session(self, *, readonly: bool = False) -> Iterator[Session]:
        """Yield a session whose work commits when the block ends and rolls back on error.

        ``readonly`` sessions on SQLite do not take the write lock. Raises
        ServiceUnavailableError (retryable) when the database cannot be reached or stays
        locked, ConflictError when a constraint refuses the change.
        """
        maker = self._read_sessions if readonly else self._sessions
        writers = None if readonly else self._writers
        # After the timeout the session goes ahead and SQLite's own busy timeout decides.
        if writers is not None and not writers.acquire(timeout=SQLITE_BUSY_TIMEOUT_SECONDS):
            writers = None  # not acquired: nothing to release
        try:
            with maker() as session:
                try:
                    with session.begin():
                        yield session
                except exc.IntegrityError as error:
                    raise ConflictError(
                        f"the catalog refused the change: {_reason(error)}"
                    ) from error
                except (exc.OperationalError, exc.InterfaceError) as error:
                    raise ServiceUnavailableError(
                        f"the catalog at {self.display_url} failed: {_reason(error)}"
                    ) from error
        finally:
            if writers is not None:
                writers.release()

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Catalog({self.display_url!r})"


def open_catalog(url: str | None, home: Path, *, migrate: bool = True) -> Catalog:
    """Open (and by default migrate) the catalog.

    Given ``None`` it opens ``HOME/catalog.db`` (creating the folder); given
    ``sqlite:///path`` a SQLite file; given ``postgresql://…`` (or ``postgres://``,
    ``postgresql+psycopg://``) a PostgreSQL database through psycopg 3.

    Raises ConfigError for a URL that is malformed or names another database;
    ServiceUnavailableError (retryable) when the server does not answer, naming the host
    but never the password; AccessDeniedError when credentials are refused;
    NotFoundError when the PostgreSQL database does not exist.
    """
    sa_url = catalog_url(url, home)
    engine = _create_engine(sa_url)
    try:
        _check_connection(engine, sa_url)
        if migrate:
            upgrade(engine)
    except BaseException:
        engine.dispose()
        raise
    catalog = Catalog(engine, sa_url)
    _logger.debug("catalog open", extra={"catalog": catalog.display_url})
    return catalog


def catalog_url(url: str | None, home: Path) -> URL:
    """Return the SQLAlchemy URL for a catalog setting (see :func:`open_catalog`)."""
    if url is None:
        try:
            home.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ConfigError(
                f"cannot create the strongroom home folder {home}: {error.strerror}",
                hint="Set STRONGROOM_HOME (or --home) to a folder you can write.",
            ) from error
        return URL.create("sqlite", database=str(home / CATALOG_FILE))
    try:
        parsed = make_url(url)
    except (exc.ArgumentError, ValueError) as error:
        raise ConfigError(
            f"catalog URL {_masked_text(url)!r} is not a database URL",
            hint="Use sqlite:///path/to/catalog.db or postgresql://user@host:port/database.",
        ) from error
    if parsed.password:
        register_secret(str(parsed.password))
    backend, _, driver = parsed.drivername.partition("+")
    if backend in {"postgresql", "postgres"} and driver in {"", "psycopg"}:
        if not parsed.host and not parsed.query.get("host"):
            raise ConfigError(
                f"catalog URL {parsed.render_as_string(hide_password=True)!r} names no host"
            )
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite" and driver in {"", "pysqlite"}:
        if not parsed.database or parsed.database == ":memory:":
            raise ConfigError(
                "an in-memory SQLite catalog would vanish with its first connection",
                hint="Name a file: sqlite:///path/to/catalog.db.",
            )
        return parsed.set(drivername="sqlite")
    raise ConfigError(
        f"catalog URL {parsed.render_as_string(hide_password=True)!r}: "
        f"unsupported database {parsed.drivername!r}",
        hint="The catalog runs on SQLite (sqlite:///…) or PostgreSQL (postgresql://…).",
    )


def _create_engine(url: URL) -> Engine:
    if url.get_backend_name() == "sqlite":
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
        )
        event.listen(engine, "connect", _on_sqlite_connect)
        event.listen(engine, "begin", _on_sqlite_begin)
        return engine
    return create_engine(
        url,
        pool_pre_ping=True,
        connect_args={
            "connect_timeout": POSTGRES_CONNECT_TIMEOUT_SECONDS,
            "application_name": "strongroom",
        },
    )


def _on_sqlite_connect(dbapi_connection: Any, connection_record: Any) -> None:
    # The driver's own transaction handling is switched off; _on_sqlite_begin emits BEGIN.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_SECONDS * 1000)}")
    finally:
        cursor.close()


def _on_sqlite_begin(connection: Connection) -> None:
    mode = connection.get_execution_options().get(_BEGIN_OPTION, "IMMEDIATE")
    connection.exec_driver_sql(f"BEGIN {mode}")


def _check_connection(engine: Engine, url: URL) -> None:
    where = _where(url)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except exc.DBAPIError as error:
        sqlstate = getattr(error.orig, "sqlstate", None)
        message = str(error.orig)
        # libpq reports connection-time failures without an SQLSTATE: read the message too.
        if sqlstate in _AUTH_FAILED or "authentication failed" in message:
            raise AccessDeniedError(
                f"the catalog at {where} refused the credentials of user {url.username!r}"
            ) from error
        if sqlstate == _NO_DATABASE or (
            url.database is not None and f'database "{url.database}" does not exist' in message
        ):
            raise NotFoundError(
                f"the catalog at {where} has no database {url.database!r}",
                hint="Create the database (CREATE DATABASE …) or fix the catalog URL.",
            ) from error
        if url.get_backend_name() == "sqlite":
            raise ConfigError(
                f"cannot open the catalog file {url.database}: {_reason(error)}",
                hint="Check that the folder exists and is writable.",
            ) from error
        raise ServiceUnavailableError(
            f"the catalog at {where} does not answer: {_reason(error)}"
        ) from error


def _where(url: URL) -> str:
    if url.get_backend_name() == "sqlite":
        return str(url.database)
    host = url.host or url.query.get("host") or "localhost"
    return f"{host}:{url.port or 5432}"


def _reason(error: exc.DBAPIError) -> str:
    lines = [line.strip() for line in str(error.orig).splitlines() if line.strip()]
    return mask(" ".join(lines) if lines else type(error.orig).__name__)


def _masked_text(url: str) -> str:
    # An unparseable URL may still carry a password after "user:"; hide what follows it.
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return mask(url)
    credentials, _, location = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{location}" if ":" in credentials else mask(url)
