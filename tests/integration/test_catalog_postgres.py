"""The catalog suites of ``tests/unit/catalog`` on the real PostgreSQL of dev/services.

Each module run gets a database of its own (created here, dropped afterwards); the suites'
``catalog`` fixture empties its tables after every test. Tests that need a brand-new
database get more from ``new_catalog_url``. A few PostgreSQL-only checks follow: how
``open_catalog`` reports a wrong password, a missing database and a dead port.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from psycopg import sql
from sqlalchemy import text

from strongroom.catalog import Catalog, open_catalog
from strongroom.catalog.audit import append_entry, check_chain, list_entries
from strongroom.errors import AccessDeniedError, NotFoundError, ServiceUnavailableError
from tests.support.catalog import CatalogFixtures, NewCatalogUrl
from tests.support.catalog.suite_audit import AuditSuite
from tests.support.catalog.suite_audit import entry as audit_entry
from tests.support.catalog.suite_claims import ClaimSuite
from tests.support.catalog.suite_jobs import JobSuite
from tests.support.catalog.suite_records import RecordSuite
from tests.support.catalog.suite_schema import SchemaSuite
from tests.support.services import PostgresService, unique_name
from tests.support.waiting import PATIENCE

pytestmark = pytest.mark.integration


def database_url(service: PostgresService, database: str, *, password: str | None = None) -> str:
    secret = quote(service.password if password is None else password, safe="")
    return (
        f"postgresql://{quote(service.user, safe='')}:{secret}"
        f"@{service.host}:{service.port}/{database}"
    )


class _Databases:
    """Creates databases on the server and drops them all at the end."""

    def __init__(self, service: PostgresService) -> None:
        self.service = service
        self.names: list[str] = []

    def create(self) -> str:
        name = unique_name("sr_catalog")
        with self.service.connect(autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self.names.append(name)
        return database_url(self.service, name)

    def drop_all(self) -> None:
        with self.service.connect(autocommit=True) as admin:
            for name in self.names:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


@pytest.fixture(scope="module")
def databases(postgres_service: PostgresService) -> Iterator[_Databases]:
    databases = _Databases(postgres_service)
    try:
        yield databases
    finally:
        databases.drop_all()


@pytest.fixture(scope="module")
def module_database(databases: _Databases) -> str:
    return databases.create()


class OnPostgres:
    @pytest.fixture
    def catalog_url(self, module_database: str) -> str:
        return module_database

    @pytest.fixture
    def new_catalog_url(self, databases: _Databases) -> NewCatalogUrl:
        return databases.create


class TestSchemaOnPostgres(OnPostgres, SchemaSuite):
    pass


class TestJobsOnPostgres(OnPostgres, JobSuite):
    pass


class TestClaimsOnPostgres(OnPostgres, ClaimSuite):
    pass


class TestRecordsOnPostgres(OnPostgres, RecordSuite):
    pass


class TestAuditOnPostgres(OnPostgres, AuditSuite):
    pass


def test_a_wrong_password_is_access_denied_and_never_shown(
    postgres_service: PostgresService, module_database: str, tmp_path: Path
) -> None:
    database = module_database.rsplit("/", 1)[1]
    url = database_url(postgres_service, database, password="not-the-Password-42")

    with pytest.raises(AccessDeniedError) as raised:
        open_catalog(url, tmp_path)

    assert "not-the-Password-42" not in str(raised.value)
    assert f"{postgres_service.host}:{postgres_service.port}" in str(raised.value)


def test_a_missing_database_is_not_found(postgres_service: PostgresService, tmp_path: Path) -> None:
    url = database_url(postgres_service, unique_name("sr_missing"))

    with pytest.raises(NotFoundError, match="has no database"):
        open_catalog(url, tmp_path)


def test_a_port_nobody_listens_on_is_unavailable_and_retryable(
    postgres_service: PostgresService, tmp_path: Path
) -> None:
    url = (
        f"postgresql://{postgres_service.user}:{quote(postgres_service.password, safe='')}"
        f"@{postgres_service.host}:1/postgres"
    )

    with pytest.raises(ServiceUnavailableError) as raised:
        open_catalog(url, tmp_path)

    assert raised.value.retryable
    assert f"{postgres_service.host}:1" in str(raised.value)
    assert postgres_service.password not in str(raised.value)


class TestAuditLockOnPostgres(OnPostgres, CatalogFixtures):
    def test_a_second_appender_waits_for_the_first_to_commit_and_chains_on_its_entry(
        self, catalog: Catalog
    ) -> None:
        """The second appender reads the last entry only once the first committed: it is
        seen waiting on a lock (polled in pg_locks) while the first holds its transaction."""
        first_appended = threading.Event()
        release_first = threading.Event()
        errors: list[BaseException] = []

        def first() -> None:
            try:
                with catalog.session() as session:
                    append_entry(session, audit_entry(1, actor="first@host"))
                    first_appended.set()
                    release_first.wait(timeout=PATIENCE)
            except Exception as error:  # noqa: BLE001 (reported by the assertion below)
                errors.append(error)
                first_appended.set()

        def second() -> None:
            try:
                with catalog.session() as session:
                    append_entry(session, audit_entry(2, actor="second@host"))
            except Exception as error:  # noqa: BLE001 (reported by the assertion below)
                errors.append(error)

        one = threading.Thread(target=first)
        one.start()
        assert first_appended.wait(timeout=PATIENCE)
        two = threading.Thread(target=second)
        two.start()
        waiting = _until(lambda: _backends_waiting_on_a_lock(catalog) >= 1)
        release_first.set()
        one.join(timeout=PATIENCE)
        two.join(timeout=PATIENCE)
        assert waiting
        assert errors == []
        with catalog.session(readonly=True) as session:
            rows = list_entries(session)
            assert [(row.seq, row.actor) for row in rows] == [
                (1, "first@host"),
                (2, "second@host"),
            ]
            assert rows[1].previous_hash == rows[0].entry_hash
            assert check_chain(session).intact


def _until(condition: Callable[[], bool]) -> bool:
    """Poll ``condition`` until it holds (True) or PATIENCE runs out (False)."""
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def _backends_waiting_on_a_lock(catalog: Catalog) -> int:
    with catalog.engine.connect() as connection:
        return int(
            connection.execute(
                text(
                    "SELECT count(*) FROM pg_locks AS l JOIN pg_stat_activity AS a "
                    "ON a.pid = l.pid WHERE NOT l.granted AND a.datname = current_database()"
                )
            ).scalar_one()
        )
