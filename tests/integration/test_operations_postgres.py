"""The operational verbs with PostgreSQL as the catalog, and a real PostgreSQL resource.

The e2e flow of :mod:`tests.support.operations_flow` runs with ``--catalog postgresql://…``
(through ``STRONGROOM_CATALOG_URL``) on a fresh database of the dev/services server. A
second test backs up a real database (unique name) through the CLI, restores it under a
new name and compares the rows, then verifies it with a restore test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml
from psycopg import sql

from strongroom.config.resources import PostgresResource
from strongroom.services.declare.resources import register_resource
from tests.support.operations_flow import Cli, apply_exists, run_flow
from tests.support.services import PostgresService, unique_name

pytestmark = pytest.mark.integration

PASSWORD_VARIABLE = "STRONGROOM_TEST_OPERATIONS_PG_PASSWORD"


class Databases:
    """Creates databases on the shared server and drops them all at the end."""

    def __init__(self, service: PostgresService) -> None:
        self.service = service
        self.names: list[str] = []

    def create(self, prefix: str) -> str:
        name = unique_name(prefix)
        with self.service.connect(autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self.names.append(name)
        return name

    def url(self, name: str) -> str:
        service = self.service
        return (
            f"postgresql://{quote(service.user, safe='')}:{quote(service.password, safe='')}"
            f"@{service.host}:{service.port}/{name}"
        )

    def drop_all(self) -> None:
        with self.service.connect(autocommit=True) as admin:
            for name in self.names:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


@pytest.fixture(scope="module")
def databases(postgres_service: PostgresService) -> Iterator[Databases]:
    created = Databases(postgres_service)
    try:
        yield created
    finally:
        created.drop_all()


def test_the_operations_flow_on_a_postgres_catalog(databases: Databases, tmp_path: Path) -> None:
    cli = Cli(home=tmp_path / "home", catalog_url=databases.url(databases.create("sr_ops_cat")))

    run_flow(cli, tmp_path)

    assert not (tmp_path / "home" / "catalog.db").exists()  # everything went to PostgreSQL


def declare(cli: Cli, name: str, resource: PostgresResource) -> None:
    """Register a resource through the services API (while 'apply' does not exist)."""
    context = cli.context()
    try:
        with context.catalog.session() as session:
            register_resource(session, name, resource, context.now())
    finally:
        context.close()


def _rows(service: PostgresService, database: str) -> list[tuple[object, ...]]:
    with service.connect(database) as connection:
        return list(
            connection.execute("SELECT id, name, amount, tags FROM shop.orders ORDER BY id")
        )


def test_a_postgres_resource_is_backed_up_restored_and_restore_tested(
    databases: Databases, postgres_service: PostgresService, tmp_path: Path
) -> None:
    source = databases.create("sr_ops_src")
    with postgres_service.connect(source) as connection:
        connection.execute("CREATE SCHEMA shop")
        connection.execute(
            "CREATE TABLE shop.orders (id int PRIMARY KEY, name text, amount numeric(10, 2), "
            "tags text[])"
        )
        connection.execute(
            "INSERT INTO shop.orders SELECT i, 'order ' || i, i * 1.25, ARRAY['a', i::text] "
            "FROM generate_series(1, 2000) AS i"
        )
    copy = unique_name("sr_ops_copy")
    databases.names.append(copy)  # dropped at the end whatever happens
    cli = Cli(
        home=tmp_path / "home",
        catalog_url=databases.url(databases.create("sr_ops_cat")),
        env={PASSWORD_VARIABLE: postgres_service.password},
    )
    cli(
        "vault",
        "create",
        "v",
        "--url",
        (tmp_path / "vault").as_uri(),
        "--passphrase-env",
        "VAULT_PASS",
    )
    resource = PostgresResource(
        type="postgres",
        host=postgres_service.host,
        port=postgres_service.port,
        user=postgres_service.user,
        password=f"env:{PASSWORD_VARIABLE}",
        databases=[source],
    )
    config = tmp_path / "config.yaml"
    vault = {
        "url": (tmp_path / "vault").as_uri(),
        "key": {"provider": "passphrase", "passphrase": "env:VAULT_PASS"},
    }
    config.write_text(
        yaml.safe_dump(
            {
                "vaults": {"v": vault},
                "resources": {"shop-db": resource.model_dump(mode="json", exclude_defaults=True)},
            }
        )
    )
    if apply_exists(cli):
        cli("apply", "-f", str(config))
    else:
        declare(cli, "shop-db", resource)

    backup = cli.json("start-backup", "shop-db", "--vault", "v", "--wait")
    assert backup["state"] == "COMPLETED", backup
    point_id = backup["result"]["point_id"]
    restored = cli.json(
        "restore",
        point_id,
        "--target",
        f"database={copy}",
        "--target",
        "roles=false",
        "--wait",
    )
    assert restored["state"] == "COMPLETED", restored
    assert _rows(postgres_service, copy) == _rows(postgres_service, source)
    assert len(_rows(postgres_service, copy)) == 2000

    verified = cli.json("verify", point_id, "--read-data", "--restore-test", "--wait")
    assert verified["state"] == "COMPLETED", verified
    (test,) = verified["result"]["restore_tests"]
    assert test["ok"] is True and test["checks_failed"] == 0
    (point,) = cli.json("list-recovery-points", "--resource", "shop-db")
    assert point["restore_test_ok"] is True
    assert point["verification_ok"] is True
