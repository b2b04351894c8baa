"""The declarative verbs' end-to-end flows with PostgreSQL as the catalog (``--catalog``).

The module has a database of its own on the PostgreSQL of dev/services; every test starts
it afresh (dropped and created again), and the rebuild flow does the same to lose the
catalog. The password reaches the CLI through ``PGPASSWORD``, never its arguments.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from psycopg import sql

from tests.support.declare_flow import (
    PASSPHRASES,
    Cli,
    apply_flow,
    create_plan_flow,
    example_config,
    rebuild_flow,
    write_config,
)
from tests.support.services import PostgresService, unique_name

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


class Database:
    """One database of the module, created afresh on demand and dropped at the end."""

    def __init__(self, service: PostgresService) -> None:
        self.service = service
        self.name = unique_name("sr_apply")

    @property
    def url(self) -> str:
        """The catalog URL, without the password."""
        service = self.service
        return f"postgresql://{service.user}@{service.host}:{service.port}/{self.name}"

    def drop(self) -> None:
        with self.service.connect(autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name))
            )

    def recreate(self) -> None:
        self.drop()
        with self.service.connect(autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))


@pytest.fixture(scope="module")
def database(postgres_service: PostgresService) -> Iterator[Database]:
    database = Database(postgres_service)
    try:
        yield database
    finally:
        database.drop()


@pytest.fixture
def cli(database: Database, tmp_path: Path) -> Cli:
    database.recreate()
    return Cli(
        tmp_path / "home",
        root=("--catalog", database.url),
        env={**PASSPHRASES, "PGPASSWORD": database.service.password},
    )


def test_apply_flow_on_postgres(cli: Cli, tmp_path: Path) -> None:
    apply_flow(cli, tmp_path)
    assert not (cli.home / "catalog.db").exists()


def test_create_plan_flow_on_postgres(cli: Cli, tmp_path: Path) -> None:
    create_plan_flow(cli, tmp_path)


def test_rebuild_flow_on_postgres(cli: Cli, database: Database, tmp_path: Path) -> None:
    rebuild_flow(cli, tmp_path, database.recreate)


def test_validate_and_dry_run_on_postgres(cli: Cli, tmp_path: Path) -> None:
    path = write_config(tmp_path / "strongroom.yaml", example_config(tmp_path))
    assert "valid strongroom configuration" in cli.ok("validate", "-f", str(path))
    preview = cli.json("apply", "-f", str(path), "--dry-run")
    assert preview["catalog"].startswith("postgresql+psycopg://strongroom@")
    assert preview["summary"]["create"] == 8
    assert cli.json("list-plans") == []
