"""The checks of a files restore test: the restored tree against the recorded index.

The restored tree is walked exactly as a backup walks (same order, same hard link
detection) and every file is hashed again. The two sequences of records are merged by path
and compared field by field. For each field there is one summary check (how many entries
match out of how many carry the field) and, for the first few mismatches, one check naming
the path with the recorded and the found value. Missing and unexpected paths, the counts
and the tree digest are checks of their own.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Final

from strongroom.sources.base import Check
from strongroom.sources.files.content import BLOCK_SIZE
from strongroom.sources.files.index import TreeDigest, path_key
from strongroom.sources.files.walk import Hardlinks, Walker, record_of

Record = dict[str, object]

_COMPARED: Final = ("size", "sha256", "mode", "uid", "gid", "mtime_ns", "target", "link_to")
_DETAILS_PER_FIELD: Final = 5
_LISTED_PATHS: Final = 10


def hash_file(path: str) -> tuple[str, int]:
    """Return the SHA-256 (hex) and the size of a file, read without following a symlink."""
    digest, size = hashlib.sha256(), 0
    descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        while block := os.read(descriptor, BLOCK_SIZE):
            digest.update(block)
            size += len(block)
    finally:
        os.close(descriptor)
    return digest.hexdigest(), size


def restored_records(folder: Path, roots: Iterable[str], notes: list[str]) -> Iterator[Record]:
    """Walk the tree restored below ``folder`` and yield its records, hashing every file."""
    walker = Walker(
        roots=[str(folder / root.lstrip("/")) for root in roots],
        base=str(folder),
        skip=lambda path, reason: notes.append(f"{path}: {reason}"),
    )
    hardlinks = Hardlinks()
    for item in walker.walk():
        first = hardlinks.first_path(item)
        if first is not None:
            yield record_of(item, link_to=first)
        elif item.kind == "file":
            hardlinks.remember(item)
            sha256, size = hash_file(item.absolute)
            yield record_of(item, size=size, sha256=sha256)
        else:
            yield record_of(item)


def _key(record: Record) -> tuple[bytes, ...]:
    return path_key(str(record["path"]))


class _FieldTally:
    def __init__(self) -> None:
        self.compared = 0
        self.matched = 0
        self.details: list[Check] = []


class Comparison:
    """Compares recorded records with restored ones; ``checks()`` returns the outcome."""

    def __init__(self, *, with_owner: bool) -> None:
        self._with_owner = with_owner
        owner = ("uid", "gid")
        self._fields = tuple(
            name for name in (*_COMPARED, "xattrs") if with_owner or name not in owner
        )
        self._tallies = {name: _FieldTally() for name in ("type", *self._fields)}
        self.missing: list[str] = []
        self.unexpected: list[str] = []
        self.missing_count = 0
        self.unexpected_count = 0
        self.recorded = TreeDigest(with_owner=with_owner)
        self.restored = TreeDigest(with_owner=with_owner)

    def run(self, recorded: Iterator[Record], restored: Iterator[Record]) -> None:
        """Merge both sequences by walk order and compare the entries present in both."""
        left, right = next(recorded, None), next(restored, None)
        while left is not None or right is not None:
            if left is not None and (right is None or _key(left) < _key(right)):
                self.recorded.add(left)
                self.missing_count += 1
                if len(self.missing) < _LISTED_PATHS:
                    self.missing.append(str(left["path"]))
                left = next(recorded, None)
            elif right is not None and (left is None or _key(right) < _key(left)):
                self.restored.add(right)
                self.unexpected_count += 1
                if len(self.unexpected) < _LISTED_PATHS:
                    self.unexpected.append(str(right["path"]))
                right = next(restored, None)
            elif left is not None and right is not None:
                self.recorded.add(left)
                self.restored.add(right)
                self._compare(left, right)
                left, right = next(recorded, None), next(restored, None)

    def _compare(self, recorded: Record, restored: Record) -> None:
        path = str(recorded["path"])
        self._tally("type", path, recorded.get("type"), restored.get("type"))
        if recorded.get("type") != restored.get("type"):
            return
        for name in self._fields:
            if name in recorded or name in restored:
                self._tally(name, path, recorded.get(name), restored.get(name))

    def _tally(self, name: str, path: str, expected: object, actual: object) -> None:
        tally = self._tallies[name]
        tally.compared += 1
        if expected == actual:
            tally.matched += 1
        elif len(tally.details) < _DETAILS_PER_FIELD:
            tally.details.append(Check(f"{name} of {path}", expected, actual))

    def checks(self) -> list[Check]:
        """Return the checks: missing/unexpected paths, then per field summary and details."""
        found: list[Check] = [
            Check("missing paths", [], self.missing),
            Check("unexpected paths", [], self.unexpected),
        ]
        for name, tally in self._tallies.items():
            found.append(Check(f"{name}: entries matching", tally.compared, tally.matched))
            found.extend(tally.details)
        return found


def unlock_and_remove(folder: Path) -> None:
    """Remove a restored tree, first making its folders writable (restored modes may not be)."""
    if not os.path.lexists(folder):
        return
    pending = [str(folder)]
    while pending:
        current = pending.pop()
        try:
            Path(current).chmod(0o700)  # only real folders are pushed
            with os.scandir(current) as entries:
                pending.extend(
                    entry.path for entry in entries if entry.is_dir(follow_symlinks=False)
                )
        except OSError:
            continue  # rmtree below reports what really cannot be removed
    shutil.rmtree(folder)
