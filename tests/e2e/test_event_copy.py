"""An event rule's copy target, end to end: the seed's "copy PostgreSQL points to the DR
vault" as a rule over ``backup.job.completed`` of ``postgres`` resources. The daemon's
outbox delivers the event to the target, which queues a copy job; the copy lands in the
DR vault linked to its source and reads back whole. A SQLite backup matches no rule and
is not copied; a copy target naming an undeclared vault is refused at validation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from psycopg import sql

from strongroom.catalog import open_catalog
from strongroom.catalog import outbox as catalog_outbox
from tests.support.data import make_database
from tests.support.operations_flow import Cli
from tests.support.services import PostgresService, unique_name

pytestmark = pytest.mark.e2e

PG_PASSWORD = "SR_COPY_TEST_PG_PASSWORD"


@pytest.fixture
def database(postgres_service: PostgresService) -> Iterator[str]:
    name = unique_name("sr_event_copy")
    with postgres_service.connect(autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        with postgres_service.connect(name) as connection:
            connection.execute("CREATE TABLE orders (id int PRIMARY KEY, note text)")
            connection.execute(
                "INSERT INTO orders SELECT i, 'order ' || i FROM generate_series(1, 500) AS i"
            )
        yield name
    finally:
        with postgres_service.connect(autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def _config(root: Path, service: PostgresService, database: str, *, dr: str) -> str:
    key = "{provider: passphrase, passphrase: env:VAULT_PASS}"
    return f"""\
vaults:
  main: {{url: {(root / "main").as_uri()}, key: {key}}}
  dr: {{url: {(root / "dr").as_uri()}, key: {key}}}
resources:
  orders-db:
    type: postgres
    host: {service.host}
    port: {service.port}
    user: {service.user}
    password: env:{PG_PASSWORD}
    databases: [{database}]
  app-db: {{type: sqlite, path: {root / "app.db"}}}
notifications:
  rules:
    - name: copy-postgres-to-dr
      pattern: {{types: [backup.job.completed], resource_types: [postgres]}}
      targets:
        - start_job: {{kind: copy, destination_vault: {dr}, lifecycle: {{delete_after_days: 90}}}}
"""


def test_a_rule_copies_postgresql_points_to_the_dr_vault_through_the_outbox(
    tmp_path: Path, postgres_service: PostgresService, database: str
) -> None:
    cli = Cli(home=tmp_path / "home", env={PG_PASSWORD: postgres_service.password})
    make_database(tmp_path / "app.db")
    config = tmp_path / "config.yaml"
    config.write_text(_config(tmp_path, postgres_service, database, dr="dr"))
    cli("apply", "-f", str(config))

    backup = cli.json("start-backup", "orders-db", "--vault", "main", "--wait")
    assert backup["state"] == "COMPLETED", backup
    source_id = backup["result"]["point_id"]
    other = cli.json("start-backup", "app-db", "--vault", "main", "--wait")
    assert other["state"] == "COMPLETED", other
    assert cli.json("list-recovery-points", "--vault", "dr") == []

    cli("serve", "--once")  # delivers the event: the target queues the copy
    cli("serve", "--once")  # runs the copy job (if the first pass did not)

    [copy_job] = cli.json("report", "detailed", "--kind", "copy")
    assert copy_job["state"] == "COMPLETED", copy_job
    [copied] = cli.json("list-recovery-points", "--vault", "dr")
    assert copied["resource"] == "orders-db" and copied["source_point_id"] == source_id
    assert copied["delete_at"] is not None  # the target's own lifecycle
    verified = cli.json("verify", copied["id"], "--read-data", "--wait")
    assert verified["state"] == "COMPLETED", verified
    with open_catalog(None, tmp_path / "home") as catalog, catalog.session() as session:
        deliveries = catalog_outbox.list_deliveries(session)
        assert [(row.rule, row.target, row.state) for row in deliveries] == [
            ("copy-postgres-to-dr", "start_job:copy:dr", catalog_outbox.DELIVERED)
        ]

    # A copy target naming a vault nobody declared is refused before anything is stored.
    config.write_text(_config(tmp_path, postgres_service, database, dr="nowhere"))
    refused = cli("validate", "-f", str(config), expect=None)
    assert refused.returncode != 0
    message = (refused.stdout + refused.stderr).decode()
    assert "nowhere" in message and "destination_vault" in message
