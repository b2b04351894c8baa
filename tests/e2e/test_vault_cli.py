"""`strongroom vault …` driven as an operator would, on a local vault."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.cli import strongroom, text
from tests.support.waiting import PATIENCE

pytestmark = pytest.mark.e2e

PASS = {"VAULT_PASS": "correct horse battery staple"}


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def vault(home: Path, tmp_path: Path) -> str:
    url = (tmp_path / "vault").as_uri()
    result = strongroom(
        home, "vault", "create", "v", "--url", url, "--passphrase-env", "VAULT_PASS", env=PASS
    )
    assert result.returncode == 0, text(result)
    return "v"


def payload(size: int, seed: int = 3) -> bytes:
    rng = random.Random(seed)
    return b"".join(rng.randbytes(512) + b"row,%d\n" % index * 20 for index in range(size // 1000))


def backup(home: Path, data: bytes, *args: str) -> str:
    result = strongroom(home, "vault", "backup", "v", "-", *args, env=PASS, stdin=data)
    assert result.returncode == 0, text(result)
    return result.stdout.decode().strip().splitlines()[-1]


def test_backup_points_restore_round_trip(home: Path, vault: str, tmp_path: Path) -> None:
    data = payload(3_000_000)
    first = backup(home, data, "--tag", "env=test")
    second = backup(home, data)

    listed = strongroom(home, "vault", "points", "v", "--output", "json", env=PASS)
    points = json.loads(listed.stdout)
    assert [point["id"] for point in points] == [first, second]
    assert points[0]["tags"] == {"env": "test"}
    assert points[1]["stats"]["new_stored_size"] == 0  # deduplicated against the first

    restored = strongroom(home, "vault", "restore", "v", second[:10], "--to", "-", env=PASS)
    assert restored.returncode == 0, text(restored)
    assert restored.stdout == data

    target = tmp_path / "out.bin"
    to_file = strongroom(home, "vault", "restore", "v", first, "--to", str(target), env=PASS)
    assert to_file.returncode == 0, text(to_file)
    assert target.read_bytes() == data


def test_backup_of_a_file_names_the_stream_after_it(home: Path, vault: str, tmp_path: Path) -> None:
    source = tmp_path / "dump.sql"
    source.write_bytes(payload(200_000))
    result = strongroom(home, "vault", "backup", "v", str(source), env=PASS)
    assert result.returncode == 0, text(result)
    point = result.stdout.decode().split()[-1]
    restored = strongroom(
        home, "vault", "restore", "v", point, "--stream", "dump.sql", "--to", "-", env=PASS
    )
    assert restored.stdout == source.read_bytes()


def test_wrong_passphrase_is_one_clear_line_and_writes_nothing(
    home: Path, vault: str, tmp_path: Path
) -> None:
    before = sorted(path.name for path in (tmp_path / "vault").rglob("*"))
    result = strongroom(
        home, "vault", "backup", "v", "-", env={"VAULT_PASS": "wrong"}, stdin=b"data"
    )
    assert result.returncode == 4
    assert result.stderr.decode().startswith("error: ")
    assert "Traceback" not in text(result)
    assert sorted(path.name for path in (tmp_path / "vault").rglob("*")) == before


def test_corruption_is_found_named_and_never_restored(
    home: Path, vault: str, tmp_path: Path
) -> None:
    point = backup(home, payload(1_000_000))
    assert strongroom(home, "vault", "verify", "v", "--read-data", env=PASS).returncode == 0
    pack = next(path for path in (tmp_path / "vault" / "data").rglob("*") if path.is_file())
    damaged = bytearray(pack.read_bytes())
    damaged[len(damaged) // 3] ^= 0x01
    pack.write_bytes(bytes(damaged))

    verify = strongroom(home, "vault", "verify", "v", "--read-data", "--output", "json", env=PASS)
    assert verify.returncode == 6
    report = json.loads(verify.stdout)
    assert report["ok"] is False
    assert [entry["point"] for entry in report["damaged"]] == [point]

    target = tmp_path / "restored.bin"
    restore = strongroom(home, "vault", "restore", "v", point, "--to", str(target), env=PASS)
    assert restore.returncode == 6
    assert not target.exists()
    assert not list(tmp_path.glob(".restored.bin*"))


def test_read_data_subset_checks_a_sample(home: Path, vault: str) -> None:
    backup(home, payload(500_000))
    result = strongroom(
        home, "vault", "verify", "v", "--read-data-subset", "100%", "-o", "json", env=PASS
    )
    assert result.returncode == 0, text(result)
    assert json.loads(result.stdout)["packs_checked"] >= 1
    bad = strongroom(home, "vault", "verify", "v", "--read-data-subset", "0%", env=PASS)
    assert bad.returncode == 2


def test_keys_add_open_remove_and_rotate(home: Path, vault: str, tmp_path: Path) -> None:
    point = backup(home, b"before rotation" * 1000)
    key_file = tmp_path / "second.key"
    added = strongroom(home, "vault", "key", "add", "v", "--new-key-file", str(key_file), env=PASS)
    assert added.returncode == 0, text(added)
    new_id = added.stdout.decode().strip()
    assert key_file.exists()
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"

    # the key file alone opens the vault, without the passphrase
    no_pass = {key: value for key, value in os.environ.items() if key != "VAULT_PASS"}
    listed = strongroom(
        home,
        "vault",
        "key",
        "list",
        "v",
        "--key-file",
        str(key_file),
        "-o",
        "json",
        env={**no_pass, "VAULT_PASS": ""},
    )
    assert listed.returncode == 0, text(listed)
    assert new_id in [entry["key_id"] for entry in json.loads(listed.stdout)]

    rotated = strongroom(home, "vault", "key", "rotate", "v", env=PASS)
    assert rotated.returncode == 0 and "generation 2" in rotated.stdout.decode()
    after = backup(home, b"after rotation" * 1000)
    described = json.loads(
        strongroom(home, "vault", "describe", "v", "-o", "json", env=PASS).stdout
    )
    assert described["key_generations"] == [1, 2]
    for point_id, expected in (
        (point, b"before rotation" * 1000),
        (after, b"after rotation" * 1000),
    ):
        restored = strongroom(home, "vault", "restore", "v", point_id, "--to", "-", env=PASS)
        assert restored.stdout == expected

    removed = strongroom(home, "vault", "key", "remove", "v", new_id, env=PASS)
    assert removed.returncode == 0, text(removed)
    refused = strongroom(home, "vault", "points", "v", "--key-file", str(key_file))
    assert refused.returncode == 4


def test_unknown_vault_and_missing_key_variable_are_clear(home: Path, vault: str) -> None:
    missing = strongroom(home, "vault", "points", "nope")
    assert missing.returncode == 3
    assert "no vault named 'nope'" in missing.stderr.decode()
    no_env = strongroom(home, "vault", "points", "v", env={"VAULT_PASS": ""})
    assert no_env.returncode == 2
    assert "VAULT_PASS" in no_env.stderr.decode()


def test_gc_removes_what_a_killed_backup_left_and_keeps_points(
    home: Path, vault: str, tmp_path: Path
) -> None:
    kept = payload(400_000, seed=11)
    point = backup(home, kept)
    env = {**os.environ, **PASS, "STRONGROOM_HOME": str(home)}
    packs = tmp_path / "vault" / "data"
    before = sum(1 for path in packs.rglob("*") if path.is_file())
    # a backup killed half way: some packs are uploaded, its manifest never is
    process = subprocess.Popen(
        [sys.executable, "-m", "strongroom", "vault", "backup", "v", "-", "--stream", "doomed"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdin is not None
    deadline = time.monotonic() + PATIENCE
    while sum(1 for path in packs.rglob("*") if path.is_file()) == before:
        assert time.monotonic() < deadline, "the backup never uploaded a pack"
        process.stdin.write(random.randbytes(4 * 1024 * 1024))
        process.stdin.flush()
    process.kill()
    process.wait(30)
    gc = strongroom(home, "vault", "gc", "v", "--grace-hours", "0", "-o", "json", env=PASS)
    assert gc.returncode == 0, text(gc)
    report = json.loads(gc.stdout)
    assert report["points"] == 1
    verify = strongroom(home, "vault", "verify", "v", "--read-data", "-o", "json", env=PASS)
    assert verify.returncode == 0, text(verify)
    assert json.loads(verify.stdout)["unindexed_packs"] == 0
    restored = strongroom(home, "vault", "restore", "v", point, "--to", "-", env=PASS)
    assert restored.stdout == kept


def test_repair_rebuilds_a_lost_index(home: Path, vault: str, tmp_path: Path) -> None:
    data = payload(600_000, seed=5)
    point = backup(home, data)
    for fragment in (tmp_path / "vault" / "index").rglob("*"):
        if fragment.is_file():
            fragment.unlink()
    shutil.rmtree(home / "cache", ignore_errors=True)
    repair = strongroom(home, "vault", "repair", "v", "-o", "json", env=PASS)
    assert repair.returncode == 0, text(repair)
    assert json.loads(repair.stdout)["packs_indexed"] >= 1
    restored = strongroom(home, "vault", "restore", "v", point, "--to", "-", env=PASS)
    assert restored.stdout == data


def test_a_damaged_gc_lease_is_named_listed_verified_and_cleared(
    home: Path, vault: str, tmp_path: Path
) -> None:
    """Issue #12 item 6: what a GC killed while writing its lease leaves must not block
    the vault forever, and the operator sees and removes it with the CLI."""
    first = backup(home, payload(50_000))
    damaged = tmp_path / "vault" / "locks" / ("exclusive-" + "ab" * 16)
    damaged.parent.mkdir(exist_ok=True)
    damaged.write_bytes(b"SRLK half a lease")
    refused = strongroom(home, "vault", "backup", "v", "-", env=PASS, stdin=b"new data")
    assert refused.returncode != 0
    message = text(refused)
    assert "damaged lease object locks/exclusive-" in message
    assert "strongroom vault clear-stale-leases" in message
    assert "Vault." not in message and "break_lock" not in message

    listed = strongroom(home, "vault", "leases", "v", "--output", "json", env=PASS)
    assert listed.returncode == 0, text(listed)
    (lease,) = json.loads(listed.stdout)
    assert (lease["object"], lease["kind"], lease["state"]) == (
        f"locks/{damaged.name}",
        "exclusive",
        "damaged",
    )

    verified = strongroom(home, "vault", "verify", "v", env=PASS)
    assert verified.returncode != 0
    assert f"locks/{damaged.name}" in text(verified)

    cleared = strongroom(home, "vault", "clear-stale-leases", "v", env=PASS)
    assert cleared.returncode == 0, text(cleared)
    assert f"removed damaged exclusive lease locks/{damaged.name}" in cleared.stdout.decode()
    assert not damaged.exists()
    second = backup(home, payload(50_000, seed=4))
    assert strongroom(home, "vault", "verify", "v", env=PASS).returncode == 0
    assert first != second
