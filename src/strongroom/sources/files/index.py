"""The ``files.index`` stream of a files backup: one JSON object per line.

The first line is a header (``{"format": "strongroom-files", "version": 1, "roots": [...]}``);
every other line is one :class:`IndexEntry`, in walk order: depth first, the children of a
folder sorted by the bytes of their names (so a folder always comes before what it holds).
Recorded paths are relative to ``/`` (``home/ada/notes.txt``), ``/``-separated, and never
contain ``.``, ``..`` or empty parts; names that are not valid UTF-8 are kept with Python's
surrogate escapes, which JSON carries as ``\\udcXX``.

The *tree digest* is a SHA-256 over the canonical form of every entry in order, leaving out
where the content is stored (``stream``, ``offset``) and the owner names (which depend on
the machine's user database): two trees with the same digest hold the same paths, types,
modes, owners, times, sizes, content hashes, link targets and extended attributes.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Final, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from strongroom.errors import IntegrityError

INDEX_STREAM: Final = "files.index"
FORMAT: Final = "strongroom-files"
VERSION: Final = 1

EntryType = Literal["dir", "file", "symlink", "hardlink"]

LOCATION_FIELDS: Final = frozenset({"stream", "offset"})
OWNER_NAME_FIELDS: Final = frozenset({"user", "group"})
OWNER_FIELDS: Final = frozenset({"uid", "gid"})
_NOT_DIGESTED: Final = LOCATION_FIELDS | OWNER_NAME_FIELDS
_NOT_DIGESTED_WITHOUT_OWNER: Final = _NOT_DIGESTED | OWNER_FIELDS
_PLURAL: Final = {"dir": "dirs", "file": "files", "symlink": "symlinks", "hardlink": "hardlinks"}
_ENCODER: Final = json.JSONEncoder(sort_keys=True, separators=(",", ":"))


def _line_encoder() -> Callable[[object], str]:
    """Return a function encoding like ``_ENCODER.encode``, built once.

    ``json.dumps`` and ``JSONEncoder.encode`` build the C encoder anew for every call, which
    costs as much as encoding a short index line, and a backup writes one line per entry.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # no C accelerator: the pure Python encoder
        return _ENCODER.encode
    encode = make(
        None,  # no check for cycles: records are plain trees
        _ENCODER.default,
        json.encoder.encode_basestring_ascii,
        None,  # no indent
        ":",
        ",",
        True,  # sort_keys
        False,  # skipkeys
        True,  # allow_nan
    )

    def encode_line(value: object) -> str:
        return "".join(encode(value, 0))

    return encode_line


_encode: Final = _line_encoder()
_encode_string: Final = json.encoder.encode_basestring_ascii


class IndexEntry(BaseModel):
    """One recorded entry. Which fields are set depends on ``type``.

    ``dir``, ``file`` and ``symlink`` carry the inode's metadata (mode, owner, mtime,
    xattrs as base64); ``file`` adds ``size``, ``sha256`` and where its bytes are
    (``stream`` at ``offset``); ``symlink`` adds ``target`` (the link text, never
    followed); ``hardlink`` only names the earlier ``file`` entry it shares an inode with.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    type: EntryType
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    user: str | None = None
    group: str | None = None
    mtime_ns: int | None = None
    xattrs: dict[str, str] | None = None
    size: int | None = None
    sha256: str | None = None
    stream: str | None = None
    offset: int | None = None
    target: str | None = None
    link_to: str | None = None

    def record(self) -> dict[str, object]:
        """Return the entry as a plain dict without the unset fields."""
        return self.model_dump(exclude_none=True)


def path_key(path: str) -> tuple[bytes, ...]:
    """Return the sort key of walk order: the path's parts as file-system bytes."""
    return tuple(os.fsencode(part) for part in path.split("/")) if path else ()


def check_recorded_path(path: str) -> tuple[str, ...]:
    """Return the parts of a recorded path, or raise ``IntegrityError`` if it could escape.

    Refused: the empty path, absolute paths, empty parts (``a//b``, a trailing ``/``),
    ``.`` and ``..`` parts, and NUL characters.
    """
    if not path or "\x00" in path:
        raise IntegrityError(f"refusing an unsafe recorded path {path!r}: empty or has NUL")
    if path.startswith("/"):
        raise IntegrityError(f"refusing the absolute recorded path {path!r}")
    parts = tuple(path.split("/"))
    if "" in parts or "." in parts or ".." in parts:
        raise IntegrityError(
            f"refusing the recorded path {path!r}: it has an empty, '.' or '..' part"
        )
    return parts


def dump_line(record: dict[str, object]) -> bytes:
    """Encode one record as a canonical JSON line (sorted keys, ASCII only)."""
    return (_encode(record) + "\n").encode("ascii")


def entry_lines(record: dict[str, object]) -> tuple[bytes, bytes]:
    """Return ``dump_line(record)`` and ``canonical(record)``, encoded in one pass.

    A backup writes both for every entry; the fields they share are encoded once.
    """
    index: list[str] = []
    digested: list[str] = []
    for key in sorted(record):
        value = record[key]
        # Exact types only: bool is an int and a str subclass may encode differently.
        if type(value) is str:
            text = _encode_string(value)
        elif type(value) is int:
            text = int.__repr__(value)
        else:
            text = _encode(value)
        part = f"{_encode_string(key)}:{text}"
        index.append(part)
        if key not in _NOT_DIGESTED:
            digested.append(part)
    return (
        ("{" + ",".join(index) + "}\n").encode("ascii"),
        ("{" + ",".join(digested) + "}\n").encode("ascii"),
    )


def header(roots: list[str]) -> dict[str, object]:
    """Return the first line of an index recording ``roots``."""
    return {"format": FORMAT, "version": VERSION, "roots": roots}


def canonical(record: dict[str, object], *, with_owner: bool = True) -> bytes:
    """Return the bytes of one entry as it counts in the tree digest."""
    left_out = _NOT_DIGESTED if with_owner else _NOT_DIGESTED_WITHOUT_OWNER
    return dump_line({key: value for key, value in record.items() if key not in left_out})


class TreeDigest:
    """Accumulates the tree digest and the counts of a sequence of entries."""

    def __init__(self, *, with_owner: bool = True) -> None:
        self._hash = hashlib.sha256()
        self._with_owner = with_owner
        self.counts: dict[str, int] = {
            "files": 0,
            "dirs": 0,
            "symlinks": 0,
            "hardlinks": 0,
            "bytes": 0,
        }

    def add(self, record: dict[str, object], *, line: bytes | None = None) -> None:
        """Count one entry and feed it to the digest.

        ``line`` is the entry's ``canonical`` line when the caller has it already (see
        :func:`entry_lines`; only for a digest with owners).
        """
        if line is None or not self._with_owner:
            line = canonical(record, with_owner=self._with_owner)
        self._hash.update(line)
        kind = record["type"]
        self.counts[_PLURAL[str(kind)]] += 1
        size = record.get("size")
        if kind == "file" and isinstance(size, int):
            self.counts["bytes"] += size

    def hexdigest(self) -> str:
        """Return the digest so far, as hex."""
        return self._hash.hexdigest()


def tree_digest(records: Iterable[dict[str, object]], *, with_owner: bool = True) -> str:
    """Return the tree digest of ``records`` (in walk order)."""
    digest = TreeDigest(with_owner=with_owner)
    for record in records:
        digest.add(record)
    return digest.hexdigest()


def read_index(handle: IO[bytes]) -> tuple[list[str], Iterator[IndexEntry]]:
    """Parse an index: return its roots and an iterator over its entries.

    Raises ``IntegrityError`` naming the line for a wrong header or a malformed entry
    (paths are checked later, by :func:`check_recorded_path`).
    """
    first = handle.readline()
    try:
        head = json.loads(first)
    except ValueError:
        head = None
    if (
        not isinstance(head, dict)
        or head.get("format") != FORMAT
        or head.get("version") != VERSION
        or not isinstance(head.get("roots"), list)
    ):
        raise IntegrityError(f"{INDEX_STREAM} does not start with a {FORMAT} v{VERSION} header")
    roots = [str(root) for root in head["roots"]]

    def entries() -> Iterator[IndexEntry]:
        for number, line in enumerate(handle, start=2):
            try:
                yield IndexEntry.model_validate_json(line)  # twice as fast as the stdlib
                continue
            except ValidationError:
                pass
            # Names that are not UTF-8 arrive as lone surrogate escapes, which pydantic's
            # JSON parser refuses: the stdlib parser takes them (and reports real errors).
            try:
                yield IndexEntry.model_validate(json.loads(line))
            except (ValueError, ValidationError) as exc:
                reason = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
                raise IntegrityError(
                    f"{INDEX_STREAM} line {number} is not a valid entry: {reason}"
                ) from exc

    return roots, entries()
