"""GC and what others leave behind (issue #12, item 7): packs indexed by fragments written
while it ran, and temporary files of killed writers."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

import pytest

from strongroom.storage.base import BlobStore
from strongroom.storage.faulty import FaultyStore
from strongroom.storage.local import LocalStore
from strongroom.storage.memory import MemoryStore

from .conftest import OPTIONS, VaultFactory, backup, restore, sample_data


@pytest.fixture(params=["memory", "local", "faulty"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> FaultyStore:
    """A FaultyStore (for its hooks) over memory, a local folder, or a lagging memory
    store with latency."""
    if request.param == "local":
        return FaultyStore(LocalStore(tmp_path / "vault"))
    faulty = FaultyStore(MemoryStore())
    if request.param == "faulty":
        faulty.add_latency(0.0005, seed=3)
    return faulty


def test_gc_keeps_packs_of_fragments_written_while_it_ran(
    make_vault: VaultFactory, store: FaultyStore
) -> None:
    """GC decides which packs are unindexed from the fragments it read, not from the
    index cache it synced before: a pack a fragment lists is never garbage."""
    gc_client = make_vault(store)
    old = backup(gc_client, {"a": sample_data(40_000, seed=1)})
    intruder = make_vault(store, create=False)
    late: list[str] = []

    def backup_that_ignores_leases() -> None:
        writer = intruder.writer(OPTIONS)
        writer._acquire_lease = None  # a strongroom that ignores leases
        writer.add_stream("b", [sample_data(40_000, seed=2)])
        late.append(writer.commit())

    # GC lists index/ twice: to sync its cache, then to read every fragment. The intruder
    # writes its pack, fragment and manifest in between.
    store.before(
        "list", "index/", lambda: store.before("list", "index/", backup_that_ignores_leases)
    )
    gc_client.gc(grace=timedelta(0))
    assert late, "the intruder did not run"
    assert restore(intruder, late[0]) == {"b": sample_data(40_000, seed=2)}
    assert restore(gc_client, old) == {"a": sample_data(40_000, seed=1)}


def _temp_file(root: Path, name: str, age: timedelta) -> Path:
    path = root / "data" / "ab" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"half a pack")
    stamp = time.time() - age.total_seconds()
    os.utime(path, (stamp, stamp))
    return path


@pytest.mark.parametrize("wrapped", [False, True], ids=["local", "faulty-local"])
def test_gc_removes_old_temporary_files_of_killed_writers(
    make_vault: VaultFactory, tmp_path: Path, wrapped: bool
) -> None:
    root = tmp_path / "vault"
    local = LocalStore(root)
    vault_store: BlobStore = FaultyStore(local) if wrapped else local
    vault = make_vault(vault_store)
    point = backup(vault, {"a": b"kept"})
    killed = _temp_file(root, ".strongroom-killed.tmp~", timedelta(hours=3))
    writing = _temp_file(root, ".strongroom-writing.tmp~", timedelta(minutes=5))
    report = vault.gc(grace=timedelta(0))
    assert report.temp_files_removed == 1
    assert not killed.exists()
    assert writing.exists()  # younger than an hour: a put may still be writing it
    assert restore(vault, point) == {"a": b"kept"}
    dry = vault.gc(dry_run=True, grace=timedelta(0))
    assert dry.temp_files_removed == 0 and writing.exists()


def test_gc_on_stores_without_temporary_files_reports_none(make_vault: VaultFactory) -> None:
    vault = make_vault(FaultyStore(MemoryStore()))
    backup(vault, {"a": b"x"})
    assert vault.gc(grace=timedelta(0)).temp_files_removed == 0
