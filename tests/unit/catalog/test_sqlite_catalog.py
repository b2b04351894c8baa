"""The catalog suites on SQLite files (the same suites run on PostgreSQL in integration)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from tests.support.catalog import NewCatalogUrl
from tests.support.catalog.suite_audit import AuditSuite
from tests.support.catalog.suite_claims import ClaimSuite
from tests.support.catalog.suite_jobs import JobSuite
from tests.support.catalog.suite_records import RecordSuite
from tests.support.catalog.suite_schema import SchemaSuite


class OnSqlite:
    @pytest.fixture
    def catalog_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'catalog.db'}"

    @pytest.fixture
    def new_catalog_url(self, tmp_path: Path) -> NewCatalogUrl:
        numbers = itertools.count(1)
        return lambda: f"sqlite:///{tmp_path / f'fresh-{next(numbers)}.db'}"


class TestSchemaOnSqlite(OnSqlite, SchemaSuite):
    pass


class TestJobsOnSqlite(OnSqlite, JobSuite):
    pass


class TestClaimsOnSqlite(OnSqlite, ClaimSuite):
    pass


class TestRecordsOnSqlite(OnSqlite, RecordSuite):
    pass


class TestAuditOnSqlite(OnSqlite, AuditSuite):
    pass
