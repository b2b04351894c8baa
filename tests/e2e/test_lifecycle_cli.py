"""`strongroom vault lock`, `legal-hold` and `lifecycle` driven as an operator would.

The recovery points are written with `strongroom vault backup`; the test then records them
in the catalog with lifecycle dates in the past, as a backup job of a plan would have.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from strongroom.catalog import open_catalog
from strongroom.catalog import points as catalog_points
from strongroom.catalog import resources as catalog_resources
from tests.support.cli import strongroom, text

pytestmark = pytest.mark.e2e

PASS = {"VAULT_PASS": "correct horse battery staple"}
CREATED = datetime.now(UTC).replace(microsecond=0) - timedelta(days=40)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    url = (tmp_path / "vault").as_uri()
    created = strongroom(
        home, "vault", "create", "v", "--url", url, "--passphrase-env", "VAULT_PASS", env=PASS
    )
    assert created.returncode == 0, text(created)
    return home


def backup_and_record(home: Path, data: bytes, *, delete_after_days: int) -> str:
    result = strongroom(home, "vault", "backup", "v", "-", env=PASS, stdin=data)
    assert result.returncode == 0, text(result)
    point_id = result.stdout.decode().split()[-1]
    with open_catalog(None, home) as catalog, catalog.session() as session:
        resource = catalog_resources.upsert_resource(
            session, name="orders-db", type="postgres", at=CREATED
        )
        catalog_points.record_recovery_point(
            session,
            point_id=point_id,
            vault_id=catalog_resources.get_vault(session, "v").id,
            resource_id=resource.id,
            created_at=CREATED,
            delete_at=CREATED + timedelta(days=delete_after_days),
        )
    return point_id


def run_json(home: Path, *args: str) -> Any:
    result = strongroom(home, *args, "--output", "json", env=PASS)
    assert result.returncode == 0, text(result)
    return json.loads(result.stdout)


def test_lock_hold_preview_and_run(home: Path) -> None:
    expired = backup_and_record(home, b"expired rows\n" * 5000, delete_after_days=30)
    held = backup_and_record(home, b"held rows\n" * 5000, delete_after_days=30)

    locked = strongroom(home, "vault", "lock", "v", "--min-retention-days", "60")
    assert locked.returncode == 0, text(locked)
    assert "lock set: governance lock (min retention 60 days)" in locked.stdout.decode()
    assert run_json(home, "vault", "lock-status", "v")["mode"] == "governance"

    hold = strongroom(home, "legal-hold", "add", held[:10], "--reason", "case 7")
    assert hold.returncode == 0, text(hold)
    [listed] = run_json(home, "legal-hold", "list")
    assert (listed["point"], listed["reason"]) == (held, "case 7")

    preview = {point["point"]: point for point in run_json(home, "lifecycle", "preview")}
    unlock_day = (CREATED + timedelta(days=60)).isoformat()
    assert preview[expired]["deletes_at"] == unlock_day
    assert [reason["kind"] for reason in preview[expired]["kept_by"]] == ["rule", "vault_lock"]
    assert preview[held]["expiry"] == "never while the legal hold lasts"
    table = strongroom(home, "lifecycle", "preview")
    assert "case 7" in table.stdout.decode(), text(table)

    refused = strongroom(home, "vault", "unlock", "v")
    assert refused.returncode == 8, text(refused)
    assert "governance-mode lock" in refused.stderr.decode()
    lifted = strongroom(home, "vault", "unlock", "v", "--privileged", "--reason", "INC-1")
    assert lifted.returncode == 0, text(lifted)
    history = run_json(home, "vault", "lock-status", "v")["history"]
    assert [item["event"] for item in history] == [
        "vault.lock.set",
        "vault.lock.change_refused",
        "vault.lock.removed",
    ]
    assert history[-1]["reason"] == "INC-1" and history[-1]["privileged"] is True

    dry = run_json(home, "lifecycle", "run", "--dry-run")
    assert {(a["point"], a["outcome"]) for a in dry["actions"]} == {
        (expired, "would_delete"),
        (held, "kept"),
    }

    done = run_json(home, "lifecycle", "run")
    assert {(a["point"], a["outcome"]) for a in done["actions"]} == {
        (expired, "deleted"),
        (held, "kept"),
    }
    assert [point["id"] for point in run_json(home, "vault", "points", "v")] == [held]

    released = strongroom(home, "legal-hold", "remove", held, "--reason", "case closed")
    assert released.returncode == 0, text(released)
    final = run_json(home, "lifecycle", "run", "--gc")
    assert [(a["point"], a["outcome"]) for a in final["actions"]] == [(held, "deleted")]
    assert list(final["gc"]) == ["v"]
    assert run_json(home, "vault", "points", "v") == []


def test_a_compliance_lock_past_its_grace_refuses_and_records_changes(home: Path) -> None:
    locked = strongroom(
        home,
        "vault",
        "lock",
        "v",
        "--mode",
        "compliance",
        "--min-retention-days",
        "30",
        "--changeable-for-days",
        "3",
    )
    assert locked.returncode == 0, text(locked)
    with open_catalog(None, home) as catalog, catalog.session() as session:
        # Three days pass: the grace period is over.
        catalog_resources.get_vault(session, "v").lock_changeable_until = datetime.now(
            UTC
        ) - timedelta(minutes=1)

    for attempt in (
        ["vault", "unlock", "v", "--privileged", "--reason", "try"],
        [
            "vault",
            "lock",
            "v",
            "--mode",
            "compliance",
            "--min-retention-days",
            "1",
            "--changeable-for-days",
            "3",
        ],
    ):
        refused = strongroom(home, *attempt)
        assert refused.returncode == 8, text(refused)
        assert "immutable" in refused.stderr.decode()

    status = run_json(home, "vault", "lock-status", "v")
    assert status["min_retention_days"] == 30
    assert [item["event"] for item in status["history"]] == [
        "vault.lock.set",
        "vault.lock.change_refused",
        "vault.lock.change_refused",
    ]
    assert all(item["actor"] for item in status["history"])
