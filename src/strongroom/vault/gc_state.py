"""What a garbage collection knows while it runs: how old objects are, and its marks.

:class:`ObjectAges` gives lower bounds of object ages (the blob store protocol carries no
timestamps); :class:`GcMarks` keeps the live chunk ids and the fragment-to-pack map in
TEMP tables of a SQLite connection to the index cache, so memory stays bounded whatever
the vault size (docs/vault-format.md §13.5).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

from strongroom.storage.base import BlobStore
from strongroom.storage.local import LocalStore
from strongroom.vault.index import IndexedPack

LIVE_BATCH: Final = 4096


class ObjectAges:
    """How old objects are, as far as can be known.

    The blob store protocol carries no timestamps, so an object's age is the larger of
    two lower bounds: how long ago this machine first saw it (kept in a small SQLite
    file beside the index cache, so repeated runs accumulate it), and, where the store
    is a local folder, its file's modification time (the store's own view of time).
    """

    def __init__(self, store: BlobStore, path: Path | None, clock: Callable[[], datetime]):
        self._root = _local_root(store)
        self._clock = clock
        self._db = sqlite3.connect(path or ":memory:", isolation_level=None, timeout=60)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS seen(name TEXT PRIMARY KEY, first REAL NOT NULL) "
            "WITHOUT ROWID"
        )

    def observe(self, names: Iterable[str]) -> None:
        """Record every name not seen before as first seen now; forget names not given."""
        now = self._clock().timestamp()
        self._db.execute("CREATE TEMP TABLE IF NOT EXISTS listed(name TEXT PRIMARY KEY)")
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute("DELETE FROM temp.listed")
            self._db.executemany(
                "INSERT OR IGNORE INTO temp.listed VALUES (?)", ((name,) for name in names)
            )
            self._db.execute("INSERT OR IGNORE INTO seen SELECT name, ? FROM temp.listed", (now,))
            self._db.execute("DELETE FROM seen WHERE name NOT IN (SELECT name FROM temp.listed)")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def note(self, names: Iterable[str]) -> None:
        """Record every name not seen before as first seen now (forgetting nothing)."""
        now = self._clock().timestamp()
        self._db.executemany(
            "INSERT OR IGNORE INTO seen VALUES (?, ?)", ((name, now) for name in names)
        )

    def age(self, name: str) -> timedelta:
        """Return a lower bound of ``name``'s age (zero if never observed)."""
        now = self._clock().timestamp()
        row = self._db.execute("SELECT first FROM seen WHERE name=?", (name,)).fetchone()
        seconds = now - row[0] if row else 0.0
        if self._root is not None:
            try:
                modified = self._root.joinpath(*name.split("/")).stat().st_mtime
            except OSError:
                modified = now
            seconds = max(seconds, now - modified)
        return timedelta(seconds=max(seconds, 0.0))

    def close(self) -> None:
        """Close the database."""
        self._db.close()


def local_store(store: BlobStore) -> LocalStore | None:
    """Return the local store under ``store``, looking through wrappers (``inner``)."""
    current: Any = store
    for _ in range(16):
        if isinstance(current, LocalStore):
            return current
        current = getattr(current, "inner", None)
        if current is None:
            return None
    return None


def _local_root(store: BlobStore) -> Path | None:
    """Return the folder of a local store, looking through wrappers."""
    local = local_store(store)
    return None if local is None else local.root


class GcMarks:
    """GC's TEMP tables, on a connection to the index cache (whose tables it reads).

    Used from one thread.
    """

    def __init__(self, cache_path: Path) -> None:
        self._db = sqlite3.connect(
            cache_path, isolation_level=None, timeout=60, check_same_thread=False
        )
        self._db.executescript(
            "CREATE TEMP TABLE live(id BLOB PRIMARY KEY) WITHOUT ROWID;"
            "CREATE TEMP TABLE pack_total(digest BLOB PRIMARY KEY, chunks INTEGER NOT NULL,"
            " stored INTEGER NOT NULL) WITHOUT ROWID;"
            "CREATE TEMP TABLE fragment_packs(digest BLOB NOT NULL, fragment TEXT NOT NULL,"
            " PRIMARY KEY(digest, fragment)) WITHOUT ROWID;"
            "CREATE TEMP TABLE doomed(digest BLOB PRIMARY KEY) WITHOUT ROWID;"
            "CREATE TEMP TABLE obsolete(fragment TEXT PRIMARY KEY) WITHOUT ROWID;"
        )

    def close(self) -> None:
        """Close the connection (the TEMP tables go with it)."""
        self._db.close()

    def add_live(self, ids: Iterable[bytes]) -> None:
        """Mark chunk ids as referenced by a recovery point."""
        batch: list[tuple[bytes]] = []
        for chunk_id in ids:
            batch.append((chunk_id,))
            if len(batch) >= LIVE_BATCH:
                self._db.executemany("INSERT OR IGNORE INTO temp.live VALUES (?)", batch)
                batch.clear()
        self._db.executemany("INSERT OR IGNORE INTO temp.live VALUES (?)", batch)

    def live_count(self) -> int:
        """Return the number of distinct live chunks."""
        return int(self._db.execute("SELECT count(*) FROM temp.live").fetchone()[0])

    def is_live(self, chunk_id: bytes) -> bool:
        """Tell whether a recovery point references the chunk."""
        row = self._db.execute("SELECT 1 FROM temp.live WHERE id=?", (chunk_id,)).fetchone()
        return row is not None

    def unindexed_live(self, limit: int) -> list[bytes]:
        """Return live chunk ids the index does not know (at most ``limit``)."""
        rows = self._db.execute(
            "SELECT l.id FROM temp.live l WHERE NOT EXISTS "
            "(SELECT 1 FROM main.chunks c WHERE c.id = l.id) LIMIT ?",
            (limit,),
        ).fetchall()
        return [row[0] for row in rows]

    def index_packs(self) -> Iterator[tuple[bytes, int, int, int, int]]:
        """Yield (digest, size, generation, live chunks, live stored bytes) per indexed
        pack. Live chunks are attributed to the one location the index cache chose."""
        live: dict[int, tuple[int, int]] = {
            row[0]: (row[1], row[2])
            for row in self._db.execute(
                "SELECT c.pack, count(*), sum(c.stored) FROM temp.live l "
                "JOIN main.chunks c ON c.id = l.id GROUP BY c.pack"
            )
        }
        for number, digest, size, generation in self._db.execute(
            "SELECT pack, name, size, generation FROM main.packs"
        ).fetchall():
            count, stored = live.get(number, (0, 0))
            yield digest, size, generation, count, stored

    def add_fragment(self, name: str, packs: list[IndexedPack]) -> None:
        """Record which packs fragment ``name`` lists, and their chunk totals."""
        self._db.execute("BEGIN")
        for pack in packs:
            self._db.execute(
                "INSERT OR IGNORE INTO temp.pack_total VALUES (?,?,?)",
                (pack.digest, len(pack.entries), sum(e.stored_length for e in pack.entries)),
            )
            self._db.execute(
                "INSERT OR IGNORE INTO temp.fragment_packs VALUES (?,?)", (pack.digest, name)
            )
        self._db.execute("COMMIT")

    def pack_total(self, digest: bytes) -> tuple[int, int] | None:
        """Return (chunks, stored bytes) a pack holds per the fragments, or None."""
        row = self._db.execute(
            "SELECT chunks, stored FROM temp.pack_total WHERE digest=?", (digest,)
        ).fetchone()
        return None if row is None else (int(row[0]), int(row[1]))

    def packs_of(self, fragments: Iterable[str]) -> set[bytes]:
        """Return the digests of the packs the given fragments list."""
        found: set[bytes] = set()
        for name in fragments:
            found.update(
                row[0]
                for row in self._db.execute(
                    "SELECT digest FROM temp.fragment_packs WHERE fragment=?", (name,)
                )
            )
        return found

    def choose_obsolete(self, doomed: Iterable[bytes], young: set[str]) -> set[str]:
        """Return the fragments to replace: those listing a doomed pack, and those (but
        ``young`` ones) listing a pack another fragment lists too (left by a crashed GC
        or repair)."""
        self._db.execute("DELETE FROM temp.doomed")
        self._db.executemany(
            "INSERT OR IGNORE INTO temp.doomed VALUES (?)", ((digest,) for digest in doomed)
        )
        found = {
            row[0]
            for row in self._db.execute(
                "SELECT DISTINCT f.fragment FROM temp.doomed d "
                "JOIN temp.fragment_packs f ON f.digest = d.digest"
            )
        }
        found.update(
            row[0]
            for row in self._db.execute(
                "SELECT DISTINCT fragment FROM temp.fragment_packs WHERE digest IN "
                "(SELECT digest FROM temp.fragment_packs GROUP BY digest HAVING count(*) > 1)"
            )
            if row[0] not in young
        )
        self._db.execute("DELETE FROM temp.obsolete")
        self._db.executemany("INSERT INTO temp.obsolete VALUES (?)", ((name,) for name in found))
        return found

    def listed_by_kept_fragment(self, digest: bytes) -> bool:
        """Tell whether a fragment outside the last :meth:`choose_obsolete` result lists
        the pack (it then needs no new listing)."""
        row = self._db.execute(
            "SELECT 1 FROM temp.fragment_packs WHERE digest=? "
            "AND fragment NOT IN (SELECT fragment FROM temp.obsolete) LIMIT 1",
            (digest,),
        ).fetchone()
        return row is not None
