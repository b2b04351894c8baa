"""A seeded, replayable soak of the lease protocol (issue #12, "Done means").

Two writer clients and a GC client share one vault. Each step is one action chosen by a
seeded random generator: start a backup, write a piece of a stream, renew a writer's
lease, commit, abort, delete a point, run GC with zero grace, or check a point. A GC
also gets other actors' steps injected right before one of its deletions (chosen at
random): renewing its own lease, and a backup trying to start
while that renewal makes the GC's lease object vanish under it (the race of #12). Every
point that committed and was not deleted must restore byte for byte, checked along the
way and at the end.

Runs on a memory store, a faulty store (latency on every call, listings of ``locks/``
lagging behind) and a local folder. ``STRONGROOM_SOAK_SEED=<seed>`` replays a run (the
seed is printed, and named in every failure); ``STRONGROOM_SOAK_STEPS`` sets the steps
per store (default 3 400, so 10 200 over the three stores).
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest

from strongroom.errors import ConflictError
from strongroom.storage.base import BlobStore
from strongroom.storage.faulty import FaultyStore
from strongroom.storage.local import LocalStore
from strongroom.storage.memory import MemoryStore
from strongroom.vault import Vault, VaultWriter, WriterOptions
from strongroom.vault.leases import HeldLease, VaultLeases
from strongroom.vault.stream_writer import StreamWriter

from .conftest import VaultFactory

STEPS = int(os.environ.get("STRONGROOM_SOAK_STEPS", "3400"))
OPTIONS = WriterOptions(workers=1, uploads=1)
BLOCKS = 24


@dataclass
class _Backup:
    writer: VaultWriter
    stream: StreamWriter
    data: bytearray = field(default_factory=bytearray)


@dataclass
class Soak:
    """The actors, what they committed, and the random choices."""

    rng: random.Random
    seed: int
    store: FaultyStore
    writers: list[Vault]
    gc_client: Vault
    blocks: list[bytes]
    open: dict[int, _Backup] = field(default_factory=dict)
    committed: dict[str, bytes] = field(default_factory=dict)
    gc_leases: list[HeldLease] = field(default_factory=list)
    steps: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    def run(self, steps: int) -> None:
        actions: list[tuple[Callable[[], None], int]] = [
            (self.start, 6),
            (self.write, 30),
            (self.renew, 8),
            (self.commit, 6),
            (self.abort, 1),
            (self.delete_point, 3),
            (self.gc, 4),
            (self.check_one, 3),
        ]
        functions = [action for action, _ in actions]
        weights = [weight for _, weight in actions]
        while self.steps < steps:
            (action,) = self.rng.choices(functions, weights)
            self.step(action)
            if self.steps % 1000 == 0:
                self.check_all()
        for slot in list(self.open):
            self.finish(slot)
        self.gc()
        self.check_all()

    def step(self, action: Callable[[], None]) -> None:
        self.steps += 1
        name = action.__name__
        self.counts[name] = self.counts.get(name, 0) + 1
        action()

    def piece(self) -> bytes:
        block = self.rng.choice(self.blocks)
        start = self.rng.randrange(len(block))
        return block[start:] + self.rng.randbytes(self.rng.randrange(0, 600))

    def start(self) -> None:
        free = [slot for slot in range(len(self.writers)) if slot not in self.open]
        if not free:
            return
        slot = self.rng.choice(free)
        writer = self.writers[slot].writer(OPTIONS)
        try:
            stream = writer.open_stream("data")
        except ConflictError:
            writer.abort()
            self.counts["refused"] = self.counts.get("refused", 0) + 1
            return
        self.open[slot] = _Backup(writer, stream)

    def write(self) -> None:
        if self.open:
            backup = self.open[self.rng.choice(sorted(self.open))]
            piece = self.piece()
            backup.stream.write(piece)
            backup.data += piece

    def renew(self) -> None:
        held = [backup.writer._held for backup in self.open.values()]
        leases = [lease for lease in held if lease is not None]
        if leases:
            self.rng.choice(leases).refresh()

    def commit(self) -> None:
        if self.open:
            self.finish(self.rng.choice(sorted(self.open)))

    def finish(self, slot: int) -> None:
        backup = self.open.pop(slot)
        backup.stream.close()
        try:
            point_id = backup.writer.commit(tags={"step": str(self.steps)})
        except ConflictError:
            self.counts["commit refused"] = self.counts.get("commit refused", 0) + 1
            return
        self.committed[point_id] = bytes(backup.data)

    def abort(self) -> None:
        if self.open:
            backup = self.open.pop(self.rng.choice(sorted(self.open)))
            backup.stream.close()
            backup.writer.abort()

    def delete_point(self) -> None:
        if len(self.committed) > 3:
            point_id = self.rng.choice(sorted(self.committed))
            self.gc_client.delete_point(point_id)
            del self.committed[point_id]

    def gc(self) -> None:
        # Right before one of its deletions (not inside its own lease steps, which hold the
        # lease's mutex while they run).
        operation, prefix = self.rng.choice([("delete", "index/"), ("delete", "data/")])
        self.store.before(operation, prefix, self.interfere)
        try:
            self.gc_client.gc(grace=timedelta(0), repack_threshold=self.rng.random())
            self.counts["gc ran"] = self.counts.get("gc ran", 0) + 1
        except ConflictError:
            self.counts["gc refused"] = self.counts.get("gc refused", 0) + 1
        self.store.clear_hooks()

    def interfere(self) -> None:
        """Inside a GC: renew its lease, and start a backup whose read of the GC's lease
        object comes right after another renewal (the object it listed vanishes)."""
        self.steps += 1
        if not self.gc_leases or self.gc_leases[-1].lost:
            return
        gc_lease = self.gc_leases[-1]
        try:
            gc_lease.refresh()
        except ConflictError:
            return  # that GC already released it (this hook came in its acquisition)
        self.store.before("get", "locks/exclusive-", gc_lease.refresh)
        self.steps += 1
        self.start()

    def check_one(self) -> None:
        if self.committed:
            point_id = self.rng.choice(sorted(self.committed))
            self.check(point_id)

    def check_all(self) -> None:
        for point_id in sorted(self.committed):
            self.check(point_id)

    def check(self, point_id: str) -> None:
        client = self.writers[self.rng.randrange(len(self.writers))]
        with client.reader(point_id) as reader:
            restored = reader.read_stream("data")
        assert restored == self.committed[point_id], (
            f"seed {self.seed}: point {point_id} restored other bytes at step {self.steps}"
        )


def _record_gc_leases(client: Vault, found: list[HeldLease]) -> None:
    """Keep every lease the GC client takes (to renew it from injected steps)."""
    original = client.vault_leases

    def leases() -> VaultLeases:
        manager = original()
        acquire = manager.acquire

        def acquire_and_keep(kind: str, purpose: str) -> HeldLease:
            held = acquire(kind, purpose)  # type: ignore[arg-type]
            found.append(held)
            return held

        manager.acquire = acquire_and_keep  # type: ignore[method-assign,assignment]
        return manager

    client.vault_leases = leases  # type: ignore[method-assign]


@pytest.fixture(params=["memory", "faulty", "local"])
def soak_store(request: pytest.FixtureRequest, tmp_path: Path) -> FaultyStore:
    inner: BlobStore = LocalStore(tmp_path / "vault") if request.param == "local" else MemoryStore()
    store = FaultyStore(inner)
    if request.param == "faulty":
        store.add_latency(0.0002, seed=5)
        store.delay_listings(1, "locks/")  # each lag costs the holder a 10 ms pause
    return store


def test_backups_and_gc_interleaved_keep_every_point_restorable(
    make_vault: VaultFactory, soak_store: FaultyStore
) -> None:
    seed = int(os.environ.get("STRONGROOM_SOAK_SEED", random.randrange(2**32)))
    print(f"lease soak seed: {seed} (STRONGROOM_SOAK_SEED={seed} replays it)")  # noqa: T201
    rng = random.Random(seed)
    first = make_vault(soak_store)
    writers = [first, make_vault(soak_store, create=False)]
    gc_client = make_vault(soak_store, create=False)
    soak = Soak(
        rng=rng,
        seed=seed,
        store=soak_store,
        writers=writers,
        gc_client=gc_client,
        blocks=[rng.randbytes(4096) for _ in range(BLOCKS)],
    )
    _record_gc_leases(gc_client, soak.gc_leases)
    soak.run(STEPS)
    print(f"lease soak: {soak.steps} steps, {len(soak.committed)} points, {soak.counts}")  # noqa: T201
    assert soak.steps >= STEPS
    assert soak.counts.get("gc ran", 0) > 10, f"seed {seed}: GC never ran: {soak.counts}"
    assert len(soak.committed) > 3, f"seed {seed}: {soak.counts}"
