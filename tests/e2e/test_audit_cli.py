"""`strongroom audit list / verify / export` after an operator's day, and a catalog edited
behind strongroom's back."""

from __future__ import annotations

import getpass
import json
import socket
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import strongroom, text

pytestmark = pytest.mark.e2e

PASS = {"VAULT_PASS": "correct horse battery staple"}


def run(home: Path, *args: str, expect: int = 0) -> str:
    result = strongroom(home, *args, env=PASS)
    assert result.returncode == expect, text(result)
    return result.stdout.decode()


def run_json(home: Path, *args: str, expect: int = 0) -> Any:
    return json.loads(run(home, *args, "--output", "json", expect=expect))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    url = (tmp_path / "vault").as_uri()
    run(home, "vault", "create", "v", "--url", url, "--passphrase-env", "VAULT_PASS")
    run(home, "vault", "key", "rotate", "v")
    run(home, "vault", "lock", "v", "--min-retention-days", "1")
    run(home, "report", "summary")
    return home


def test_operations_are_recorded_with_who_where_and_outcome(home: Path) -> None:
    entries = run_json(home, "audit", "list")
    actions = [entry["action"] for entry in entries]
    assert actions == ["vault.key.rotate", "vault.lock.set", "report.generate"]
    actor = f"{getpass.getuser()}@{socket.gethostname()}"
    assert {entry["actor"] for entry in entries} == {actor}
    assert all(entry["origin"].startswith("cli on ") for entry in entries)
    assert [entry["outcome"] for entry in entries] == ["succeeded"] * 3
    assert entries[0]["details"] == {"generation": 2}

    refused = strongroom(home, "vault", "unlock", "nope", env=PASS)
    assert refused.returncode != 0
    only_vault_ops = run_json(home, "audit", "list", "--action", "vault.*")
    assert [entry["action"] for entry in only_vault_ops] == ["vault.key.rotate", "vault.lock.set"]

    verified = run_json(home, "audit", "verify")
    assert verified["intact"] is True and verified["entries"] == 3


def test_export_writes_json_lines_of_a_period(home: Path, tmp_path: Path) -> None:
    exported = run(home, "audit", "export", "--since", "1h", "--until", "2099-01-01")
    lines = [json.loads(line) for line in exported.splitlines()]
    assert [line["seq"] for line in lines] == [1, 2, 3]
    assert lines[1]["previous_hash"] == lines[0]["entry_hash"]
    assert run(home, "audit", "export", "--until", "2000-01-01") == ""
    target = tmp_path / "trail.jsonl"
    run(home, "audit", "export", "--to", str(target))
    assert target.read_text().splitlines() == exported.splitlines()


def test_verify_names_an_entry_deleted_behind_strongroom(home: Path) -> None:
    with sqlite3.connect(home / "catalog.db") as database:
        database.execute("DELETE FROM audit_entries WHERE seq = 2")
    result = strongroom(home, "audit", "verify", env=PASS)
    assert result.returncode == 6, text(result)
    assert "deleted: entry 2 is missing" in result.stdout.decode()
    assert "the audit trail was altered" in result.stderr.decode()


def test_verify_names_an_edited_entry(home: Path) -> None:
    with sqlite3.connect(home / "catalog.db") as database:
        database.execute("UPDATE audit_entries SET actor = 'mallory@elsewhere' WHERE seq = 1")
    found = run_json(home, "audit", "verify", expect=6)
    assert [(problem["kind"], problem["seq"]) for problem in found["problems"]] == [("edited", 1)]
