"""A vault on a real filesystem that fills up mid-backup: the backup fails with a typed,
explained error, and the vault stays consistent, restorable and collectable.

The filesystem is a small tmpfs mounted for the test. That needs the right to mount
(root with CAP_SYS_ADMIN, as on the development and CI machines); without it the tests
skip and say why, and under CI=true they fail (see ``tests.support.environment``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from strongroom.errors import InsufficientStorageError
from strongroom.keys import PassphraseProvider
from strongroom.storage.local import TEMP_SUFFIX, LocalStore
from strongroom.vault import Vault, VaultSettings, WriterOptions
from tests.support.cli import strongroom, text
from tests.support.environment import mounted_tmpfs
from tests.support.vault import FAST_KDF, PASSPHRASE, assert_no_garbage

DISK_BYTES = 8 * 1024 * 1024
SETTINGS = VaultSettings(
    chunk_min_size=16 * 1024,
    chunk_avg_size=64 * 1024,
    chunk_max_size=256 * 1024,
    pack_target_size=1024 * 1024,
)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A fresh 8 MiB tmpfs, unmounted after the test."""
    with mounted_tmpfs(tmp_path / "disk", DISK_BYTES) as mount_point:
        yield mount_point


def leftovers(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.name.endswith(TEMP_SUFFIX)]


def test_a_backup_that_fills_the_disk_fails_cleanly(small_disk: Path, tmp_path: Path) -> None:
    root = small_disk / "vault"
    store = LocalStore(root)
    provider = PassphraseProvider(PASSPHRASE)
    first_data = os.urandom(1_500_000)
    Vault.create(store, provider, SETTINGS, kdf=FAST_KDF).close()
    with Vault.open(store, provider, cache_dir=tmp_path / "cache") as vault:
        with vault.writer(WriterOptions(workers=2, uploads=2)) as writer:
            writer.add_stream("first", iter([first_data]))
            first = writer.commit()

        with (
            pytest.raises(InsufficientStorageError, match="No space left") as full,
            vault.writer(WriterOptions(workers=2, uploads=2)) as writer,
        ):
            writer.add_stream("too big", iter([os.urandom(DISK_BYTES)]))
            writer.commit()

        assert not full.value.retryable
        assert writer.state == "aborted"
        assert leftovers(root) == []
        assert [point.id for point in vault.points()] == [first]
        assert vault.verify(read_data=True).ok
        with vault.reader(first) as reader:
            assert reader.read_stream("first") == first_data
        vault.gc(grace=timedelta(0))  # the packs the failed backup wrote go
        assert_no_garbage(vault)
        with vault.writer() as writer:
            writer.add_stream("after", iter([b"room again"]))
            after = writer.commit()
        with vault.reader(after) as reader:
            assert reader.read_stream("after") == b"room again"


def test_the_cli_names_a_full_disk_and_the_vault_still_verifies(
    small_disk: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    env = {"STRONGROOM_PASSPHRASE": PASSPHRASE}
    url = (small_disk / "vault").as_uri()
    created = strongroom(
        home, "vault", "create", "small", "--url", url, "--passphrase-env",
        "STRONGROOM_PASSPHRASE", "--chunk-avg-size", "65536", "--pack-size", "1048576", env=env,
    )  # fmt: skip
    assert created.returncode == 0, text(created)
    kept = os.urandom(1_000_000)
    first = strongroom(
        home, "vault", "backup", "small", "-", "--stream", "kept", env=env, stdin=kept
    )
    assert first.returncode == 0, text(first)
    point_id = first.stdout.decode().split()[-1]

    full = strongroom(home, "vault", "backup", "small", "-", env=env, stdin=os.urandom(DISK_BYTES))

    assert full.returncode == InsufficientStorageError.exit_code, text(full)
    lines = full.stderr.decode().splitlines()
    assert lines[0].startswith("error: ") and "No space left on device" in lines[0], lines
    assert lines[1].startswith("hint: ") and "gc" in lines[1], lines
    assert "Traceback" not in full.stderr.decode()
    assert leftovers(small_disk) == []
    verified = strongroom(home, "vault", "verify", "small", "--read-data", env=env)
    assert verified.returncode == 0, text(verified)
    points = strongroom(home, "vault", "points", "small", "--output", "json", env=env)
    assert [point["id"] for point in json.loads(points.stdout)] == [point_id]
    restored = strongroom(
        home, "vault", "restore", "small", point_id, "--stream", "kept", "--to", "-", env=env
    )
    assert restored.returncode == 0, text(restored)
    assert restored.stdout == kept
