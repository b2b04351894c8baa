"""Audit head anchors (#18): a signed checkpoint of the trail's head kept in a vault, and
`audit verify` catching the newest entries removed from the catalog behind its back."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.e2e.test_audit_cli import run, run_json
from tests.support.cli import strongroom, text

pytestmark = pytest.mark.e2e


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    url = (tmp_path / "vault").as_uri()
    run(home, "vault", "create", "v", "--url", url, "--passphrase-env", "VAULT_PASS")
    run(home, "vault", "key", "rotate", "v")
    run(home, "report", "signing-key", "create")
    run(home, "report", "summary")
    run(home, "report", "summary")
    return home


def test_removing_the_newest_entries_is_caught_by_the_anchor(home: Path, tmp_path: Path) -> None:
    written = run_json(home, "audit", "anchor", "--vault", "v")
    assert written["head_seq"] == 3 and written["entries"] == 3
    stored = tmp_path / "vault" / written["name"]
    anchor = json.loads(stored.read_text())
    assert anchor["head_hash"] == written["head_hash"] and anchor["signature"]["value"]

    verified = run_json(home, "audit", "verify")
    assert verified["intact"] is True
    assert [item["name"] for item in verified["anchors"]] == [written["name"]]

    with sqlite3.connect(home / "catalog.db") as database:
        database.execute("DELETE FROM audit_entries WHERE seq >= 2")
    failed = strongroom(home, "audit", "verify", "--output", "json")
    assert failed.returncode == 6, text(failed)
    found = json.loads(failed.stdout)
    (problem,) = found["problems"]
    assert problem["kind"] == "removed-newest" and (problem["seq"], problem["last_seq"]) == (2, 3)
    assert written["name"] in problem["message"] and "vault v" in problem["message"]


def test_an_anchor_edited_in_the_vault_is_refused(home: Path, tmp_path: Path) -> None:
    written = run_json(home, "audit", "anchor", "--vault", "v")
    stored = tmp_path / "vault" / written["name"]
    anchor = json.loads(stored.read_text())
    anchor["head_seq"] = 1  # claim a shorter trail, to make a later removal look fine
    stored.chmod(0o600)
    stored.write_text(json.dumps(anchor))
    refused = strongroom(home, "audit", "verify")
    assert refused.returncode == 6, text(refused)
    assert "changed after it was signed" in refused.stderr.decode()


def test_an_anchor_needs_the_signing_key_and_an_intact_trail(home: Path) -> None:
    (home / "keys" / "report-signing.key").rename(home / "keys" / "elsewhere.key")
    missing = strongroom(home, "audit", "anchor", "--vault", "v")
    assert missing.returncode == 3 and "no report signing key" in missing.stderr.decode()
    key = home / "keys" / "elsewhere.key"
    with sqlite3.connect(home / "catalog.db") as database:
        database.execute("DELETE FROM audit_entries WHERE seq = 2")
    broken = strongroom(home, "audit", "anchor", "--vault", "v", "--signing-key", str(key))
    assert broken.returncode == 6 and "no anchor is written" in broken.stderr.decode()
