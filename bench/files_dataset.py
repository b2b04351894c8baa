"""A reproducible tree of files for the files benchmark: many small files, a few large ones.

``ensure_tree(work, small, large)`` returns ``<work>/files-s<small>-l<large>-v1/tree``,
generating it unless a finished one is there (a ``complete`` marker next to the tree):

* ``small`` files of 100 B to 16 KiB (log-uniform sizes, so most are small and some are
  not), in folders nested three deep (about 100 files per folder), whose content is
  text-like (words, numbers, sometimes a base64 blob; slices of a 64 MiB generated text):
  compressible as source code, logs and configuration are;
* ``large`` files of 200 MB each: 1 MiB blocks that alternate between random bytes and
  repetitive text, so about half compresses well.

Every byte comes from ``random.Random`` with a fixed seed, and modification times are set
to fixed instants, so the same arguments give the same tree.
"""

from __future__ import annotations

import base64
import os
import random
import shutil
import time
from pathlib import Path
from typing import Final

VERSION: Final = 1
SEED: Final = 20240601
LARGE_BYTES: Final = 200 * 1000 * 1000
FILES_PER_FOLDER: Final = 100
POOL_BYTES: Final = 64 * 1024 * 1024
_EPOCH: Final = 1_704_067_200  # 2024-01-01T00:00:00Z
_WORDS: Final = [
    "backup",
    "restore",
    "vault",
    "chunk",
    "stream",
    "index",
    "manifest",
    "snapshot",
    "retention",
    "policy",
    "schedule",
    "worker",
    "engine",
    "catalog",
    "postgres",
    "mysql",
    "redis",
    "kafka",
    "files",
    "config",
    "error",
    "retry",
    "timeout",
    "the",
    "a",
    "of",
    "to",
    "and",
    "in",
    "is",
    "for",
    "on",
    "with",
    "as",
    "by",
    "at",
    "from",
    "this",
    "that",
    "be",
    "are",
    "was",
    "not",
    "or",
]
_EXTENSIONS: Final = (".py", ".log", ".json", ".txt", ".yaml", ".md", ".csv", ".conf")


def _text(rng: random.Random, size: int) -> bytes:
    parts: list[str] = []
    length = 0
    while length < size:
        roll = rng.random()
        if roll < 0.05:
            piece = base64.b64encode(rng.randbytes(rng.randrange(24, 96))).decode()
        elif roll < 0.25:
            piece = f"{rng.randrange(10**9)}"
        else:
            piece = rng.choice(_WORDS)
        piece += "\n" if rng.random() < 0.08 else " "
        parts.append(piece)
        length += len(piece)
    return "".join(parts).encode()[:size]


def _small_size(rng: random.Random) -> int:
    return int(100 * (16 * 1024 / 100) ** rng.random())


def _write_small(tree: Path, count: int, rng: random.Random) -> None:
    # Slices of one large text pool (generating text word by word per file is slow); the
    # pool is big enough that nearby files rarely share bytes.
    pool = _text(rng, POOL_BYTES)
    for index in range(count):
        folder_number = index // FILES_PER_FOLDER
        folder = tree / "small" / f"d{folder_number // 100:03d}" / f"e{folder_number // 10 % 10}"
        folder = folder / f"f{folder_number % 10}"
        if index % FILES_PER_FOLDER == 0:
            folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"file{index:06d}{_EXTENSIONS[index % len(_EXTENSIONS)]}"
        size = _small_size(rng)
        start = rng.randrange(len(pool) - size)
        path.write_bytes(f"# {path.name}\n".encode() + pool[start : start + size])
        os.utime(path, (_EPOCH + index, _EPOCH + index))


def _write_large(tree: Path, count: int, rng: random.Random) -> None:
    block = 1024 * 1024
    folder = tree / "large"
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        path = folder / f"large{index}.bin"
        with path.open("wb") as handle:
            written = 0
            while written < LARGE_BYTES:
                size = min(block, LARGE_BYTES - written)
                if (written // block) % 2 == 0:
                    data = rng.randbytes(size)
                else:
                    data = (_text(rng, 64 * 1024) * (size // (64 * 1024) + 1))[:size]
                handle.write(data)
                written += size
        os.utime(path, (_EPOCH + index, _EPOCH + index))


def ensure_tree(work: Path, small: int, large: int, log: bool = True) -> Path:
    """Return the tree for ``small``/``large``, generating it (reproducibly) if needed."""
    base = work / f"files-s{small}-l{large}-v{VERSION}"
    tree, marker = base / "tree", base / "complete"
    if marker.exists():
        return tree
    started = time.perf_counter()
    shutil.rmtree(base, ignore_errors=True)
    tree.mkdir(parents=True)
    _write_small(tree, small, random.Random(SEED))
    _write_large(tree, large, random.Random(SEED + 1))
    marker.write_text(f"small={small} large={large} seed={SEED} version={VERSION}\n")
    # The files cache ignores files changed within 2 s of a backup's start (racy ctime).
    time.sleep(2.5)
    if log:
        print(f"  generated {tree} in {time.perf_counter() - started:.0f} s", flush=True)
    return tree
