"""A user's day with the operational verbs, driven through the CLI; run on SQLite and PostgreSQL.

:func:`run_flow` creates a vault, declares resources and a plan (with ``strongroom apply``
when the command exists, else through the services API), then backs up, follows jobs,
lists, restores and compares byte for byte, verifies with a restore test, tampers with a
pack and sees verify fail, sees a retryable failure retried and a non-retryable one not,
reads the report, and lets ``serve --once`` run queued backups within the declared
concurrency limit (``--wait`` never runs an older queued job). The catalog is SQLite in the home folder, or the PostgreSQL URL
given.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from strongroom.catalog import resources as catalog_resources
from strongroom.catalog.settings import ConcurrencyLimits, write_concurrency_limits
from strongroom.config.resources import FilesResource, PostgresResource, SqliteResource
from strongroom.services.context import AppContext
from strongroom.services.declare.resources import register_resource
from tests.support.catalog import most_running_at_once
from tests.support.cli import strongroom, text
from tests.support.data import (
    flip_byte_in_a_pack,
    make_database,
    make_tree,
    tree_digest,
)

PASSPHRASE = {"VAULT_PASS": "correct horse battery staple"}


@dataclass
class Cli:
    """The strongroom command for one home (and catalog URL), with the vault passphrase set."""

    home: Path
    catalog_url: str | None = None
    env: dict[str, str] = field(default_factory=dict)

    def __call__(self, *args: str, expect: int | None = 0) -> subprocess.CompletedProcess[bytes]:
        environment = {**PASSPHRASE, **self.env}
        if self.catalog_url is not None:
            environment["STRONGROOM_CATALOG_URL"] = self.catalog_url
        result = strongroom(self.home, *args, env=environment)
        if expect is not None:
            assert result.returncode == expect, f"strongroom {' '.join(args)}:\n{text(result)}"
        return result

    def json(self, *args: str, expect: int | None = 0) -> Any:
        """Run with ``--output json`` and parse stdout."""
        result = self(*args, "--output", "json", expect=expect)
        return json.loads(result.stdout)

    def context(self) -> AppContext:
        """A services context on the same home and catalog (for seeding without apply)."""
        return AppContext(home=self.home, catalog_url=self.catalog_url)


@dataclass
class World:
    """What the flow set up: folders, and the names of what it declared."""

    root: Path
    data: Path
    database: Path
    missing: Path
    vault_store: Path


def apply_exists(cli: Cli) -> bool:
    """True once 'strongroom apply' is a command."""
    return cli("apply", "--help", expect=None).returncode == 0


def config_yaml(world: World) -> str:
    """The declaration the flow applies: the vault, four resources, one plan with one rule."""
    return f"""\
concurrency:
  global: 1
vaults:
  v:
    url: {world.vault_store.as_uri()}
    key:
      provider: passphrase
      passphrase: env:VAULT_PASS
resources:
  docs:
    type: files
    paths: [{world.data}]
  app-db:
    type: sqlite
    path: {world.database}
  gone:
    type: sqlite
    path: {world.missing}
  down-db:
    type: postgres
    host: 127.0.0.1
    port: 9
    databases: [nothing]
plans:
  ops:
    rules:
      - name: fast
        schedule: rate(1 day)
        target_vault: v
        lifecycle: {{delete_after_days: 30}}
        recovery_point_tags: {{team: ops}}
        retry: {{max_attempts: 2, interval_seconds: 1, backoff_rate: 1.0}}
    selections:
      - name: everything
        names: [docs, app-db, gone, down-db]
"""


def seed_with_services(cli: Cli, world: World) -> None:
    """Declare what :func:`config_yaml` declares, through the services API."""
    context = cli.context()
    try:
        now = context.now()
        with context.catalog.session() as session:
            for name, model in {
                "docs": FilesResource(type="files", paths=[str(world.data)]),
                "app-db": SqliteResource(type="sqlite", path=str(world.database)),
                "gone": SqliteResource(type="sqlite", path=str(world.missing)),
                "down-db": PostgresResource(
                    type="postgres", host="127.0.0.1", port=9, databases=["nothing"]
                ),
            }.items():
                register_resource(session, name, model, now)
            plan = catalog_resources.upsert_plan(session, name="ops", at=now)
            catalog_resources.upsert_rule(
                session,
                plan=plan,
                name="fast",
                vault=catalog_resources.get_vault(session, "v"),
                at=now,
                schedule="rate(1 day)",
                lifecycle={"delete_after_days": 30},
                recovery_point_tags={"team": "ops"},
                retry_policy={"max_attempts": 2, "interval_seconds": 1, "backoff_rate": 1.0},
            )
    finally:
        context.close()


def set_up(cli: Cli, root: Path, *, use_apply: bool) -> tuple[World, str]:
    """Create the vault and data, declare everything; return the world and how it was seeded."""
    world = World(
        root=root,
        data=make_tree(root / "data"),
        database=make_database(root / "app.db"),
        missing=root / "missing.db",
        vault_store=root / "vault",
    )
    url = world.vault_store.as_uri()
    cli("vault", "create", "v", "--url", url, "--passphrase-env", "VAULT_PASS")
    if use_apply and apply_exists(cli):
        config = root / "config.yaml"
        config.write_text(config_yaml(world))
        cli("apply", "-f", str(config))
        return world, "apply"
    seed_with_services(cli, world)
    return world, "services"


def states(description: dict[str, Any]) -> list[str]:
    return [item["to"] for item in description["transitions"]]


def run_flow(cli: Cli, root: Path, *, use_apply: bool = True) -> str:
    """The whole flow (see the module docstring); returns how the catalog was seeded."""
    world, seeded = set_up(cli, root, use_apply=use_apply)

    # A backup through the rule, followed to its end.
    backup = cli.json("start-backup", "docs", "--rule", "ops/fast", "--wait")
    assert backup["state"] == "COMPLETED", backup
    assert states(backup) == ["CREATED", "PENDING", "RUNNING", "COMPLETED"]
    point_id = backup["result"]["point_id"]
    assert backup["vault"] == "v" and backup["rule"] == "ops/fast"

    # A backup queued for the daemon, watched, then run here with wait-job.
    queued = cli("start-backup", "app-db", "--vault", "v")
    job_id = queued.stdout.decode().strip().splitlines()[-1]
    assert "strongroom serve" in queued.stderr.decode()
    assert states(cli.json("describe-job", job_id)) == ["CREATED", "PENDING"]
    conflict = cli("start-backup", "app-db", "--vault", "v", expect=7)
    assert job_id in conflict.stderr.decode()
    # --wait runs its own job only: the older queued one stays for the daemon.
    again = cli.json("start-backup", "docs", "--vault", "v", "--wait")
    assert again["state"] == "COMPLETED", again
    assert states(cli.json("describe-job", job_id)) == ["CREATED", "PENDING"]
    waited = cli.json("wait-job", job_id[:8])
    assert states(waited) == ["CREATED", "PENDING", "RUNNING", "COMPLETED"]

    # Listing.
    listed = cli.json("list-backups")
    assert {job["id"] for job in listed} == {backup["id"], again["id"], job_id}
    only_docs = cli.json("list-backups", "--resource", "docs", "--state", "completed")
    assert [job["id"] for job in only_docs] == [again["id"], backup["id"]]
    assert cli.json("list-backups", "--state", "FAILED") == []
    points = {point["id"]: point for point in cli.json("list-recovery-points", "--vault", "v")}
    assert set(points) == {point_id, again["result"]["point_id"], waited["result"]["point_id"]}
    docs_point = points[point_id]
    assert docs_point["resource"] == "docs" and docs_point["job_id"] == backup["id"]
    assert docs_point["tags"]["team"] == "ops"
    assert docs_point["tags"]["strongroom:rule"] == "ops/fast"
    assert docs_point["delete_at"] is not None
    cli("list-recovery-points")  # the table renders

    # Restore elsewhere and compare byte for byte.
    target = root / "restored"
    restored = cli.json("restore", point_id[:12], "--target", f"path={target}", "--wait")
    assert restored["state"] == "COMPLETED", restored
    assert tree_digest(target / world.data.relative_to("/")) == tree_digest(world.data)

    # Verify every byte and restore-test; the evidence is on the point.
    verified = cli.json("verify", point_id, "--read-data", "--restore-test", "--wait")
    assert verified["state"] == "COMPLETED", verified
    assert verified["result"]["restore_tests"][0]["ok"] is True
    evidence = {p["id"]: p for p in cli.json("list-recovery-points", "--resource", "docs")}
    assert evidence[point_id]["verification_ok"] is True
    assert evidence[point_id]["restore_test_ok"] is True
    assert evidence[point_id]["restore_test"]["checks_failed"] == 0

    # A retryable failure is retried (per the rule's policy), a non-retryable one is not.
    retried = cli.json("start-backup", "down-db", "--rule", "ops/fast", "--wait", expect=1)
    assert retried["state"] == "FAILED"
    assert retried["error"]["code"] == "NetworkError" and retried["error"]["retryable"]
    assert retried["attempt"] == retried["max_attempts"] >= 2
    assert "RUNNING -> PENDING" in " ".join(
        f"{item['from']} -> {item['to']}" for item in retried["transitions"]
    )
    once = cli.json(
        "start-backup", "gone", "--vault", "v", "--wait", "--retry-interval", "0.1", expect=3
    )
    assert (once["state"], once["attempt"]) == ("FAILED", 1)
    assert once["error"]["code"] == "ResourceNotFoundException"

    # Damage one pack: verify with --read-data names the point and exits 6.
    flip_byte_in_a_pack(world.vault_store)
    damaged = cli("verify", point_id, "--read-data", "--wait", expect=6)
    assert point_id in damaged.stderr.decode()
    assert "IntegrityError" in damaged.stderr.decode()

    # The report.
    summary = cli.json("report", "summary", "--since", "1h")
    backups = summary["backups"]
    assert (backups["total"], backups["completed"], backups["failed"]) == (5, 3, 2)
    assert backups["success_rate"] == 0.6
    assert backups["logical_size"] > 300_000
    assert summary["jobs"]["by_kind"]["verify"] == {"COMPLETED": 1, "FAILED": 1}
    resources = {item["resource"]: item for item in summary["resources"]}
    assert resources["docs"]["stale"] is False
    assert resources["gone"]["stale"] is True
    assert {item["job_id"] for item in summary["failures"]} >= {retried["id"], once["id"]}
    detailed = cli.json("report", "detailed", "--kind", "backup")
    assert len(detailed) == 5
    cli("report", "summary")
    cli("report", "detailed")

    # The daemon keeps the declared concurrency limit (global: 1) with four workers.
    if seeded == "services":
        store_global_limit(cli, 1)
    queued_ids = [
        cli("start-backup", name, "--vault", "v").stdout.decode().split()[-1]
        for name in ("docs", "app-db")
    ]
    cli("serve", "--once", "--workers", "4", "--tick", "0.1")
    for queued_id in queued_ids:
        assert cli.json("describe-job", queued_id)["state"] == "COMPLETED"
    context = cli.context()
    try:
        assert most_running_at_once(context.catalog) == 1
    finally:
        context.close()
    return seeded


def store_global_limit(cli: Cli, limit: int) -> None:
    """Store a global concurrency limit as 'apply' does (for the services-seeded flow)."""
    context = cli.context()
    try:
        with context.catalog.session() as session:
            write_concurrency_limits(
                session, ConcurrencyLimits(max_running=limit), at=context.now()
            )
    finally:
        context.close()
