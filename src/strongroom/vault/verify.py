"""Verify a vault: structure always, stored data on request (all packs or a sample).

The report names every damaged object and, for each recovery point, exactly which
streams cannot be restored and why. Verify never repairs anything.
"""

from __future__ import annotations

import hashlib
import math
import random
import tempfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from strongroom.errors import ConfigError, IntegrityError, NotFoundError, UnsupportedError
from strongroom.logs import get_logger
from strongroom.vault.cache import CachedPack, IndexCache
from strongroom.vault.fetch import ChunkFetcher
from strongroom.vault.format import KEYS_PREFIX, pack_name
from strongroom.vault.keyring import list_wrappings
from strongroom.vault.manifest import RecoveryPoint, RecoveryPointId
from strongroom.vault.pack import PackKeys, open_chunk, parse_pack
from strongroom.vault.parts import VaultParts
from strongroom.vault.presence import PackPresence, check_presence
from strongroom.vault.reader import stream_chunk_ids

READ_THREADS: Final = 4
_log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Problem:
    """A damaged or missing object; ``kind`` names the finding (``damaged`` for what the
    vault itself shows; the services add ``point-missing`` and the like, from comparing
    the vault with the catalog)."""

    object_name: str
    message: str
    kind: str = "damaged"


@dataclass(frozen=True, slots=True)
class DamagedStream:
    """A stream that cannot be restored; ``stream`` None means the whole point."""

    point_id: str
    stream: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The outcome of :func:`verify_vault`."""

    points_checked: int
    streams_checked: int
    packs_checked: int
    bytes_read: int
    problems: tuple[Problem, ...]
    damaged: tuple[DamagedStream, ...]
    unindexed_packs: int
    """Packs no index fragment lists (left by interrupted backups): garbage, not damage."""

    @property
    def ok(self) -> bool:
        """True when nothing is damaged."""
        return not self.problems and not self.damaged

    def damaged_points(self) -> dict[str, list[str | None]]:
        """Return damaged point ids mapped to their damaged stream names (None: all)."""
        result: dict[str, list[str | None]] = {}
        for item in self.damaged:
            result.setdefault(item.point_id, []).append(item.stream)
        return result


@dataclass(slots=True)
class _Findings:
    problems: list[Problem] = field(default_factory=list)
    bad_packs: set[bytes] = field(default_factory=set)
    bad_chunks: set[bytes] = field(default_factory=set)
    packs_checked: int = 0
    bytes_read: int = 0
    damaged_fragments: set[str] = field(default_factory=set)
    lost_by_listing: dict[bytes, str] = field(default_factory=dict)
    listed_intact: list[bytes] = field(default_factory=list)
    lost_by_reading: dict[bytes, str] = field(default_factory=dict)
    read_intact: list[bytes] = field(default_factory=list)

    def add(self, name: str, message: str) -> None:
        self.problems.append(Problem(name, message))
        _log.warning("verify: %s: %s", name, message)


def verify_vault(
    vault: VaultParts,
    *,
    read_data: bool = False,
    subset_percent: float | None = None,
    point_ids: Iterable[str] | None = None,
    seed: int | None = None,
) -> VerifyReport:
    """Check ``vault``.

    Always: key objects, key generations and index fragments open; every pack the index
    names exists with its recorded size; every manifest opens; every chunk a manifest
    references (through list chunks too) is in the index, in an intact pack of its key
    generation. With ``read_data``: every pack is downloaded, its SHA-256 checked against
    its name, its header against the index, and every chunk decrypted and checked against
    its id. ``subset_percent`` (0 < p <= 100) reads that share of packs, chosen at random
    (``seed`` makes the choice repeatable); it implies ``read_data``. ``point_ids``
    limits which points are checked, and which packs are read to those the points use
    (every pack's presence and size is still checked).

    Nothing is taken from the local index cache: every index fragment is read from the
    store into an index of verify's own, every time. What verify finds damaged is then
    recorded in the vault's cache, so that writers stop deduplicating against it.

    Returns the report; raises ``ConfigError`` for a bad percentage and store errors.
    """
    if subset_percent is not None and not 0 < subset_percent <= 100:
        raise ConfigError(f"subset_percent must be in (0, 100], not {subset_percent}")
    vault.keyring.refresh()
    with tempfile.TemporaryDirectory(prefix="strongroom-verify-") as folder:
        index = IndexCache(Path(folder) / "index.sqlite")
        try:
            fresh = VaultParts(
                store=vault.store,
                config=vault.config,
                keyring=vault.keyring,
                index=index,
                fetcher=ChunkFetcher(vault.store, index, vault.keyring),
                sync_index=lambda: index.sync(vault.store, vault.keyring.data_key),
            )
            report, findings = _verify(fresh, read_data, subset_percent, point_ids, seed)
        finally:
            index.close()
    _tell_the_cache(vault.index, findings)
    vault.sync_index()
    return report


def _tell_the_cache(cache: IndexCache, findings: _Findings) -> None:
    """Stop the vault's own index cache from trusting what verify found damaged: fragments
    it merged (forgotten, so the next sync skips them) and lost packs (writers store their
    chunks again)."""
    if findings.damaged_fragments & cache.known_fragments():
        cache.reset()
    cache.mark_lost(findings.lost_by_listing, "listing", intact=findings.listed_intact)
    cache.mark_lost(findings.lost_by_reading, "reading", intact=findings.read_intact)


def _verify(
    vault: VaultParts,
    read_data: bool,
    subset_percent: float | None,
    point_ids: Iterable[str] | None,
    seed: int | None,
) -> tuple[VerifyReport, _Findings]:
    """Verify with ``vault``'s index built afresh from every fragment in the store."""
    findings = _Findings()
    damaged_fragments = vault.sync_index()
    _check_keys(vault, findings)
    presence = check_presence(vault.store, vault.index.packs())
    if presence.lost:  # place chunks outside lost packs where another copy is listed
        vault.index.mark_lost(presence.lost, "listing")
        damaged_fragments = vault.sync_index()
    for name, reason in damaged_fragments.items():
        findings.add(name, reason)
    findings.damaged_fragments = set(damaged_fragments)
    _note_presence(vault, presence, findings)
    packs = vault.index.packs()
    unindexed = presence.unindexed
    ids = [RecoveryPointId(i) for i in point_ids] if point_ids is not None else vault.point_ids()
    points, unreadable = vault.load_points(ids)
    if read_data or subset_percent is not None:
        chosen = [pack for pack in packs if pack.digest not in findings.bad_packs]
        if point_ids is not None:  # only the packs these points use
            used = _packs_used(vault, points)
            chosen = [pack for pack in chosen if pack.digest in used]
        if subset_percent is not None:
            count = math.ceil(len(chosen) * subset_percent / 100)
            chosen = random.Random(seed).sample(chosen, count)  # noqa: S311 - sampling, not crypto
        _read_packs(vault, chosen, findings)
    damaged = [DamagedStream(point_id, None, reason) for point_id, reason in unreadable.items()]
    for point_id, reason in unreadable.items():
        findings.add(f"manifests/{point_id}", reason)
    streams = 0
    for point in points:
        streams += len(point.streams)
        damaged.extend(_check_point(vault, point, findings))
    report = VerifyReport(
        points_checked=len(ids),
        streams_checked=streams,
        packs_checked=findings.packs_checked,
        bytes_read=findings.bytes_read,
        problems=tuple(findings.problems),
        damaged=tuple(damaged),
        unindexed_packs=unindexed,
    )
    return report, findings


def _packs_used(vault: VaultParts, points: list[RecoveryPoint]) -> set[bytes]:
    """Digests of the packs holding the chunks (and chunk lists) of ``points``. Chunks that
    cannot be listed or located are left to the point checks, which report them."""
    used: set[bytes] = set()

    def use(chunk_id: bytes) -> None:
        location = vault.index.locate(chunk_id)
        if location is not None:
            used.add(location.pack_digest)

    for point in points:
        generation = point.key_generation
        for record in point.streams:
            what = f"recovery point {point.id} stream {record.name!r}"
            for list_hex in record.chunk_lists or []:
                use(bytes.fromhex(list_hex))
            try:
                for chunk_id in stream_chunk_ids(vault.fetcher, generation, record, what):
                    use(chunk_id)
            except IntegrityError:
                continue
    return used


def _check_keys(vault: VaultParts, findings: _Findings) -> None:
    _, damaged_keys = list_wrappings(vault.store)
    for name, reason in damaged_keys.items():
        findings.add(name, reason)
    for name, reason in vault.keyring.audit().items():
        findings.add(name, reason)
    if not any(True for _ in vault.store.list(KEYS_PREFIX)):
        findings.add(KEYS_PREFIX, "the vault has no key objects")


def _note_presence(vault: VaultParts, presence: PackPresence, findings: _Findings) -> None:
    for name in presence.foreign:
        findings.add(name, "not a pack name")
    for digest, reason in presence.lost.items():
        findings.add(pack_name(digest.hex()), reason)
        findings.bad_packs.add(digest)
    findings.lost_by_listing = dict(presence.lost)
    findings.listed_intact = list(presence.intact)


def _read_packs(vault: VaultParts, packs: list[CachedPack], findings: _Findings) -> None:
    pack_keys = PackKeys(vault.keyring.data_key)

    def check(pack: CachedPack) -> tuple[list[str], set[bytes], bool, int]:
        return _read_pack(vault, pack_keys, pack)

    with ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="verify") as pool:
        for start in range(0, len(packs), 2 * READ_THREADS):
            batch = packs[start : start + 2 * READ_THREADS]
            for pack, (messages, bad, pack_bad, size) in zip(
                batch, pool.map(check, batch), strict=True
            ):
                findings.packs_checked += 1
                findings.bytes_read += size
                for message in messages:
                    findings.add(pack.name, message)
                findings.bad_chunks |= bad
                if pack_bad:
                    findings.bad_packs.add(pack.digest)
                if messages:
                    findings.lost_by_reading[pack.digest] = messages[0]
                else:
                    findings.read_intact.append(pack.digest)


def _read_pack(
    vault: VaultParts, pack_keys: PackKeys, pack: CachedPack
) -> tuple[list[str], set[bytes], bool, int]:
    """Return (messages, damaged chunk ids, whole pack unusable, bytes read)."""
    try:
        data = vault.store.get(pack.name)
    except NotFoundError:
        return ["missing (the index lists it)"], set(), True, 0
    messages: list[str] = []
    if hashlib.sha256(data).digest() != pack.digest:
        messages.append("its bytes do not match its name (SHA-256)")
    try:
        header = parse_pack(data, vault.keyring.data_key, pack.name)
    except (IntegrityError, UnsupportedError) as exc:
        messages.append(str(exc))
        return messages, set(), True, len(data)
    if header.generation != pack.generation or header.salt != pack.salt:
        messages.append("its preamble disagrees with the index")
        return messages, set(), True, len(data)
    bad: set[bytes] = set()
    keys = vault.keyring.get(header.generation)
    aead = pack_keys.aead(header.generation, header.salt)
    matched = 0
    for entry in header.entries:
        location = vault.index.locate(entry.chunk_id)
        if location is not None and location.pack_digest == pack.digest:
            if location.entry != entry:
                messages.append(f"chunk {entry.chunk_id.hex()} is not where the index says")
                bad.add(entry.chunk_id)
            matched += 1
        ciphertext = data[entry.offset : entry.offset + entry.stored_length]
        try:
            open_chunk(aead, entry, ciphertext, keys, pack.name)
        except IntegrityError as exc:
            messages.append(str(exc))
            bad.add(entry.chunk_id)
    if matched != pack.indexed:
        messages.append(f"the index places {pack.indexed - matched} chunks here the pack lacks")
        return messages, bad, True, len(data)
    return messages, bad, False, len(data)


def _check_point(
    vault: VaultParts, point: RecoveryPoint, findings: _Findings
) -> list[DamagedStream]:
    damaged: list[DamagedStream] = []
    generation = point.key_generation
    try:
        vault.keyring.get(generation)
    except IntegrityError as exc:
        return [DamagedStream(point.id, None, str(exc))]
    for record in point.streams:
        what = f"recovery point {point.id} stream {record.name!r}"
        reason = None
        try:
            for chunk_id in stream_chunk_ids(vault.fetcher, generation, record, what):
                reason = _chunk_problem(vault, chunk_id, generation, findings)
                if reason is not None:
                    break
        except IntegrityError as exc:
            reason = str(exc)
        if reason is not None:
            damaged.append(DamagedStream(point.id, record.name, reason))
    return damaged


def _chunk_problem(
    vault: VaultParts, chunk_id: bytes, generation: int, findings: _Findings
) -> str | None:
    location = vault.index.locate(chunk_id)
    if location is None:
        return f"chunk {chunk_id.hex()} is in no index fragment"
    if location.generation != generation:
        return f"chunk {chunk_id.hex()} is in a pack of another key generation"
    if location.pack_digest in findings.bad_packs:
        return f"chunk {chunk_id.hex()} is in damaged pack {location.pack_name}"
    if chunk_id in findings.bad_chunks:
        return f"chunk {chunk_id.hex()} in {location.pack_name} is damaged"
    return None
