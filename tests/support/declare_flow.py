"""The declarative verbs' flows (validate, apply, create-plan, lists, rebuild), driven
through the CLI as a user would.

The configuration applied is ``examples/strongroom.yaml`` with its vaults moved to
``file://`` folders of the test and keyed by ``env:`` passphrase references. The flows take a :class:`Cli`, so
``tests/e2e/test_declare.py`` runs them on SQLite and ``tests/integration/test_apply_postgres.py``
runs them again with a PostgreSQL catalog.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.support.cli import strongroom, text

REPOSITORY = Path(__file__).resolve().parents[2]
EXAMPLE = REPOSITORY / "examples" / "strongroom.yaml"
SEED_AWS = REPOSITORY / "examples" / "aws-backup-plan.json"
SEED_PLAN = "ecommerce-production-database-backup"
PRODUCTION = "ecommerce-production-vault"
LONG_TERM = "ecommerce-long-term-vault"
PASSPHRASES = {"SR_E2E_PRODUCTION": "production passphrase", "SR_E2E_LONG_TERM": "long term"}


@dataclass
class Cli:
    """``strongroom`` with one home, the root options of a catalog, and an environment."""

    home: Path
    root: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=lambda: dict(PASSPHRASES))

    def run(self, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        return strongroom(self.home, *self.root, *args, env=self.env, stdin=stdin)

    def ok(self, *args: str, stdin: bytes | None = None) -> str:
        result = self.run(*args, stdin=stdin)
        assert result.returncode == 0, text(result)
        return result.stdout.decode()

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--output", "json"))


def example_config(root: Path) -> dict[str, Any]:
    """The example configuration, its vaults moved under ``root``, its catalog unset."""
    config = yaml.safe_load(EXAMPLE.read_text())
    del config["catalog"]
    for (name, vault), variable in zip(config["vaults"].items(), PASSPHRASES, strict=True):
        vault["url"] = (root / name).as_uri()
        vault["key"] = {"provider": "passphrase", "passphrase": f"env:{variable}"}
        vault["cold_tier"] = {
            "kind": "same-store",
            "min_storage_days": vault["cold_tier"].get("min_storage_days", 0),
        }
    return config


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def lines(output: str) -> list[str]:
    return [line.rstrip() for line in output.splitlines()]


# -- flows (run here on SQLite, in the integration tests on PostgreSQL) -----------------


def apply_flow(cli: Cli, root: Path) -> None:
    """apply, apply again, edit, dry run, prune, lists."""
    config = example_config(root)
    path = write_config(root / "strongroom.yaml", config)

    first = lines(cli.ok("apply", "-f", str(path)))
    assert f"+ vault {PRODUCTION}: created in its store" in "\n".join(first)
    for line in [
        "+ resource ecommerce-prod-db: postgres",
        "+ resource ecommerce-uploads: files",
        f"+ plan {SEED_PLAN}: 3 rules",
        f"    + rule {SEED_PLAN}/weekly-backup: {LONG_TERM}",
        f"plan {SEED_PLAN} selects: ecommerce-prod-db, ecommerce-uploads",
        "applied: 8 created, 1 updated, 0 removed",  # the concurrency limits (were none)
    ]:
        assert line in first
    assert (root / PRODUCTION / "config").is_file()

    assert lines(cli.ok("apply", "-f", str(path)))[-1] == (
        "no changes: the catalog already holds what the file declares"
    )

    rules = config["plans"][SEED_PLAN]["rules"]
    rules[1]["schedule"] = "cron(30 3 * * ? *)"
    rules[1]["lifecycle"]["delete_after_days"] = 120
    del rules[0]
    config["resources"]["ecommerce-uploads"]["tags"]["Environment"] = "staging"
    config["resources"]["ecommerce-uploads"]["tags"]["BackupEnabled"] = "false"
    write_config(path, config)

    preview = cli.json("apply", "-f", str(path), "--dry-run")
    assert preview["dry_run"] and not preview["applied"]
    assert {(c["action"], c["kind"], c["name"]): c["fields"] for c in preview["changes"]} == {
        ("update", "resource", "ecommerce-uploads"): ["tags.BackupEnabled", "tags.Environment"],
        ("update", "plan", SEED_PLAN): ["rules"],
        ("update", "rule", f"{SEED_PLAN}/daily-backup"): [
            "lifecycle.delete_after_days",
            "schedule",
        ],
        ("remove", "rule", f"{SEED_PLAN}/continuous-backup"): [],
    }
    assert preview["selections"] == {SEED_PLAN: ["ecommerce-prod-db"]}
    untouched = cli.json("list-plans")
    assert [rule["name"] for rule in untouched[0]["rules"]] == [
        "continuous-backup",
        "daily-backup",
        "weekly-backup",
    ]

    edited = lines(cli.ok("apply", "-f", str(path)))
    assert f"    ~ rule {SEED_PLAN}/daily-backup: lifecycle.delete_after_days, schedule" in edited
    assert f"    - rule {SEED_PLAN}/continuous-backup" in edited
    assert "applied: 0 created, 3 updated, 1 removed" in edited

    [plan] = cli.json("list-plans")
    assert plan["name"] == SEED_PLAN
    assert plan["selected"] == ["ecommerce-prod-db"]
    daily = next(rule for rule in plan["rules"] if rule["name"] == "daily-backup")
    assert daily["schedule"] == "cron(30 3 * * ? *)"
    assert daily["lifecycle"] == {"move_to_cold_after_days": 30, "delete_after_days": 120}
    assert daily["target_vault"] == PRODUCTION
    assert (daily["start_window_minutes"], daily["completion_window_minutes"]) == (60, 240)

    resources = {item["name"]: item for item in cli.json("list-resources")}
    assert resources["ecommerce-prod-db"]["plans"] == [SEED_PLAN]
    assert resources["ecommerce-uploads"]["plans"] == []
    assert resources["ecommerce-uploads"]["tags"]["Environment"] == "staging"
    assert [item["name"] for item in cli.json("list-resources", "--type", "files")] == [
        "ecommerce-uploads"
    ]

    del config["resources"]["ecommerce-uploads"]
    write_config(path, config)
    kept = cli.json("apply", "-f", str(path))
    assert kept["kept"] == [
        {
            "action": "keep",
            "kind": "resource",
            "name": "ecommerce-uploads",
            "fields": [],
            "note": "not declared; --prune removes it",
        }
    ]
    pruned = cli.json("apply", "-f", str(path), "--prune")
    assert [(c["action"], c["name"]) for c in pruned["changes"]] == [
        ("remove", "ecommerce-uploads")
    ]
    assert [item["name"] for item in cli.json("list-resources")] == ["ecommerce-prod-db"]


def create_plan_flow(cli: Cli, root: Path) -> None:
    """create-plan with the seed's AWS document: vaults must be registered, then it works."""
    refused = cli.run("create-plan", "-f", str(SEED_AWS))
    assert refused.returncode == 3, text(refused)
    assert (
        f"rule 'weekly-backup' of plan '{SEED_PLAN}' targets vault '{LONG_TERM}', which is not "
        "registered in the catalog" in refused.stderr.decode()
    )

    config = example_config(root)
    del config["plans"]
    cli.ok("apply", "-f", str(write_config(root / "vaults.yaml", config)))

    created = lines(cli.ok("create-plan", "-f", str(SEED_AWS)))
    assert f"+ plan {SEED_PLAN}: 3 rules" in created
    assert f"    + rule {SEED_PLAN}/continuous-backup: {PRODUCTION}" in created
    assert f"plan {SEED_PLAN} selects: nothing" in created
    assert f"{SEED_PLAN}: warning: plan '{SEED_PLAN}' has no selections" in "\n".join(created)

    again = cli.run("create-plan", "-f", str(SEED_AWS))
    assert again.returncode == 7, text(again)
    assert "already exists" in again.stderr.decode()

    [plan] = cli.json("list-plans")
    assert [(rule["name"], rule["timezone"]) for rule in plan["rules"]] == [
        ("continuous-backup", "Etc/UTC"),
        ("daily-backup", "Etc/UTC"),
        ("weekly-backup", "Etc/UTC"),
    ]

    # The whole example declares the same plan with selections and UTC: an update.
    full = write_config(root / "strongroom.yaml", example_config(root))
    update = cli.json("apply", "-f", str(full))
    assert ("update", "plan", SEED_PLAN) in {
        (c["action"], c["kind"], c["name"]) for c in update["changes"]
    }
    assert update["selections"] == {SEED_PLAN: ["ecommerce-prod-db", "ecommerce-uploads"]}


def rebuild_flow(cli: Cli, root: Path, reset_catalog: Callable[[], None]) -> None:
    """Points written with `vault backup`, the catalog lost, re-applied and rebuilt."""
    path = write_config(root / "strongroom.yaml", example_config(root))
    cli.ok("apply", "-f", str(path))
    first = cli.ok(
        "vault",
        "backup",
        PRODUCTION,
        "-",
        "--tag",
        "strongroom:resource=ecommerce-prod-db",
        "--tag",
        f"strongroom:rule={SEED_PLAN}/daily-backup",
        stdin=b"first dump" * 5000,
    ).split()[-1]
    second = cli.ok(
        "vault",
        "backup",
        PRODUCTION,
        "-",
        "--tag",
        "strongroom:resource=ecommerce-prod-db",
        stdin=b"second dump" * 5000,
    ).split()[-1]
    untagged = cli.ok("vault", "backup", LONG_TERM, "-", stdin=b"loose" * 100).split()[-1]

    report = cli.json("catalog", "rebuild")
    assert report["totals"]["recorded"] == 2
    assert report["totals"]["skipped"] == 1
    resources = {item["name"]: item for item in cli.json("list-resources")}
    assert resources["ecommerce-prod-db"]["last_point"]["vault"] == PRODUCTION
    assert resources["ecommerce-prod-db"]["last_point"]["id"] in {first, second}

    reset_catalog()
    assert cli.json("list-resources") == []
    cli.ok("apply", "-f", str(path))
    rebuilt = cli.json("catalog", "rebuild")
    assert rebuilt["ok"]
    assert rebuilt["totals"] == {
        "manifests": 3,
        "recorded": 2,
        "present": 0,
        "revived": 0,
        "missing": 0,
        "skipped": 1,
        "damaged": 0,
    }
    by_vault = {vault["vault"]: vault for vault in rebuilt["vaults"]}
    assert list(by_vault[LONG_TERM]["skipped"]) == [untagged]
    resources = {item["name"]: item for item in cli.json("list-resources")}
    assert resources["ecommerce-prod-db"]["last_point"]["id"] in {first, second}

    table = cli.ok("catalog", "rebuild", "--vault", PRODUCTION)
    assert PRODUCTION in table
    assert cli.json("catalog", "rebuild", "--vault", PRODUCTION)["totals"]["present"] == 2
