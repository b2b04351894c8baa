"""Garbage collection: delete packs no recovery point needs, repack mostly-dead ones.

Under the exclusive vault lease (docs/vault-format.md §13):

1. **mark**: every chunk id every manifest references (list chunks included) goes into
   a TEMP table of a SQLite connection to the index cache, so memory stays bounded
   whatever the vault size;
2. **plan**: per pack, live chunks and live bytes (one join against the index). Packs
   with no live chunk are deleted, packs whose live share of chunk bytes is below
   ``repack_threshold`` are repacked, packs no fragment lists are garbage; anything
   younger than ``grace`` stays, and so does every pack a fragment younger than ``grace``
   lists;
3. **sweep**, in an order where a crash at any point leaves every committed point
   restorable: new packs, then new fragments (live chunks of repacked packs, and the
   kept packs of every fragment that must go), then the obsolete fragments, and only
   then the packs. The index never names a pack that is gone; a chunk may be listed
   twice for a while, which the format allows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final

from strongroom.errors import (
    ChangedMeanwhileError,
    ConfigError,
    IntegrityError,
    NotFoundError,
    UnsupportedError,
)
from strongroom.logs import get_logger
from strongroom.vault.crypto import chunk_aad, object_key, offset_nonce
from strongroom.vault.format import (
    DATA_PREFIX,
    INDEX_PREFIX,
    MAGIC_PACK,
    ChunkEntry,
    pack_digest,
    pack_name,
    sha_suffix,
)
from strongroom.vault.gc_state import GcMarks, ObjectAges, local_store
from strongroom.vault.index import IndexedPack, open_fragment
from strongroom.vault.manifest import RecoveryPoint, RecoveryPointId
from strongroom.vault.pack import MAX_PACK_CHUNKS, PackBuilder, open_chunk, parse_pack
from strongroom.vault.reader import stream_chunk_ids
from strongroom.vault.repair import FragmentWriter

if TYPE_CHECKING:
    from strongroom.vault.crypto import GenerationKeys
    from strongroom.vault.leases import HeldLease
    from strongroom.vault.parts import VaultParts

DEFAULT_GRACE: Final = timedelta(hours=1)
DEFAULT_REPACK_THRESHOLD: Final = 0.5
TEMP_FILE_GRACE: Final = timedelta(hours=1)
"""Temporary files of a local store younger than this (or than ``grace``) stay: a put of
a key wrapping or data key takes no lease and may be in progress."""
MARK_BATCH: Final = 64
READ_THREADS: Final = 4
_log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class GcReport:
    """What :meth:`Vault.gc` did (or, with ``dry_run``, would do).

    ``packs_deleted`` counts every pack removed, repacked ones included; bytes count
    pack objects. In a dry run ``bytes_written`` is the live chunk bytes of the packs to
    repack (their new packs add a small header) and ``fragments_written`` is 0 (not
    estimated).
    """

    dry_run: bool
    points: int
    live_chunks: int
    packs_deleted: int
    packs_repacked: int
    packs_written: int
    fragments_deleted: int
    fragments_written: int
    leases_removed: int
    bytes_deleted: int
    bytes_written: int
    packs_too_young: int
    """Packs left alone because they (or a fragment listing them) are younger than grace."""
    problems: dict[str, str] = field(default_factory=dict)
    """Packs that could not be repacked (a live chunk is damaged): kept as they are."""
    temp_files_removed: int = 0
    """Temporary files of killed writers removed from a local store."""

    @property
    def bytes_freed(self) -> int:
        """Net bytes the store gave back: deleted minus written."""
        return self.bytes_deleted - self.bytes_written


@dataclass(slots=True)
class _Plan:
    doomed: dict[bytes, int] = field(default_factory=dict)
    """Indexed packs to delete: digest -> stored size (0 if already gone)."""
    repack: dict[bytes, tuple[int, int, int]] = field(default_factory=dict)
    """Indexed packs to repack: digest -> (size, live chunks, live stored bytes)."""
    garbage: dict[bytes, int] = field(default_factory=dict)
    """Packs no fragment lists: digest -> size."""
    young_fragments: set[str] = field(default_factory=set)
    too_young: int = 0


class _Repacker:
    """Copies live chunks into new packs (new salts, same generation) and indexes them."""

    def __init__(self, vault: VaultParts, marks: GcMarks, fragments: FragmentWriter) -> None:
        self._vault = vault
        self._marks = marks
        self._fragments = fragments
        self._builders: dict[int, PackBuilder] = {}
        self.packs_written = 0
        self.bytes_written = 0

    def copy(self, digest: bytes, live_chunks: int) -> None:
        """Copy the live chunks the index places in pack ``digest``.

        Raises ``IntegrityError`` if the pack or one of those chunks is damaged, or if
        fewer than ``live_chunks`` could be found in it: the pack must then stay.
        """
        vault = self._vault
        name = pack_name(digest.hex())
        try:
            data = vault.store.get(name)
        except NotFoundError as exc:
            raise IntegrityError(f"{name} is missing") from exc
        header = parse_pack(data, vault.keyring.data_key, name)
        keys = vault.keyring.get(header.generation)
        aead = object_key(keys.data_key, header.salt, MAGIC_PACK)
        copied = 0
        for entry in header.entries:
            if not self._marks.is_live(entry.chunk_id):
                continue
            location = vault.index.locate(entry.chunk_id)
            if location is None or location.pack_digest != digest or location.entry != entry:
                continue  # the index uses another copy of this chunk
            ciphertext = data[entry.offset : entry.offset + entry.stored_length]
            open_chunk(aead, entry, ciphertext, keys, name)  # checks it before copying
            payload = aead.decrypt(
                offset_nonce(entry.offset),
                ciphertext,
                chunk_aad(entry.chunk_id, entry.flags, entry.raw_length),
            )
            self._add(keys, entry, payload)
            copied += 1
        if copied != live_chunks:
            raise IntegrityError(
                f"{name}: the index places {live_chunks} live chunks here, its header "
                f"lists {copied}"
            )

    def finish(self) -> None:
        """Seal and put the packs being filled."""
        for generation in list(self._builders):
            self._seal(generation)

    def _add(self, keys: GenerationKeys, entry: ChunkEntry, payload: bytes) -> None:
        builder = self._builders.get(keys.generation)
        if builder is None:
            builder = self._builders[keys.generation] = PackBuilder(keys)
        builder.add(entry.chunk_id, payload, entry.flags, entry.raw_length)
        target = self._vault.config.pack_target_size
        if builder.payload_bytes >= target or len(builder) >= MAX_PACK_CHUNKS:
            self._seal(keys.generation)

    def _seal(self, generation: int) -> None:
        builder = self._builders.pop(generation)
        if not len(builder):
            return
        sealed = builder.seal()
        self._vault.store.put(sealed.name, sealed.data)
        self._fragments.add(
            IndexedPack(
                sealed.digest, sealed.salt, sealed.generation, len(sealed.data), sealed.entries
            )
        )
        self.packs_written += 1
        self.bytes_written += len(sealed.data)


def collect_garbage(
    vault: VaultParts,
    held: HeldLease,
    *,
    dry_run: bool,
    repack_threshold: float,
    grace: timedelta,
    clock: Callable[[], datetime],
) -> GcReport:
    """Collect ``vault``'s garbage; ``held`` is the exclusive lease (shared for a dry run).

    Raises ``IntegrityError`` (before deleting anything) when GC cannot know what the
    recovery points need: a damaged index fragment or manifest, an unreadable chunk
    list, a referenced chunk the index lacks, or a missing pack that holds referenced
    chunks. Raises ``ConflictError`` if the lease is lost or a shared one appears, and store errors.
    """
    if not 0.0 <= repack_threshold <= 1.0:
        raise ConfigError(f"repack_threshold must be in [0, 1], not {repack_threshold}")
    if grace < timedelta(0):
        raise ConfigError(f"grace must not be negative, not {grace}")
    damaged = vault.sync_index()
    if damaged:
        raise IntegrityError(
            "gc stopped: index fragments are damaged: " + ", ".join(sorted(damaged)),
            hint="Run repair_index first; GC cannot tell which packs those fragments list.",
        )
    marks = GcMarks(vault.index.path)
    ages = ObjectAges(vault.store, vault.index.path.with_name("seen.sqlite"), clock)
    try:
        points = _mark(vault, marks, held)
        fragments = _scan_fragments(vault, marks)
        present = {
            bytes.fromhex(digest): info.size
            for info in vault.store.list(DATA_PREFIX)
            if (digest := pack_digest(info.name)) is not None
        }
        ages.observe([*fragments, *(pack_name(digest.hex()) for digest in present)])
        plan = _plan(marks, ages, fragments, present, repack_threshold, grace)
        if dry_run:
            return _dry_report(plan, marks, points, held)
        report = _sweep(vault, held, marks, plan, points)
        return replace(report, temp_files_removed=_remove_temp_files(vault, grace))
    finally:
        marks.close()
        ages.close()


def _mark(vault: VaultParts, marks: GcMarks, held: HeldLease) -> int:
    """Put every chunk id the recovery points reference into ``marks``; returns the
    number of points."""
    ids = vault.point_ids()
    count = 0

    def load(point_id: RecoveryPointId) -> RecoveryPoint | str | None:
        try:
            return vault.point(point_id)
        except NotFoundError:
            return None  # deleted meanwhile: nothing of it is needed
        except (IntegrityError, UnsupportedError) as exc:
            return str(exc)

    with ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="gc-mark") as pool:
        for start in range(0, len(ids), MARK_BATCH):
            batch = ids[start : start + MARK_BATCH]
            for point_id, result in zip(batch, pool.map(load, batch), strict=True):
                if isinstance(result, str):
                    raise IntegrityError(
                        f"gc stopped: recovery point {point_id} is unreadable: {result}",
                        hint="GC cannot tell which chunks it needs; verify the vault, "
                        "then delete the point if it is lost.",
                    )
                if result is not None:
                    _mark_point(vault, marks, result)
                    count += 1
            held.ensure_fresh()
    missing = marks.unindexed_live(5)
    if missing:
        raise IntegrityError(
            "gc stopped: recovery points reference chunks the index lacks: "
            + ", ".join(chunk_id.hex() for chunk_id in missing),
            hint="Run verify and repair_index; GC must not delete the packs that may hold them.",
        )
    return count


def _mark_point(vault: VaultParts, marks: GcMarks, point: RecoveryPoint) -> None:
    generation = point.key_generation
    for record in point.streams:
        what = f"recovery point {point.id} stream {record.name!r}"
        if record.chunk_lists:
            marks.add_live(bytes.fromhex(list_id) for list_id in record.chunk_lists)
        try:
            marks.add_live(stream_chunk_ids(vault.fetcher, generation, record, what))
        except IntegrityError as exc:
            raise IntegrityError(
                f"gc stopped: {exc}",
                hint="GC cannot tell which chunks this point needs; verify the vault.",
            ) from exc


def _scan_fragments(vault: VaultParts, marks: GcMarks) -> list[str]:
    """Record which packs each fragment lists (and their chunk totals); returns the
    fragment names."""
    store = vault.store
    names = sorted(
        info.name for info in store.list(INDEX_PREFIX) if sha_suffix(info.name, INDEX_PREFIX)
    )

    def load(name: str) -> list[IndexedPack]:
        return _read_fragment(vault, name)

    with ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="gc-index") as pool:
        for start in range(0, len(names), 2 * READ_THREADS):
            batch = names[start : start + 2 * READ_THREADS]
            for name, packs in zip(batch, pool.map(load, batch), strict=True):
                marks.add_fragment(name, packs)
    return names


def _read_fragment(vault: VaultParts, name: str) -> list[IndexedPack]:
    try:
        data = vault.store.get(name)
    except NotFoundError as exc:
        raise ChangedMeanwhileError(
            f"gc stopped: index fragment {name} vanished during GC"
        ) from exc
    if hashlib.sha256(data).hexdigest() != sha_suffix(name, INDEX_PREFIX):
        raise IntegrityError(f"gc stopped: {name}: its bytes do not match its name")
    return open_fragment(data, vault.keyring.data_key, name)


def _plan(
    marks: GcMarks,
    ages: ObjectAges,
    fragments: list[str],
    present: dict[bytes, int],
    repack_threshold: float,
    grace: timedelta,
) -> _Plan:
    plan = _Plan()
    indexed: set[bytes] = set()
    for digest, _size, _generation, live_chunks, live_stored in marks.index_packs():
        indexed.add(digest)
        name = pack_name(digest.hex())
        stored_size = present.get(digest)
        if stored_size is None:
            if live_chunks:
                raise IntegrityError(
                    f"gc stopped: {name} is missing and holds {live_chunks} chunks that "
                    "recovery points reference",
                    hint="Run verify to see the damaged points; delete them (or restore the "
                    "pack), then run gc again.",
                )
            plan.doomed[digest] = 0  # an index entry of a pack that is gone: drop it
            continue
        total = marks.pack_total(digest)
        if total is None:
            continue  # not listed by any fragment scanned: leave it
        if live_chunks and live_stored >= repack_threshold * total[1]:
            continue
        if ages.age(name) < grace:
            plan.too_young += 1
            continue
        if live_chunks:
            plan.repack[digest] = (stored_size, live_chunks, live_stored)
        else:
            plan.doomed[digest] = stored_size
    for digest, size in present.items():
        if digest in indexed:
            continue
        if marks.pack_total(digest) is not None:
            # Listed by a fragment GC just read but unknown to the index cache it synced
            # before (written meanwhile by a client that ignores leases): not garbage.
            _log.warning("gc: keeping %s: listed by a fragment written during GC", digest.hex())
            continue
        if ages.age(pack_name(digest.hex())) < grace:
            plan.too_young += 1
        else:
            plan.garbage[digest] = size
    plan.young_fragments = {name for name in fragments if ages.age(name) < grace}
    for digest in marks.packs_of(plan.young_fragments):
        if digest in plan.doomed or digest in plan.repack:
            plan.doomed.pop(digest, None)
            plan.repack.pop(digest, None)
            plan.too_young += 1
    return plan


def _dry_report(plan: _Plan, marks: GcMarks, points: int, held: HeldLease) -> GcReport:
    obsolete = marks.choose_obsolete([*plan.doomed, *plan.repack], plan.young_fragments)
    deleted = [size for size in (*plan.doomed.values(), *plan.garbage.values()) if size]
    return GcReport(
        dry_run=True,
        points=points,
        live_chunks=marks.live_count(),
        packs_deleted=len(deleted) + len(plan.repack),
        packs_repacked=len(plan.repack),
        packs_written=0,
        fragments_deleted=len(obsolete),
        fragments_written=0,
        leases_removed=held.stale_removed,
        bytes_deleted=sum(deleted) + sum(size for size, _, _ in plan.repack.values()),
        bytes_written=sum(stored for _, _, stored in plan.repack.values()),
        packs_too_young=plan.too_young,
    )


def _sweep(
    vault: VaultParts, held: HeldLease, marks: GcMarks, plan: _Plan, points: int
) -> GcReport:
    store = vault.store
    fragments = FragmentWriter(store, vault.keyring.current())
    repacker = _Repacker(vault, marks, fragments)
    problems: dict[str, str] = {}
    repacked = 0
    # 1. new packs, and fragments listing them, before anything goes
    for digest, (size, live_chunks, _) in sorted(plan.repack.items()):
        held.ensure_fresh()
        try:
            repacker.copy(digest, live_chunks)
        except IntegrityError as exc:
            problems[pack_name(digest.hex())] = str(exc)
            _log.warning("gc: cannot repack %s, keeping it: %s", pack_name(digest.hex()), exc)
            continue
        plan.doomed[digest] = size
        repacked += 1
    repacker.finish()
    # 2. the kept packs of every fragment that lists a doomed pack, in new fragments
    # (unless a fragment that stays lists them too)
    obsolete = marks.choose_obsolete(plan.doomed, plan.young_fragments)
    carried: set[bytes] = set()
    for name in sorted(obsolete):
        held.ensure_fresh()
        for pack in _read_fragment(vault, name):
            if pack.digest in plan.doomed or pack.digest in carried:
                continue
            carried.add(pack.digest)
            if not marks.listed_by_kept_fragment(pack.digest):
                fragments.add(pack)
    fragments.flush()
    # 3. the obsolete fragments: from now on no fragment lists a doomed pack. Renew the
    # lease and check that no writer's lease showed up before deleting anything.
    held.confirm()
    for name in sorted(obsolete):
        held.ensure_fresh()
        store.delete(name)
    # 4. the packs
    held.confirm()
    deleted = freed = 0
    for digest, size in sorted([*plan.doomed.items(), *plan.garbage.items()]):
        if not size:
            continue
        held.ensure_fresh()
        store.delete(pack_name(digest.hex()))
        deleted += 1
        freed += size
    vault.sync_index()
    report = GcReport(
        dry_run=False,
        points=points,
        live_chunks=marks.live_count(),
        packs_deleted=deleted,
        packs_repacked=repacked,
        packs_written=repacker.packs_written,
        fragments_deleted=len(obsolete),
        fragments_written=len(fragments.written),
        leases_removed=held.stale_removed,
        bytes_deleted=freed,
        bytes_written=repacker.bytes_written,
        packs_too_young=plan.too_young,
        problems=problems,
    )
    _log.info(
        "gc: %d packs deleted (%d repacked into %d), %d fragments rewritten, %d bytes freed",
        report.packs_deleted,
        report.packs_repacked,
        report.packs_written,
        report.fragments_deleted,
        report.bytes_freed,
    )
    return report


def _remove_temp_files(vault: VaultParts, grace: timedelta) -> int:
    """Remove temporary files killed writers left in a local store, if it is one.

    Only files older than both ``grace`` and :data:`TEMP_FILE_GRACE`: under the
    exclusive lease no backup writes, but adding a key or a data-key generation takes no
    lease and may be writing one now.
    """
    local = local_store(vault.store)
    if local is None:
        return 0
    return local.cleanup_temp(max(grace, TEMP_FILE_GRACE))
