"""Crash tests of the vault on a local folder: backups and GCs killed with SIGKILL at
random moments in a child process, a disk that fills mid-backup, concurrent writers in
threads and processes, and GC against a writer that is paused mid-stream.

No server is needed (the vault is a LocalStore under tmp_path). The randomness is seeded;
the seed is printed, and ``STRONGROOM_CRASH_SEED=<seed>`` replays a run.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

import pytest

from strongroom.errors import ConflictError, InsufficientStorageError
from strongroom.keys import PassphraseProvider
from strongroom.storage.base import BlobInfo, BlobStore, StoreCapabilities
from strongroom.storage.faulty import FaultyStore
from strongroom.storage.local import LocalStore
from strongroom.vault import Vault, WriterOptions
from tests.support.vault import (
    FAST_KDF,
    PASSPHRASE,
    SMALL,
    assert_no_garbage,
    indexed_packs,
    stored_packs,
)

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
BACKUP_TRIALS = 30
GC_TRIALS = 12
PIECE = 64 * 1024
SHARED_BYTES = 768 * 1024
OPTIONS = WriterOptions(workers=2, uploads=2)

# The child process: opens the vault, says "ready", then backs up or collects garbage.
CHILD = r"""
import json, sys
from datetime import timedelta
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from strongroom.keys import PassphraseProvider
from strongroom.storage.local import LocalStore
from strongroom.vault import Vault, WriterOptions
from tests.integration.test_vault_crash import SlowStore, stream_pieces

args = json.loads(sys.argv[1])
store = LocalStore(Path(args["root"]))
if args.get("slow"):
    store = SlowStore(store, args["slow"])
vault = Vault.open(store, PassphraseProvider(args["passphrase"]), cache_dir=Path(args["cache"]))
print("ready", flush=True)
if args["mode"] == "backup":
    with vault.writer(WriterOptions(workers=2, uploads=2)) as writer:
        for name, seed, size in args["streams"]:
            writer.add_stream(name, stream_pieces(seed, size))
        if args.get("pause"):
            print("paused", flush=True)
            sys.stdin.readline()
        point_id = writer.commit(tags={"trial": str(args["trial"])})
    print("committed", point_id, flush=True)
else:
    vault.gc(grace=timedelta(0), repack_threshold=1.0)
    print("collected", flush=True)
vault.close()
"""


def stream_pieces(seed: int, size: int) -> Iterator[bytes]:
    """Yield a deterministic stream: a prefix every stream shares (so points deduplicate
    and GC finds packs partly alive), then seeded data, half of it compressible."""
    shared = random.Random(0)
    rng = random.Random(seed)
    produced = 0
    while produced < size:
        length = min(PIECE, size - produced)
        source = shared if produced < SHARED_BYTES else rng
        if source.random() < 0.5:
            piece = source.randbytes(length)
        else:
            piece = (source.randbytes(97) * (length // 97 + 1))[:length]
        produced += length
        yield piece


def stream_bytes(seed: int, size: int) -> bytes:
    return b"".join(stream_pieces(seed, size))


class SlowStore:
    """Delays every put and delete, so a GC lasts long enough to be killed mid-way."""

    def __init__(self, inner: BlobStore, seconds: float) -> None:
        self.inner = inner
        self._seconds = seconds

    @property
    def capabilities(self) -> StoreCapabilities:
        return self.inner.capabilities

    @property
    def url(self) -> str:
        return self.inner.url

    def put(self, name: str, data: bytes, *, exclusive: bool = False) -> None:
        time.sleep(self._seconds)
        self.inner.put(name, data, exclusive=exclusive)

    def delete(self, name: str) -> None:
        time.sleep(self._seconds)
        self.inner.delete(name)

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        return self.inner.get(name, offset, length)

    def stat(self, name: str) -> BlobInfo:
        return self.inner.stat(name)

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        return self.inner.list(prefix)


@dataclass
class Child:
    """A child process running :data:`CHILD`."""

    process: subprocess.Popen[str]

    @property
    def stdout(self) -> IO[str]:
        assert self.process.stdout is not None
        return self.process.stdout

    def expect(self, word: str) -> None:
        line = self.stdout.readline()
        assert line.startswith(word), f"child said {line!r}, not {word!r}: {self.stderr()}"

    def stderr(self) -> str:
        assert self.process.stderr is not None
        if self.process.poll() is None:
            return ""
        return self.process.stderr.read()

    def kill_after(self, seconds: float) -> bool:
        """Let it run ``seconds``, then SIGKILL it; returns True if it finished first."""
        time.sleep(seconds)  # finer than Popen.wait(timeout), which polls every 50 ms
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()  # reap it: a zombie's pid still looks alive
            return False
        assert self.process.returncode == 0, self.stderr()
        return True

    def finish(self, timeout: float = 120) -> None:
        """Wait for it to exit by itself, successfully."""
        self.process.wait(timeout=timeout)
        assert self.process.returncode == 0, self.stderr()

    def rest(self) -> str:
        return self.stdout.read()


def start_child(vault_root: Path, cache: Path, **args: Any) -> Child:
    payload = {"root": str(vault_root), "cache": str(cache), "passphrase": PASSPHRASE, **args}
    process = subprocess.Popen(
        [sys.executable, "-c", CHILD, json.dumps(payload), str(REPO)],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return Child(process)


@pytest.fixture
def seed() -> int:
    value = int(os.environ.get("STRONGROOM_CRASH_SEED") or random.randrange(2**32))
    print(f"crash test seed: {value} (STRONGROOM_CRASH_SEED={value} replays it)")  # noqa: T201
    return value


@pytest.fixture
def vault_root(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "vault"
    Vault.create(LocalStore(root), PassphraseProvider(PASSPHRASE), SMALL, kdf=FAST_KDF).close()
    yield root


def open_vault(root: Path, cache: Path, store: BlobStore | None = None) -> Vault:
    return Vault.open(store or LocalStore(root), PassphraseProvider(PASSPHRASE), cache_dir=cache)


StreamSpec = list[tuple[str, int, int]]


def trial_streams(rng: random.Random, trial: int) -> StreamSpec:
    return [
        ("db.dump", trial * 10 + 1, rng.randint(1_000_000, 2_500_000)),
        ("wal.tar", trial * 10 + 2, rng.randint(200_000, 1_200_000)),
        ("meta.json", trial * 10 + 3, rng.randint(0, 3000)),
    ]


def check_points(vault: Vault, specs: dict[str, StreamSpec]) -> None:
    """Every point restores byte for byte what its trial wrote."""
    for point in vault.points():
        spec = specs[point.tags["trial"]]
        with vault.reader(point.id) as reader:
            assert [record.name for record in reader.streams()] == [name for name, _, _ in spec]
            for name, stream_seed, size in spec:
                assert reader.read_stream(name) == stream_bytes(stream_seed, size), (point.id, name)


def backup_in_parent(vault: Vault, specs: dict[str, StreamSpec], trial: str) -> str:
    spec: StreamSpec = [("parent.bin", hash(trial) % 1000 + 5000, 700_000)]
    specs[trial] = spec
    with vault.writer(OPTIONS) as writer:
        for name, stream_seed, size in spec:
            writer.add_stream(name, stream_pieces(stream_seed, size))
        return writer.commit(tags={"trial": trial})


def test_backups_killed_at_random_moments(vault_root: Path, tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    specs: dict[str, StreamSpec] = {}
    vault = open_vault(vault_root, tmp_path / "parent-cache")
    committed = killed = 0
    duration = 0.0
    for trial in range(BACKUP_TRIALS):
        specs[str(trial)] = trial_streams(rng, trial)
        child = start_child(
            vault_root,
            tmp_path / "child-cache",
            mode="backup",
            trial=trial,
            streams=specs[str(trial)],
        )
        child.expect("ready")
        started = time.monotonic()
        # the first run measures how long a backup takes; later ones die within that time
        if trial == 0:
            child.finish()
            duration = time.monotonic() - started
            finished = True
        else:
            finished = child.kill_after(rng.uniform(0, duration))
        if finished:
            assert child.rest().startswith("committed")
            committed += 1
        else:
            killed += 1
        points = vault.points()
        assert len({point.tags["trial"] for point in points}) == len(points)
        report = vault.verify()
        assert report.ok, (trial, report.problems, report.damaged)
        if trial % 6 == 5:
            assert vault.verify(read_data=True).ok
            check_points(vault, specs)
            backup_in_parent(vault, specs, f"parent-{trial}")
    summary = (
        f"{BACKUP_TRIALS} trials: {committed} committed, {killed} killed; backup {duration:.2f} s"
    )
    print(summary)  # noqa: T201
    assert killed >= BACKUP_TRIALS // 4
    final = open_vault(vault_root, tmp_path / "final-cache")
    assert final.verify(read_data=True).ok
    check_points(final, specs)
    backup_in_parent(final, specs, "after")
    before = len(final.points())
    report = final.gc(grace=timedelta(0), repack_threshold=1.0)
    assert report.points == before
    assert final.verify(read_data=True).ok
    check_points(final, specs)
    assert_no_garbage(final)
    vault.close()
    final.close()


def test_gc_killed_at_random_moments(vault_root: Path, tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    specs: dict[str, StreamSpec] = {}
    vault = open_vault(vault_root, tmp_path / "parent-cache")
    ids = [backup_in_parent(vault, specs, f"base-{number}") for number in range(3)]
    completed = 0
    duration = 0.0
    for trial in range(GC_TRIALS):
        # new garbage for every trial: a new point, an old one deleted
        ids.append(backup_in_parent(vault, specs, f"gc-{trial}"))
        vault.delete_point(ids.pop(rng.randrange(len(ids) - 1)))
        child = start_child(vault_root, tmp_path / "child-cache", mode="gc", slow=0.02)
        child.expect("ready")
        started = time.monotonic()
        if trial == 0:  # measures how long a GC takes; later ones die within that time
            child.finish()
            duration = time.monotonic() - started
            completed += 1
        elif child.kill_after(rng.uniform(0, duration)):
            completed += 1
        fresh = open_vault(vault_root, tmp_path / f"check-{trial}")
        report = fresh.verify(read_data=True)
        assert report.ok, (trial, report.problems, report.damaged)
        assert sorted(point.id for point in fresh.points()) == sorted(ids)
        check_points(fresh, specs)
        fresh.close()
    print(f"{GC_TRIALS} GC trials, {completed} finished before the kill; GC {duration:.2f} s")  # noqa: T201
    vault.gc(grace=timedelta(0), repack_threshold=1.0)  # the dead GCs' locks are stale
    assert vault.verify(read_data=True).ok
    check_points(vault, specs)
    assert_no_garbage(vault)
    vault.close()


def test_disk_full_mid_backup_fails_cleanly(vault_root: Path, tmp_path: Path) -> None:
    store = FaultyStore(LocalStore(vault_root))
    vault = open_vault(vault_root, tmp_path / "cache", store)
    specs: dict[str, StreamSpec] = {}
    first = backup_in_parent(vault, specs, "first")
    store.fill_after(1_500_000)
    with vault.writer(OPTIONS) as writer, pytest.raises(InsufficientStorageError):
        writer.add_stream("big", stream_pieces(77, 6_000_000))
        writer.commit()
    assert writer.state == "aborted"
    store.heal()
    assert [point.id for point in vault.points()] == [first]
    assert list(store.list("locks/")) == []
    assert set(stored_packs(store)) == set(indexed_packs(vault))  # its packs went again
    assert vault.verify(read_data=True).ok
    check_points(vault, specs)
    second = backup_in_parent(vault, specs, "second")
    vault.gc(grace=timedelta(0), repack_threshold=1.0)
    assert {point.id for point in vault.points()} == {first, second}
    check_points(vault, specs)
    assert_no_garbage(vault)
    vault.close()


def test_two_writer_processes_at_once(vault_root: Path, tmp_path: Path) -> None:
    rng = random.Random(5)
    specs = {str(trial): trial_streams(rng, trial) for trial in range(2)}
    children = [
        start_child(
            vault_root, tmp_path / f"cache-{trial}", mode="backup", trial=trial, streams=spec
        )
        for trial, spec in enumerate(specs.values())
    ]
    for child in children:
        child.expect("ready")
    for child in children:
        child.finish()
        assert child.rest().startswith("committed")
    vault = open_vault(vault_root, tmp_path / "parent")
    assert len(vault.points()) == 2
    assert vault.verify(read_data=True).ok
    check_points(vault, specs)
    vault.gc(grace=timedelta(0), repack_threshold=1.0)
    check_points(vault, specs)
    assert_no_garbage(vault)
    vault.close()


def test_two_writer_threads_at_once(vault_root: Path, tmp_path: Path) -> None:
    rng = random.Random(6)
    specs = {str(trial): trial_streams(rng, trial) for trial in range(2)}
    vaults = [open_vault(vault_root, tmp_path / f"cache-{trial}") for trial in range(2)]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def write(vault: Vault, trial: str) -> None:
        try:
            barrier.wait()
            with vault.writer(OPTIONS) as writer:
                for name, stream_seed, size in specs[trial]:
                    writer.add_stream(name, stream_pieces(stream_seed, size))
                writer.commit(tags={"trial": trial})
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread's assert
            errors.append(exc)

    threads = [
        threading.Thread(target=write, args=(vault, trial))
        for vault, trial in zip(vaults, specs, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    reader = open_vault(vault_root, tmp_path / "reader")
    assert len(reader.points()) == 2
    check_points(reader, specs)
    assert reader.verify(read_data=True).ok
    for vault in [*vaults, reader]:
        vault.close()


def test_gc_spares_a_paused_writer_in_another_process(vault_root: Path, tmp_path: Path) -> None:
    specs: dict[str, StreamSpec] = {}
    vault = open_vault(vault_root, tmp_path / "parent")
    old = backup_in_parent(vault, specs, "old")
    vault.delete_point(old)
    specs["paused"] = [("big.bin", 42, 6_000_000)]
    child = start_child(
        vault_root, tmp_path / "child", mode="backup", trial="paused", streams=specs["paused"], pause=True
    )  # fmt: skip
    child.expect("ready")
    child.expect("paused")
    uploaded = set(stored_packs(vault.store)) - set(indexed_packs(vault))
    assert uploaded  # the writer's packs, not indexed yet
    with pytest.raises(ConflictError, match="backup"):
        vault.gc(grace=timedelta(0))
    assert uploaded <= set(stored_packs(vault.store))
    assert child.process.stdin is not None
    child.process.stdin.write("go\n")
    child.process.stdin.flush()
    child.finish()
    assert child.rest().startswith("committed")
    vault.gc(grace=timedelta(0), repack_threshold=1.0)
    (point,) = vault.points()
    assert point.tags == {"trial": "paused"}
    check_points(vault, specs)
    assert_no_garbage(vault)
    vault.close()
