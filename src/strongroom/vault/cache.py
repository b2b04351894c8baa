"""The local index cache: a SQLite file mapping chunk ids to places in packs.

The dedup lookup must stay bounded in memory whatever the vault size, so the index lives
in SQLite (about 60-70 bytes a chunk on disk, a few MiB of page cache in memory), not in a
Python dict. The cache mirrors the ``index/`` fragments of the store: :meth:`IndexCache.sync`
merges new fragments and starts over when one it merged is gone (docs/vault-format.md §9).
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from strongroom.errors import IntegrityError, NotFoundError, UnsupportedError
from strongroom.logs import get_logger
from strongroom.storage.base import BlobStore
from strongroom.vault.format import INDEX_PREFIX, ChunkEntry, pack_name, sha_suffix
from strongroom.vault.index import IndexedPack, open_fragment

SCHEMA_VERSION: Final = "2"
SYNC_BATCH: Final = 8
LOOKUP_BATCH: Final = 500
"""Chunk ids per SQL lookup (well under SQLite's limit on bound parameters)."""
MAX_HINTS: Final = 10_000
"""Stream hints kept (the most recently written streams)."""
_log = get_logger(__name__)

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS fragments(name TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS packs(
    pack INTEGER PRIMARY KEY, name BLOB NOT NULL UNIQUE, salt BLOB NOT NULL,
    generation INTEGER NOT NULL, size INTEGER NOT NULL, indexed INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS chunks(
    id BLOB PRIMARY KEY, pack INTEGER NOT NULL, offset INTEGER NOT NULL,
    stored INTEGER NOT NULL, raw INTEGER NOT NULL, flags INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS hints(
    key BLOB PRIMARY KEY, generation INTEGER NOT NULL, record TEXT NOT NULL,
    used INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS lost_packs(
    name BLOB PRIMARY KEY, reason TEXT NOT NULL, found_by TEXT NOT NULL);
"""
LostBy = Literal["listing", "reading"]
"""How a pack was found lost: a listing (missing, or of the wrong size), or reading it
(its bytes are damaged)."""


@dataclass(frozen=True, slots=True)
class Location:
    """Where a chunk is: its pack (name, salt, generation, size) and its entry."""

    pack_digest: bytes
    salt: bytes
    generation: int
    pack_size: int
    entry: ChunkEntry

    @property
    def pack_name(self) -> str:
        """The pack's object name."""
        return pack_name(self.pack_digest.hex())


@dataclass(frozen=True, slots=True)
class CachedPack:
    """A pack the index knows; ``indexed`` chunks of the index lie in it."""

    digest: bytes
    salt: bytes
    generation: int
    size: int
    indexed: int

    @property
    def name(self) -> str:
        """The pack's object name."""
        return pack_name(self.digest.hex())


def _connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    return connection


class IndexCache:
    """The SQLite index of one vault, shared by its readers and writers (thread-safe)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        try:
            self._db = self._open()
        except sqlite3.DatabaseError:
            _log.warning("index cache %s is unreadable; rebuilding it", path)
            for suffix in ("", "-wal", "-shm"):
                path.with_name(path.name + suffix).unlink(missing_ok=True)
            self._db = self._open()

    def _open(self) -> sqlite3.Connection:
        connection = _connect(self.path)
        connection.executescript(_SCHEMA)
        row = connection.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if row is None:
            connection.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
        elif row[0] != SCHEMA_VERSION:
            raise sqlite3.DatabaseError(f"index cache schema {row[0]}")
        return connection

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()

    def session(self) -> CacheSession:
        """Return a writer's view: its own connection with private pending tables."""
        return CacheSession(self.path)

    def known_fragments(self) -> set[str]:
        """Return the names of the fragments merged so far."""
        with self._lock:
            return {row[0] for row in self._db.execute("SELECT name FROM fragments")}

    def reset(self) -> None:
        """Forget everything (the next sync reloads every fragment)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._forget_fragments()
            self._db.execute("COMMIT")

    def add_fragment(self, name: str, packs: list[IndexedPack]) -> None:
        """Merge one fragment's packs and chunks. The first location of a chunk wins,
        except over a location in a lost pack (:meth:`mark_lost`): a copy elsewhere, e.g.
        one a writer stored again, takes its place."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if self._db.execute("SELECT 1 FROM fragments WHERE name=?", (name,)).fetchone():
                    self._db.execute("ROLLBACK")
                    return
                lost = {
                    int(row[0])
                    for row in self._db.execute(
                        "SELECT p.pack FROM packs p JOIN lost_packs l ON l.name = p.name"
                    )
                }
                has_lost = bool(self._db.execute("SELECT 1 FROM lost_packs LIMIT 1").fetchone())
                for pack in packs:
                    self._db.execute(
                        "INSERT OR IGNORE INTO packs(name, salt, generation, size, indexed) "
                        "VALUES (?,?,?,?,0)",
                        (pack.digest, pack.salt, pack.generation, pack.size),
                    )
                    (number,) = self._db.execute(
                        "SELECT pack FROM packs WHERE name=?", (pack.digest,)
                    ).fetchone()
                    if has_lost:
                        self._merge_beside_lost(number, pack, lost)
                        continue
                    inserted = self._db.executemany(
                        "INSERT OR IGNORE INTO chunks VALUES (?,?,?,?,?,?)",
                        (
                            (e.chunk_id, number, e.offset, e.stored_length, e.raw_length, e.flags)
                            for e in pack.entries
                        ),
                    ).rowcount
                    self._db.execute(
                        "UPDATE packs SET indexed = indexed + ? WHERE pack = ?", (inserted, number)
                    )
                self._db.execute("INSERT INTO fragments(name) VALUES (?)", (name,))
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _merge_beside_lost(self, number: int, pack: IndexedPack, lost: set[int]) -> None:
        """Merge one pack's chunks while some packs are lost (rare: one query a chunk)."""
        if pack.digest in {
            bytes(row[0]) for row in self._db.execute("SELECT name FROM lost_packs")
        }:
            lost.add(number)
        gained: dict[int, int] = {}
        for e in pack.entries:
            row = self._db.execute("SELECT pack FROM chunks WHERE id = ?", (e.chunk_id,)).fetchone()
            if row is not None and (row[0] not in lost or number in lost):
                continue
            self._db.execute(
                "INSERT OR REPLACE INTO chunks VALUES (?,?,?,?,?,?)",
                (e.chunk_id, number, e.offset, e.stored_length, e.raw_length, e.flags),
            )
            gained[number] = gained.get(number, 0) + 1
            if row is not None:
                gained[row[0]] = gained.get(row[0], 0) - 1
        self._db.executemany(
            "UPDATE packs SET indexed = indexed + ? WHERE pack = ?",
            ((count, pack_number) for pack_number, count in gained.items()),
        )

    def newest_generation_seen(self) -> int:
        """Return the newest data-key generation this client has seen in the vault."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key='generation'").fetchone()
        return 0 if row is None else int(row[0])

    def saw_generation(self, generation: int) -> None:
        """Remember that data-key generation ``generation`` exists (a later absence is a
        deletion: docs/vault-format.md §6)."""
        if generation <= self.newest_generation_seen():
            return
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO meta VALUES ('generation', ?)", (str(generation),)
            )

    def lost_packs(self) -> dict[bytes, tuple[str, LostBy]]:
        """Return the packs known to be lost: digest -> (reason, how it was found)."""
        with self._lock:
            rows = self._db.execute("SELECT name, reason, found_by FROM lost_packs").fetchall()
        return {bytes(name): (reason, found_by) for name, reason, found_by in rows}

    def mark_lost(
        self, lost: dict[bytes, str], found_by: LostBy, *, intact: Iterable[bytes] = ()
    ) -> list[bytes]:
        """Record packs found lost by ``found_by`` (digest -> reason), and forget the
        marks ``found_by`` set on the ``intact`` packs. Returns the digests newly marked.

        When the set of lost packs changes, the merged fragments are forgotten, so the next
        :meth:`sync` places every chunk again, outside lost packs where it can.
        """
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                known = {bytes(row[0]) for row in self._db.execute("SELECT name FROM lost_packs")}
                new = [digest for digest in lost if digest not in known]
                self._db.executemany(
                    "INSERT OR IGNORE INTO lost_packs VALUES (?,?,?)",
                    ((digest, reason, found_by) for digest, reason in lost.items()),
                )
                cleared = self._db.executemany(
                    "DELETE FROM lost_packs WHERE name = ? AND found_by = ?",
                    ((digest, found_by) for digest in intact if digest not in lost),
                ).rowcount
                if new or cleared > 0:
                    self._forget_fragments()
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return new

    def _forget_fragments(self) -> None:
        self._db.execute("DELETE FROM chunks")
        self._db.execute("DELETE FROM packs")
        self._db.execute("DELETE FROM fragments")

    def sync(
        self, store: BlobStore, data_key_of: Callable[[int], bytes], *, threads: int = 4
    ) -> dict[str, str]:
        """Bring the cache up to the store's ``index/`` fragments.

        Returns the damaged fragments (name -> reason); they are skipped, not merged, and
        retried on the next sync. Store errors propagate.
        """
        listed = {
            info.name for info in store.list(INDEX_PREFIX) if sha_suffix(info.name, INDEX_PREFIX)
        }
        known = self.known_fragments()
        if known - listed:
            _log.info("index fragments were removed from the vault; rebuilding the index cache")
            self.reset()
            known = set()
        new = sorted(listed - known)
        damaged: dict[str, str] = {}

        def load(name: str) -> list[IndexedPack] | None:
            try:
                data = store.get(name)
            except NotFoundError:
                return None
            if hashlib.sha256(data).hexdigest() != sha_suffix(name, INDEX_PREFIX):
                raise IntegrityError(f"{name}: its bytes do not match its name")
            return open_fragment(data, data_key_of, name)

        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="index-sync") as pool:
            for start in range(0, len(new), SYNC_BATCH):
                batch = new[start : start + SYNC_BATCH]
                futures = [pool.submit(load, name) for name in batch]
                for name, future in zip(batch, futures, strict=True):
                    try:
                        packs = future.result()
                    except (IntegrityError, UnsupportedError) as exc:
                        damaged[name] = str(exc)
                        _log.warning("index fragment %s is damaged: %s", name, exc)
                        continue
                    if packs is not None:
                        self.add_fragment(name, packs)
        return damaged

    def locate(self, chunk_id: bytes) -> Location | None:
        """Return where the chunk is stored, or None if the index does not know it."""
        with self._lock:
            row = self._db.execute(
                "SELECT c.offset, c.stored, c.raw, c.flags, p.name, p.salt, p.generation, p.size "
                "FROM chunks c JOIN packs p ON p.pack = c.pack WHERE c.id = ?",
                (chunk_id,),
            ).fetchone()
        if row is None:
            return None
        offset, stored, raw, flags, name, salt, generation, size = row
        return Location(
            name, salt, generation, size, ChunkEntry(chunk_id, offset, stored, raw, flags)
        )

    def locate_many(self, chunk_ids: Sequence[bytes]) -> dict[bytes, Location]:
        """Return where each of ``chunk_ids`` the index knows is stored."""
        found: dict[bytes, Location] = {}
        for start in range(0, len(chunk_ids), LOOKUP_BATCH):
            batch = list(chunk_ids[start : start + LOOKUP_BATCH])
            marks = ",".join("?" * len(batch))
            with self._lock:
                rows = self._db.execute(
                    "SELECT c.id, c.offset, c.stored, c.raw, c.flags, "  # noqa: S608 - only ? marks
                    "p.name, p.salt, p.generation, p.size "
                    f"FROM chunks c JOIN packs p ON p.pack = c.pack WHERE c.id IN ({marks})",
                    batch,
                ).fetchall()
            for chunk_id, offset, stored, raw, flags, name, salt, generation, size in rows:
                key = bytes(chunk_id)
                entry = ChunkEntry(key, offset, stored, raw, flags)
                found[key] = Location(name, salt, generation, size, entry)
        return found

    def remember_stream(self, key: bytes, generation: int, record: str) -> None:
        """Keep ``record`` (a stream record's JSON) as the hint for streams whose keyed
        name is ``key``: the next backup of that stream replays its chunk boundaries."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    (used,) = self._db.execute(
                        "SELECT coalesce(max(used), 0) + 1 FROM hints"
                    ).fetchone()
                    self._db.execute(
                        "INSERT OR REPLACE INTO hints VALUES (?,?,?,?)",
                        (key, generation, record, used),
                    )
                    self._db.execute("DELETE FROM hints WHERE used <= ?", (used - MAX_HINTS,))
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:  # a hint only saves time: never fail a backup for it
                _log.warning("could not keep a stream hint in the index cache: %s", exc)

    def stream_hint(self, key: bytes, generation: int) -> str | None:
        """Return the stream record kept for ``key`` in ``generation``, or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT record FROM hints WHERE key = ? AND generation = ?", (key, generation)
            ).fetchone()
        return None if row is None else str(row[0])

    def packs(self) -> list[CachedPack]:
        """Return every pack the index names."""
        with self._lock:
            rows = self._db.execute(
                "SELECT name, salt, generation, size, indexed FROM packs"
            ).fetchall()
        return [CachedPack(*row) for row in rows]

    def counts(self) -> tuple[int, int]:
        """Return (number of chunks, number of packs) in the index."""
        with self._lock:
            (chunks,) = self._db.execute("SELECT count(*) FROM chunks").fetchone()
            (packs,) = self._db.execute("SELECT count(*) FROM packs").fetchone()
        return int(chunks), int(packs)


_USABLE: Final = (
    "NOT EXISTS (SELECT 1 FROM main.lost_packs l JOIN main.packs q ON q.name = l.name "
    "WHERE q.pack = c.pack)"
)
"""SQL condition on chunk row ``c``: its pack is not lost, so a writer may count it as
stored (a chunk in a lost pack is stored again)."""


class CacheSession:
    """One writer's connection: dedup lookups over the index plus what it stored itself.

    Its pending tables are TEMP tables (spilled to disk by SQLite), so a long backup
    stays bounded in memory too.
    """

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db = _connect(path)
        self._db.executescript(
            "CREATE TEMP TABLE pending(id BLOB PRIMARY KEY, stored INTEGER NOT NULL) WITHOUT ROWID;"
            "CREATE TEMP TABLE referenced(id BLOB PRIMARY KEY) WITHOUT ROWID;"
            "CREATE TEMP TABLE staged(id BLOB PRIMARY KEY, stored INTEGER NOT NULL) WITHOUT ROWID;"
        )

    def stored_length(self, chunk_id: bytes) -> int | None:
        """Return the stored length of a chunk the index or this session holds, else None."""
        with self._lock:
            row = self._db.execute(
                "SELECT stored FROM temp.pending WHERE id=? "  # noqa: S608 - a constant condition
                f"UNION ALL SELECT stored FROM main.chunks c WHERE id=? AND {_USABLE} LIMIT 1",
                (chunk_id, chunk_id),
            ).fetchone()
        return None if row is None else int(row[0])

    def raw_lengths(self, chunk_ids: Sequence[bytes]) -> dict[bytes, int]:
        """Return the plaintext length of each of ``chunk_ids`` the index knows."""
        found: dict[bytes, int] = {}
        for start in range(0, len(chunk_ids), LOOKUP_BATCH):
            batch = list(chunk_ids[start : start + LOOKUP_BATCH])
            marks = ",".join("?" * len(batch))
            with self._lock:
                rows = self._db.execute(
                    f"SELECT id, raw FROM main.chunks WHERE id IN ({marks})",  # noqa: S608 - only ? marks
                    batch,
                ).fetchall()
            found.update((bytes(chunk_id), int(raw)) for chunk_id, raw in rows)
        return found

    def indexed(self, chunk_ids: Sequence[bytes]) -> dict[bytes, tuple[int, int, int]]:
        """Return (stored length, raw length, key generation) of each of ``chunk_ids``
        the index knows (chunks of this session's own packs are not in it yet)."""
        found: dict[bytes, tuple[int, int, int]] = {}
        for start in range(0, len(chunk_ids), LOOKUP_BATCH):
            batch = list(chunk_ids[start : start + LOOKUP_BATCH])
            marks = ",".join("?" * len(batch))
            with self._lock:
                rows = self._db.execute(
                    "SELECT c.id, c.stored, c.raw, p.generation FROM main.chunks c "  # noqa: S608 - only ? marks
                    f"JOIN main.packs p ON p.pack = c.pack WHERE c.id IN ({marks}) AND {_USABLE}",
                    batch,
                ).fetchall()
            found.update(
                (bytes(chunk_id), (int(stored), int(raw), int(generation)))
                for chunk_id, stored, raw, generation in rows
            )
        return found

    def add_pending(self, chunk_id: bytes, stored_length: int) -> None:
        """Record that this session stored the chunk."""
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO temp.pending VALUES (?,?)", (chunk_id, stored_length)
            )

    def reference(self, chunk_id: bytes) -> bool:
        """Record that the recovery point references the chunk; True the first time."""
        with self._lock:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO temp.referenced VALUES (?)", (chunk_id,)
            )
            return cursor.rowcount == 1

    def stage(self, chunks: Iterable[tuple[bytes, int]]) -> None:
        """Stage (chunk id, stored length) pairs to reference later, all at once."""
        with self._lock:
            self._db.executemany("INSERT OR IGNORE INTO temp.staged VALUES (?,?)", chunks)

    def take_staged(self) -> tuple[int, int]:
        """Reference every staged chunk; return how many were new to the point and their
        stored bytes. Empties the stage."""
        with self._lock:
            count, stored = self._db.execute(
                "SELECT count(*), coalesce(sum(stored), 0) FROM temp.staged "
                "WHERE id NOT IN (SELECT id FROM temp.referenced)"
            ).fetchone()
            self._db.execute("INSERT OR IGNORE INTO temp.referenced SELECT id FROM temp.staged")
            self._db.execute("DELETE FROM temp.staged")
        return int(count), int(stored)

    def clear_staged(self) -> None:
        """Empty the stage without referencing anything."""
        with self._lock:
            self._db.execute("DELETE FROM temp.staged")

    def close(self) -> None:
        """Drop the session's tables and close its connection."""
        with self._lock:
            self._db.close()
