"""Data for backups to take and restores to compare: a small tree of files, a SQLite
database, their digests and rows, and a flipped byte in a local vault's pack."""

from __future__ import annotations

import hashlib
import os
import random
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any


def make_tree(root: Path, seed: int = 7) -> Path:
    """Write a small tree of files (text, random binary, an empty file, a nested folder)."""
    rng = random.Random(seed)
    (root / "docs" / "nested").mkdir(parents=True)
    (root / "docs" / "readme.txt").write_text("hello, strongroom\n" * 50)
    (root / "docs" / "nested" / "blob.bin").write_bytes(rng.randbytes(300_000))
    (root / "docs" / "empty").write_bytes(b"")
    (root / "top.csv").write_text("".join(f"{index},{rng.random()}\n" for index in range(2000)))
    return root


def tree_digest(root: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file below ``root`` (folders as 'dir')."""
    found: dict[str, str] = {}
    for folder, folders, names in os.walk(root):
        for name in folders:
            found[os.path.relpath(Path(folder) / name, root)] = "dir"
        for name in names:
            path = Path(folder) / name
            found[os.path.relpath(path, root)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def make_database(path: Path, rows: int = 500) -> Path:
    """A SQLite database with one table of ``rows`` rows."""
    with closing(sqlite3.connect(path)) as connection, connection:
        connection.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, amount REAL, note TEXT)")
        connection.executemany(
            "INSERT INTO orders (amount, note) VALUES (?, ?)",
            [(index * 1.5, f"order {index}") for index in range(rows)],
        )
    return path


def table_rows(path: Path) -> list[tuple[Any, ...]]:
    """Every row of the orders table, in id order."""
    with closing(sqlite3.connect(path)) as connection:
        return list(connection.execute("SELECT * FROM orders ORDER BY id"))


def flip_byte_in_a_pack(store: Path) -> Path:
    """Flip one byte in the middle of the largest pack file of a local vault; return it."""
    packs = sorted((store / "data").rglob("*"), key=lambda path: path.stat().st_size)
    pack = [path for path in packs if path.is_file()][-1]
    data = bytearray(pack.read_bytes())
    data[len(data) // 2] ^= 0x01
    pack.write_bytes(bytes(data))
    return pack
