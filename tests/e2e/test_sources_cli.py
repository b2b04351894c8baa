"""Issue #6 "done means" from the CLI: PostgreSQL, MariaDB, a folder and SQLite, each through a plan.

For each source the test creates real data (on the servers of ``dev/services`` for the
two database servers; under ``CI=true`` a missing server fails the test, never skips
it), then as a user would:

1. ``strongroom apply -f`` a file declaring the vault, the resource and a plan whose rule
   targets the vault and whose selection names the resource;
2. ``start-backup RESOURCE --rule PLAN/RULE --wait``;
3. ``list-recovery-points --output json`` shows the point, tagged with the resource;
4. ``restore POINT --target … --wait`` into a new target (a new database, folder or file)
   and compares it with the source: every row, or every file's bytes;
5. ``verify POINT --read-data --restore-test --wait`` passes and leaves the evidence on the
   point;
6. the stored data is tampered with, and ``verify --restore-test`` fails naming the table
   (the file, for a folder).

Tampering: every stored byte is authenticated (keyed chunk ids, AEAD), so flipping a
byte in a pack is caught by ``verify --read-data`` before any restore (shown here for
SQLite, with a byte flipped in every pack; the operations flow shows it for a folder).
The restore test is the check for damage that authentication cannot see: data altered
*before* it was sealed (a faulty dump tool, memory, or someone holding the key). The test
makes such a point with the vault key: it reads the point, changes one marker value
inside one stream (same length, so the archive still parses), and commits a new point
with the original metadata and tags; ``catalog rebuild`` records it, like any point found
in the vault.
"""

from __future__ import annotations

import io
import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from psycopg import sql

from strongroom.keys.providers import PassphraseProvider
from strongroom.storage.open import open_store
from strongroom.vault import Vault
from tests.support.data import make_tree, tree_digest
from tests.support.operations_flow import PASSPHRASE, Cli
from tests.support.services import MariaDBService, PostgresService, unique_name

pytestmark = pytest.mark.e2e

MARKER = "tamper-marker-0042"
ALTERED = "tamper-marker-9999"
PASSWORD_VARIABLE = "STRONGROOM_TEST_SOURCES_CLI_PASSWORD"


@dataclass
class Case:
    """One source under test: how it is declared, restored and compared."""

    resource: dict[str, Any]
    restore_target: list[str]
    compare: Callable[[], None]
    """Asserts that the restored copy holds exactly the source's data."""
    tampered_checks: list[str]
    """Names of checks a restore test of the tampered point must fail (a table, a file)."""
    env: dict[str, str] = field(default_factory=dict)


def run_case(tmp_path: Path, name: str, case: Case) -> None:
    """Steps 1 to 6 of the module docstring for one source."""
    home, store = tmp_path / "home", tmp_path / "vault"
    cli = Cli(home=home, env=case.env)
    config = tmp_path / "strongroom.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "vaults": {
                    "v": {
                        "url": store.as_uri(),
                        "key": {"provider": "passphrase", "passphrase": "env:VAULT_PASS"},
                    }
                },
                "resources": {name: case.resource},
                "plans": {
                    "nightly": {
                        "rules": [
                            {
                                "name": "daily",
                                "schedule": "rate(1 day)",
                                "target_vault": "v",
                                "lifecycle": {"delete_after_days": 30},
                            }
                        ],
                        "selections": [{"name": "this", "names": [name]}],
                    }
                },
            }
        )
    )
    applied = cli.json("apply", "-f", str(config))
    assert applied["selections"] == {"nightly": [name]}, applied

    backup = cli.json("start-backup", name, "--rule", "nightly/daily", "--wait")
    assert backup["state"] == "COMPLETED", backup
    point_id = backup["result"]["point_id"]

    (listed,) = cli.json("list-recovery-points", "--resource", name)
    assert listed["id"] == point_id and listed["vault"] == "v"
    assert listed["tags"]["strongroom:resource"] == name
    assert listed["tags"]["strongroom:rule"] == "nightly/daily"

    targets = [argument for option in case.restore_target for argument in ("--target", option)]
    restored = cli.json("restore", point_id, *targets, "--wait")
    assert restored["state"] == "COMPLETED", restored
    case.compare()

    verified = cli.json("verify", point_id, "--read-data", "--restore-test", "--wait")
    assert verified["state"] == "COMPLETED", verified
    (test,) = verified["result"]["restore_tests"]
    assert test["ok"] is True and test["checks_failed"] == 0 and test["checks_total"] > 0, test
    (evidence,) = cli.json("list-recovery-points", "--resource", name)
    assert evidence["verification_ok"] is True and evidence["restore_test_ok"] is True

    forged, _stream = forge_point(store, point_id, tmp_path / "forge-cache")
    cli("catalog", "rebuild", "--vault", "v")
    failed = cli("verify", forged, "--restore-test", "--wait", expect=6)
    message = failed.stderr.decode()
    assert forged in message and "restore test failed" in message, message
    for check in case.tampered_checks:
        assert check in message, f"{check!r} not named in:\n{message}"
    points = {point["id"]: point for point in cli.json("list-recovery-points", "--resource", name)}
    assert points[forged]["restore_test_ok"] is False
    failures = json.dumps(points[forged]["restore_test"])
    for check in case.tampered_checks:
        assert check in failures
    assert points[point_id]["restore_test_ok"] is True  # the good point keeps its evidence


def forge_point(store: Path, point_id: str, cache: Path) -> tuple[str, str]:
    """Commit a copy of ``point_id`` whose one stream holding :data:`MARKER` says
    :data:`ALTERED` instead; return the new point's id and the altered stream's name."""
    provider = PassphraseProvider(PASSPHRASE["VAULT_PASS"])
    with Vault.open(open_store(store.as_uri()), provider, cache_dir=cache) as vault:
        with vault.reader(point_id) as reader:
            original = reader.point
            streams = {record.name: reader.read_stream(record.name) for record in original.streams}
        marker = MARKER.encode()
        (altered,) = [name for name, data in streams.items() if marker in data]
        streams[altered] = streams[altered].replace(marker, ALTERED.encode())
        with vault.writer() as writer:
            for name, data in streams.items():
                writer.add_stream(name, io.BytesIO(data))
            forged = writer.commit(metadata=original.metadata, tags=original.tags)
    return str(forged), altered


# -- PostgreSQL -------------------------------------------------------------------------------


@pytest.fixture
def pg_databases(postgres_service: PostgresService) -> Iterator[list[str]]:
    """Names of databases to drop at the end (created ones and restore targets)."""
    names: list[str] = []
    try:
        yield names
    finally:
        with postgres_service.connect(autocommit=True) as admin:
            for name in names:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


def _pg_rows(service: PostgresService, database: str) -> dict[str, list[tuple[Any, ...]]]:
    with service.connect(database) as connection:
        return {
            "orders": list(connection.execute("SELECT * FROM shop.orders ORDER BY id")),
            "items": list(connection.execute("SELECT * FROM shop.items ORDER BY order_id, line")),
            "sequence": list(connection.execute("SELECT last_value FROM shop.invoice_numbers")),
        }


def test_postgres_through_a_plan(
    postgres_service: PostgresService, pg_databases: list[str], tmp_path: Path
) -> None:
    source, copy = unique_name("sr_e2e_pg"), unique_name("sr_e2e_pg_copy")
    pg_databases += [source, copy]
    with postgres_service.connect(autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(source)))
    with postgres_service.connect(source) as connection:
        connection.execute("CREATE SCHEMA shop")
        connection.execute("CREATE SEQUENCE shop.invoice_numbers")
        connection.execute(
            "CREATE TABLE shop.orders (id int PRIMARY KEY, note text, amount numeric(10, 2), "
            "placed timestamptz, tags text[], payload jsonb)"
        )
        connection.execute(
            "CREATE TABLE shop.items (order_id int REFERENCES shop.orders, line int, "
            "sku text, PRIMARY KEY (order_id, line))"
        )
        connection.execute(
            "INSERT INTO shop.orders SELECT i, 'order ' || i, i * 1.25, "
            "timestamptz '2024-01-01 00:00+00' + i * interval '1 minute', ARRAY['a', i::text], "
            "jsonb_build_object('n', i) FROM generate_series(1, 3000) AS i"
        )
        connection.execute(
            "INSERT INTO shop.items SELECT i, l, 'sku-' || (i * l) "
            "FROM generate_series(1, 3000) AS i, generate_series(1, 3) AS l"
        )
        connection.execute("UPDATE shop.orders SET note = %s WHERE id = 1234", (MARKER,))
        connection.execute("SELECT setval('shop.invoice_numbers', 77)")
    case = Case(
        resource={
            "type": "postgres",
            "host": postgres_service.host,
            "port": postgres_service.port,
            "user": postgres_service.user,
            "password": f"env:{PASSWORD_VARIABLE}",
            "databases": [source],
        },
        restore_target=[f"database={copy}", "roles=false", "checks=full"],
        compare=lambda: _compare_pg(postgres_service, source, copy),
        tampered_checks=[f"{source}: table shop.orders checksum (full)"],
        env={PASSWORD_VARIABLE: postgres_service.password},
    )
    run_case(tmp_path, "shop-pg", case)


def _compare_pg(service: PostgresService, source: str, copy: str) -> None:
    restored = _pg_rows(service, copy)
    assert restored == _pg_rows(service, source)
    assert len(restored["orders"]) == 3000 and len(restored["items"]) == 9000


# -- MariaDB ----------------------------------------------------------------------------------


@pytest.fixture
def my_databases(mariadb_service: MariaDBService) -> Iterator[list[str]]:
    """Names of databases to drop at the end (created ones and restore targets)."""
    names: list[str] = []
    try:
        yield names
    finally:
        connection = mariadb_service.connect(autocommit=True)
        try:
            with connection.cursor() as cursor:
                for name in names:
                    cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        finally:
            connection.close()


def _my_execute(service: MariaDBService, database: str | None, *statements: str) -> list[Any]:
    connection = service.connect(database, autocommit=True)
    try:
        results = []
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
                results.append(list(cursor.fetchall()))
        return results
    finally:
        connection.close()


def _my_rows(service: MariaDBService, database: str) -> list[Any]:
    return _my_execute(
        service,
        database,
        "SELECT * FROM orders ORDER BY id",
        "SELECT * FROM items ORDER BY order_id, line",
    )


def _my_checksums(service: MariaDBService, database: str) -> list[int]:
    (rows,) = _my_execute(service, database, "CHECKSUM TABLE orders, items")
    return [int(row[1]) for row in rows]


def test_mariadb_through_a_plan(
    mariadb_service: MariaDBService, my_databases: list[str], tmp_path: Path
) -> None:
    source, copy = unique_name("sr_e2e_my"), unique_name("sr_e2e_my_copy")
    my_databases += [source, copy]
    _my_execute(mariadb_service, None, f"CREATE DATABASE `{source}`")
    _my_execute(
        mariadb_service,
        source,
        "CREATE TABLE orders (id INT PRIMARY KEY, note VARCHAR(64), amount DECIMAL(10, 2), "
        "placed DATETIME(6), photo BLOB) ENGINE=InnoDB",
        "CREATE TABLE items (order_id INT, line INT, sku VARCHAR(32), "
        "PRIMARY KEY (order_id, line)) ENGINE=InnoDB",
        "INSERT INTO orders SELECT seq, CONCAT('order ', seq), seq * 1.25, "
        "TIMESTAMP '2024-01-01 00:00:00' + INTERVAL seq MINUTE, UNHEX(SHA2(seq, 256)) "
        "FROM seq_1_to_3000",
        "INSERT INTO items SELECT o.seq, l.seq, CONCAT('sku-', o.seq * l.seq) "
        "FROM seq_1_to_3000 AS o, seq_1_to_3 AS l",
        f"UPDATE orders SET note = '{MARKER}' WHERE id = 1234",
    )
    case = Case(
        resource={
            "type": "mysql",
            "host": mariadb_service.host,
            "port": mariadb_service.port,
            "user": mariadb_service.user,
            "password": f"env:{PASSWORD_VARIABLE}",
            "databases": [source],
        },
        restore_target=[f"database={copy}", "users=false", "checks=full"],
        compare=lambda: _compare_my(mariadb_service, source, copy),
        tampered_checks=[f"{source}: table orders checksum"],
        env={PASSWORD_VARIABLE: mariadb_service.password},
    )
    run_case(tmp_path, "shop-my", case)


def _compare_my(service: MariaDBService, source: str, copy: str) -> None:
    restored = _my_rows(service, copy)
    assert restored == _my_rows(service, source)
    assert [len(rows) for rows in restored] == [3000, 9000]
    assert _my_checksums(service, copy) == _my_checksums(service, source)


# -- a folder -------------------------------------------------------------------------------


def test_a_folder_through_a_plan(tmp_path: Path) -> None:
    data = make_tree(tmp_path / "data")
    (data / "docs" / "marked.txt").write_text(f"line one\n{MARKER}\nline three\n")
    target = tmp_path / "restored"
    marked = str(data / "docs" / "marked.txt").lstrip("/")

    def compare() -> None:
        assert tree_digest(target / data.relative_to("/")) == tree_digest(data)

    case = Case(
        resource={"type": "files", "paths": [str(data)]},
        restore_target=[f"path={target}"],
        compare=compare,
        tampered_checks=[f"restore of {marked}"],
    )
    run_case(tmp_path, "docs", case)


# -- SQLite ---------------------------------------------------------------------------------


def _sqlite_tables(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    with closing(sqlite3.connect(path)) as connection:
        return {
            "orders": list(connection.execute("SELECT * FROM orders ORDER BY id")),
            "items": list(connection.execute("SELECT * FROM items ORDER BY order_id, line")),
        }


def test_sqlite_through_a_plan(tmp_path: Path) -> None:
    database = tmp_path / "app.db"
    with closing(sqlite3.connect(database)) as connection, connection:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute(
            "CREATE TABLE orders (id INTEGER PRIMARY KEY, note TEXT, amount REAL, photo BLOB)"
        )
        connection.execute(
            "CREATE TABLE items (order_id INTEGER, line INTEGER, sku TEXT, "
            "PRIMARY KEY (order_id, line)) WITHOUT ROWID"
        )
        connection.executemany(
            "INSERT INTO orders VALUES (?, ?, ?, ?)",
            [
                (index, f"order {index}", index * 1.25, bytes([index % 256]) * 40)
                for index in range(1, 3001)
            ],
        )
        connection.executemany(
            "INSERT INTO items VALUES (?, ?, ?)",
            [(index, line, f"sku-{index * line}") for index in range(1, 3001) for line in (1, 2)],
        )
        connection.execute("UPDATE orders SET note = ? WHERE id = 1234", (MARKER,))
    target = tmp_path / "restored" / "app.db"
    target.parent.mkdir()

    def compare() -> None:
        restored = _sqlite_tables(target)
        assert restored == _sqlite_tables(database)
        assert [len(rows) for rows in restored.values()] == [3000, 6000]
        with closing(sqlite3.connect(target)) as connection:
            assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)

    case = Case(
        resource={"type": "sqlite", "path": str(database)},
        restore_target=[f"path={target}"],
        compare=compare,
        tampered_checks=["checksum of table orders"],
    )
    run_case(tmp_path, "app-db", case)

    # Without the key, changing a stored byte is caught by authentication, before a restore.
    cli = Cli(home=tmp_path / "home")
    (good,) = [
        point["id"]
        for point in cli.json("list-recovery-points", "--resource", "app-db")
        if point["restore_test_ok"]
    ]
    for pack in (tmp_path / "vault" / "data").rglob("*"):
        if pack.is_file():
            damaged_pack = bytearray(pack.read_bytes())
            damaged_pack[len(damaged_pack) // 2] ^= 0x01
            pack.write_bytes(bytes(damaged_pack))
    damaged = cli("verify", good, "--read-data", "--restore-test", "--wait", expect=6)
    assert good in damaged.stderr.decode() and "damaged" in damaged.stderr.decode()
