"""The quickstart's sample data set: a small tree of files plus a SQLite shop database."""

from __future__ import annotations

import hashlib
import random
import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

_PRODUCTS = ("kettle", "teapot", "mug", "saucer", "strainer", "caddy", "cosy", "spoon")


def create_sample(root: Path, seed: int = 7) -> Path:
    """Create (or recreate) the sample data under ``root``; return ``root``.

    The tree holds text and binary files, a nested empty directory, an empty file and a
    SQLite database of orders. Content is reproducible for a given ``seed``.
    """
    rng = random.Random(seed)  # noqa: S311 - sample data, not cryptography
    (root / "docs" / "nested").mkdir(parents=True, exist_ok=True)
    (root / "empty-dir").mkdir(exist_ok=True)
    (root / "README.txt").write_text("Sample data backed up by `strongroom quickstart`.\n")
    (root / "docs" / "notes.md").write_text(
        "\n".join(f"- note {index}: {rng.choice(_PRODUCTS)}" for index in range(500)) + "\n"
    )
    (root / "docs" / "nested" / "blob.bin").write_bytes(rng.randbytes(3 * 1024 * 1024 + 17))
    (root / "docs" / "nested" / "empty.txt").write_bytes(b"")
    _create_shop_database(root / "shop.db", rng)
    return root


def _create_shop_database(path: Path, rng: random.Random) -> None:
    path.unlink(missing_ok=True)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with closing(sqlite3.connect(path)) as connection, connection:
        connection.execute(
            "CREATE TABLE orders (id INTEGER PRIMARY KEY, email TEXT NOT NULL, "
            "product TEXT NOT NULL, amount_cents INTEGER NOT NULL, created_at TEXT NOT NULL)"
        )
        connection.executemany(
            "INSERT INTO orders (email, product, amount_cents, created_at) VALUES (?, ?, ?, ?)",
            [
                (
                    f"customer{rng.randrange(10_000)}@example.com",
                    rng.choice(_PRODUCTS),
                    rng.randrange(100, 100_000),
                    (start + timedelta(minutes=index * 7)).isoformat(),
                )
                for index in range(20_000)
            ],
        )


SQLITE_MAGIC = b"SQLite format 3\x00"


def tree_digest(root: Path) -> dict[str, str]:
    """Return ``relative path -> digest`` for every entry under ``root``.

    Regular files get the SHA-256 of their bytes, directories ``dir``. SQLite databases
    get ``sqlite:`` plus the SHA-256 of their SQL dump: the online backup API copies every
    row but rewrites header counters, so a database is compared by content.
    """
    return {
        path.relative_to(root).as_posix(): entry_digest(path) for path in sorted(root.rglob("*"))
    }


def entry_digest(path: Path) -> str:
    """Return the digest :func:`tree_digest` records for one entry."""
    if path.is_dir():
        return "dir"
    with path.open("rb") as handle:
        is_sqlite = handle.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
    if is_sqlite:
        return "sqlite:" + _sqlite_content_digest(path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _sqlite_content_digest(path: Path) -> str:
    hasher = hashlib.sha256()
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as connection:
        for line in connection.iterdump():
            hasher.update(line.encode() + b"\n")
    return hasher.hexdigest()
