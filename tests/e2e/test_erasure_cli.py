"""Issue #18 item 4 from the CLI: erasure requests (GDPR Art. 17) survive restores.

For PostgreSQL, MariaDB (the servers of ``dev/services``), a private Redis server and a
folder: real data holding two subjects is backed up through a plan, ``erasure add``
records that one subject must go, and then

* ``restore`` into a new target re-applies the request before the job completes: the
  subject is gone from the restored copy, the other subject is intact, and the job's
  result names the request with what it affected (rows, keys, paths);
* ``verify --restore-test`` re-applies it in the scratch target and checks nothing of
  the subject is left (a check of the test);
* ``erasure show`` lists both re-applications as evidence.

A request whose statement fails (PostgreSQL: a table that does not exist) fails the
restore with the request named, and the restored database is dropped again.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from psycopg import sql

from strongroom.sources.base import SourceContext
from strongroom.sources.redis.client import RedisServer
from strongroom.sources.redis.scratch import scratch_server
from tests.e2e.test_sources_cli import pg_databases
from tests.support.operations_flow import Cli
from tests.support.services import MariaDBService, PostgresService, unique_name

pytestmark = pytest.mark.e2e
__all__ = ["pg_databases"]  # the fixture, used by name

PASSWORD_VARIABLE = "STRONGROOM_TEST_ERASURE_PASSWORD"
ERASED, KEPT = "subject-42", "subject-7"


def backed_up(
    tmp_path: Path, name: str, resource: dict[str, Any], env: dict[str, str]
) -> tuple[Cli, str]:
    """Apply a vault, ``resource`` and a plan; back it up; return the CLI and the point id."""
    cli = Cli(home=tmp_path / "home", env=env)
    config = tmp_path / "strongroom.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "vaults": {
                    "v": {
                        "url": (tmp_path / "vault").as_uri(),
                        "key": {"provider": "passphrase", "passphrase": "env:VAULT_PASS"},
                    }
                },
                "resources": {name: resource},
                "plans": {
                    "nightly": {
                        "rules": [
                            {"name": "daily", "schedule": "rate(1 day)", "target_vault": "v"}
                        ],
                        "selections": [{"name": "this", "names": [name]}],
                    }
                },
            }
        )
    )
    cli.json("apply", "-f", str(config))
    backup = cli.json("start-backup", name, "--rule", "nightly/daily", "--wait")
    assert backup["state"] == "COMPLETED", backup
    return cli, backup["result"]["point_id"]


def restore_and_test(
    cli: Cli, point_id: str, request_id: str, targets: list[str], affected: int
) -> dict[str, Any]:
    """Restore into ``targets`` and restore-test the point; check the evidence of both;
    return the restore's result."""
    options = [argument for option in targets for argument in ("--target", option)]
    restored = cli.json("restore", point_id, *options, "--wait")
    assert restored["state"] == "COMPLETED", restored
    (effect,) = restored["result"]["erasures"]
    assert effect["request_id"] == request_id and effect["affected"] == affected, effect
    assert effect["remaining"] in (0, None), effect

    verified = cli.json("verify", point_id, "--restore-test", "--wait")
    assert verified["state"] == "COMPLETED", verified
    (test,) = verified["result"]["restore_tests"]
    assert test["ok"] is True, test
    (evidence,) = cli.json("list-recovery-points")
    checks = [check["name"] for check in evidence["restore_test"]["checks"]]
    assert any(f"erasure request {request_id} leaves nothing" in name for name in checks), checks
    (tested,) = evidence["restore_test"]["erasures"]
    assert tested["affected"] == affected and tested["remaining"] in (0, None), tested

    shown = cli.json("erasure", "show", request_id[:8])
    assert [item["restore_test"] for item in shown["applications"]] == [False, True], shown
    assert all(item["affected"] == affected for item in shown["applications"]), shown
    result: dict[str, Any] = restored["result"]
    return result


# -- PostgreSQL: the "done means" ------------------------------------------------------


def _pg_people(service: PostgresService, database: str) -> dict[str, list[Any]]:
    with service.connect(database) as connection:
        return {
            "users": [row[0] for row in connection.execute("SELECT id FROM users ORDER BY id")],
            "orders": [
                row[0] for row in connection.execute("SELECT user_id FROM orders ORDER BY id")
            ],
        }


def _pg_exists(service: PostgresService, database: str) -> bool:
    with service.connect(autocommit=True) as admin:
        found = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
        return found.fetchone() is not None


def test_postgres_restore_reapplies_a_recorded_erasure(
    postgres_service: PostgresService, pg_databases: list[str], tmp_path: Path
) -> None:
    source, copy, broken = (
        unique_name("sr_er_pg"),
        unique_name("sr_er_pg_copy"),
        unique_name("sr_er_pg_broken"),
    )
    pg_databases += [source, copy, broken]
    with postgres_service.connect(autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(source)))
    with postgres_service.connect(source) as connection:
        connection.execute("CREATE TABLE users (id text PRIMARY KEY, email text)")
        connection.execute("CREATE TABLE orders (id serial PRIMARY KEY, user_id text)")
        for subject in (ERASED, KEPT):
            connection.execute("INSERT INTO users VALUES (%s, %s)", (subject, f"{subject}@x"))
            for _ in range(3):
                connection.execute("INSERT INTO orders (user_id) VALUES (%s)", (subject,))
    # A subject id that would break SQL formatted into text: bound, it is only a value.
    tricky = "x'); DROP TABLE users; --"
    cli, point_id = backed_up(
        tmp_path,
        "people-pg",
        {
            "type": "postgres",
            "host": postgres_service.host,
            "port": postgres_service.port,
            "user": postgres_service.user,
            "password": f"env:{PASSWORD_VARIABLE}",
            "databases": [source],
        },
        {PASSWORD_VARIABLE: postgres_service.password},
    )
    added = cli.json(
        "erasure", "add", "people-pg", ERASED,
        "--reason", "ticket GDPR-17",
        "--database", source,
        "--sql", "DELETE FROM orders WHERE user_id = %(subject)s",
        "--sql", "DELETE FROM users WHERE id = %(subject)s",
        "--remaining", "SELECT count(*) FROM users WHERE id = %(subject)s",
    )  # fmt: skip
    assert added["state"] == "open" and added["kind"] == "sql", added
    cli.json(
        "erasure", "add", "people-pg", tricky, "--reason", "ticket GDPR-18",
        "--sql", "DELETE FROM users WHERE id = %(subject)s",
    )  # fmt: skip
    request_id = added["id"]

    result = cli.json("restore", point_id, "--target", f"database={copy}", "--target",
                      "roles=false", "--wait")  # fmt: skip
    assert result["state"] == "COMPLETED", result
    effects = {effect["request_id"]: effect for effect in result["result"]["erasures"]}
    assert effects[request_id]["affected"] == 4 and effects[request_id]["remaining"] == 0
    assert _pg_people(postgres_service, copy) == {"users": [KEPT], "orders": [KEPT] * 3}
    assert _pg_people(postgres_service, source)["users"] == [ERASED, KEPT]  # the source untouched

    verified = cli.json("verify", point_id, "--restore-test", "--wait")
    assert verified["state"] == "COMPLETED", verified
    (evidence,) = cli.json("list-recovery-points")
    checks = {check["name"]: check for check in evidence["restore_test"]["checks"]}
    gone = checks[f"{source}: erasure request {request_id} leaves nothing of the subject"]
    assert gone["ok"] is True and gone["actual"] == 0
    shown = cli.json("erasure", "show", request_id)
    assert [item["restore_test"] for item in shown["applications"]] == [False, True], shown

    listed = cli.json("erasure", "list", "--resource", "people-pg")
    assert {item["subject"] for item in listed} == {ERASED, tricky}
    audited = cli.json("audit", "list", "--action", "erasure.add")
    assert {entry["subject"] for entry in audited} == {item["id"] for item in listed}

    # A statement that fails fails the restore, names the request, drops the copy again.
    bad = cli.json(
        "erasure", "add", "people-pg", KEPT, "--reason", "ticket GDPR-19",
        "--sql", "DELETE FROM no_such_table WHERE id = %(subject)s",
    )  # fmt: skip
    failed = cli.json("restore", point_id, "--target", f"database={broken}", "--target",
                      "roles=false", "--wait", expect=None)  # fmt: skip
    assert failed["state"] == "FAILED", failed
    assert bad["id"] in failed["error"]["message"], failed["error"]
    assert "dropped again" in failed["error"]["message"], failed["error"]
    assert not _pg_exists(postgres_service, broken)

    cancelled = cli.json("erasure", "cancel", bad["id"], "--reason", "filed by mistake")
    assert cancelled["state"] == "cancelled"

    # The compliance report lists the requests in its GDPR erasure control.
    report = tmp_path / "gdpr.json"
    cli("report", "compliance", "--framework", "gdpr", "--to", str(report), "--unsigned")
    (gdpr,) = json.loads(report.read_text())["frameworks"]
    (control,) = [
        control
        for requirement in gdpr["requirements"]
        for control in requirement["controls"]
        if control["control"] == "erasure-requests"
    ]
    assert control["status"] == "pass", control
    assert control["summary"] == "2 open erasure request(s), 2 re-applied by restores"
    notes = {item["ref"]: item["note"] for item in control["evidence"]}
    assert notes[request_id].endswith("re-applied 2 time(s)"), notes
    assert "cancelled" in notes[bad["id"]]


def test_erasure_requests_are_checked_before_they_are_recorded(
    postgres_service: PostgresService, tmp_path: Path
) -> None:
    cli = Cli(home=tmp_path / "home")
    config = tmp_path / "strongroom.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "resources": {
                    "db": {"type": "postgres", "host": "127.0.0.1", "databases": ["x"]},
                    "folder": {"type": "files", "paths": [str(tmp_path)]},
                }
            }
        )
    )
    cli("apply", "-f", str(config))
    formatted = cli("erasure", "add", "db", "7", "--reason", "r", "--sql",
                    "DELETE FROM users WHERE id = '7'", expect=2)  # fmt: skip
    assert "does not bind the subject" in formatted.stderr.decode()
    stray = cli("erasure", "add", "db", "7", "--reason", "r", "--sql",
                "DELETE FROM users WHERE id = %(subject)s AND name LIKE 'a%'", expect=2)  # fmt: skip
    assert "%%" in stray.stderr.decode()
    two = cli("erasure", "add", "db", "7", "--reason", "r", "--sql",
              "DELETE FROM a WHERE id = %(subject)s; DROP TABLE b", expect=2)  # fmt: skip
    assert "more than one statement" in two.stderr.decode()
    outside = cli("erasure", "add", "folder", "7", "--reason", "r", "--pattern",
                  "../{subject}", expect=2)  # fmt: skip
    assert "without '..'" in outside.stderr.decode()
    cli("erasure", "add", "nothing", "7", "--reason", "r", "--pattern", "{subject}", expect=3)
    assert cli.json("erasure", "list") == []


# -- MariaDB ----------------------------------------------------------------------------------


def _my(service: MariaDBService, database: str | None, statement: str, *args: Any) -> list[Any]:
    connection = service.connect(database, autocommit=True)
    try:
        with connection.cursor() as cursor:
            cursor.execute(statement, args or None)
            return list(cursor.fetchall())
    finally:
        connection.close()


def test_mariadb_restore_reapplies_a_recorded_erasure(
    mariadb_service: MariaDBService, tmp_path: Path
) -> None:
    source, copy = unique_name("sr_er_my"), unique_name("sr_er_my_copy")
    try:
        _my(mariadb_service, None, f"CREATE DATABASE `{source}`")
        _my(mariadb_service, source, "CREATE TABLE users (id varchar(40) PRIMARY KEY, note text)")
        for subject in (ERASED, KEPT):
            _my(mariadb_service, source, "INSERT INTO users VALUES (%s, 'n')", subject)
        cli, point_id = backed_up(
            tmp_path,
            "people-my",
            {
                "type": "mysql",
                "host": mariadb_service.host,
                "port": mariadb_service.port,
                "user": mariadb_service.user,
                "password": f"env:{PASSWORD_VARIABLE}",
                "databases": [source],
            },
            {PASSWORD_VARIABLE: mariadb_service.password},
        )
        added = cli.json(
            "erasure", "add", "people-my", ERASED, "--reason", "ticket 1",
            "--sql", "DELETE FROM users WHERE id = %(subject)s",
            "--remaining", "SELECT count(*) FROM users WHERE id = %(subject)s",
        )  # fmt: skip
        restore_and_test(
            cli, point_id, added["id"], [f"database={copy}", "users=false"], affected=1
        )
        assert _my(mariadb_service, copy, "SELECT id FROM users") == [(KEPT,)]
    finally:
        for name in (source, copy):
            _my(mariadb_service, None, f"DROP DATABASE IF EXISTS `{name}`")


# -- Redis ------------------------------------------------------------------------------------


@pytest.fixture
def redis_servers(tmp_path: Path) -> Iterator[tuple[RedisServer, RedisServer]]:
    """A filled server to back up and an empty one to restore into (one password)."""
    password = unique_name("erasure_pw")
    with (
        scratch_server(SourceContext(scratch=tmp_path), password=password) as source,
        scratch_server(SourceContext(scratch=tmp_path), password=password) as target,
    ):
        for number in (0, 3):
            with source.client(number) as client:
                for subject in (ERASED, KEPT, "subject-4*"):
                    client.set(f"user:{subject}:profile", b"p")
                    client.set(f"user:{subject}:cart", b"c")
        yield source, target


def test_redis_restore_reapplies_a_recorded_erasure(
    redis_servers: tuple[RedisServer, RedisServer], tmp_path: Path
) -> None:
    source, target = redis_servers
    cli, point_id = backed_up(
        tmp_path,
        "cache",
        {
            "type": "redis",
            "url": f"redis://{source.host}:{source.port}",
            "password": f"env:{PASSWORD_VARIABLE}",
            "mode": "logical",
        },
        {PASSWORD_VARIABLE: source.password or ""},
    )
    added = cli.json(
        "erasure", "add", "cache", ERASED, "--reason", "ticket 2", "--pattern", "user:{subject}:*"
    )
    # A subject with a glob character matches itself only (escaped), not subject-42's keys.
    cli.json(
        "erasure", "add", "cache", "subject-4*", "--reason", "t", "--pattern", "user:{subject}:cart"
    )
    targets = [f"url=redis://{target.host}:{target.port}", f"password=env:{PASSWORD_VARIABLE}"]
    options = [argument for option in targets for argument in ("--target", option)]
    restored = cli.json("restore", point_id, *options, "--wait")
    assert restored["state"] == "COMPLETED", restored
    affected = {
        effect["request_id"]: effect["affected"] for effect in restored["result"]["erasures"]
    }
    assert affected[added["id"]] == 4  # two keys in each of two databases
    assert sorted(affected.values()) == [2, 4]
    for number in (0, 3):
        with target.client(number) as client:
            assert sorted(client.keys()) == sorted(
                [b"user:subject-7:profile", b"user:subject-7:cart", b"user:subject-4*:profile"]
            )
    verified = cli.json("verify", point_id, "--restore-test", "--wait")
    assert verified["state"] == "COMPLETED", verified
    (evidence,) = cli.json("list-recovery-points")
    assert {item["affected"] for item in evidence["restore_test"]["erasures"]} == {2, 4}


# -- files ------------------------------------------------------------------------------------


def test_files_restore_reapplies_a_recorded_erasure(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for subject in (ERASED, KEPT):
        (data / "users" / subject).mkdir(parents=True)
        (data / "users" / subject / "photo.jpg").write_bytes(b"jpg " + subject.encode())
        (data / "exports").mkdir(exist_ok=True)
        (data / "exports" / f"{subject}.csv").write_text("a,b\n")
    cli, point_id = backed_up(tmp_path, "uploads", {"type": "files", "paths": [str(data)]}, {})
    added = cli.json(
        "erasure", "add", "uploads", ERASED, "--reason", "ticket 3",
        "--pattern", "users/{subject}", "--pattern", "exports/{subject}.csv",
    )  # fmt: skip
    copy = tmp_path / "copy"
    restore_and_test(cli, point_id, added["id"], [f"path={copy}"], affected=2)
    restored = copy / str(data).lstrip("/")
    found = sorted(str(path.relative_to(restored)) for path in restored.rglob("*"))
    assert found == [
        "exports",
        f"exports/{KEPT}.csv",
        "users",
        f"users/{KEPT}",
        f"users/{KEPT}/photo.jpg",
    ]
