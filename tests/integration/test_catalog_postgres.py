"""The catalog suites of ``tests/unit/catalog`` on the real PostgreSQL of dev/services.

Each module run gets a database of its own (created here, dropped afterwards); the suites'
``catalog`` fixture empties its tables after every test. Tests that need a brand-new
database get more from ``new_catalog_url``. A few PostgreSQL-only checks follow: how
``open_catalog`` reports a wrong password, a missing database and a dead port.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from psycopg import sql

from strongroom.catalog import open_catalog
from strongroom.errors import AccessDeniedError, NotFoundError, ServiceUnavailableError
from tests.support.catalog import NewCatalogUrl
from tests.support.catalog.suite_claims import ClaimSuite
from tests.support.catalog.suite_jobs import JobSuite
from tests.support.catalog.suite_records import RecordSuite
from tests.support.catalog.suite_schema import SchemaSuite
from tests.support.services import PostgresService, unique_name

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
