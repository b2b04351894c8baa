"""The deterministic walk of a files backup (and of a restored tree, to check it).

Order: roots sorted, then depth first with the children of each folder sorted by the bytes
of their names. Patterns are gitignore-style (``pathspec``'s ``GitIgnoreSpec``), matched
against the path relative to its root:

* ``*`` and ``?`` stay inside one path part, ``**`` spans any number of parts;
* a pattern without ``/`` (``*.log``) matches a name at any depth; one with a ``/``
  (``build/*.o``, ``/top``) is anchored at the root; a trailing ``/`` matches folders only;
* an excluded folder is not entered at all, and exclude always wins over include;
* with include patterns, a file is kept when it or one of its folders matches; folders are
  recorded when they match or hold something kept; the root itself is always recorded;
* negation (``!pattern``) is refused, so that "exclude wins" stays true.

Symlinks are recorded as links (their text) unless ``follow_symlinks``; sockets, FIFOs and
devices are skipped with a note, as is anything that vanishes during the walk.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import grp
import os
import pwd
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal

import pathspec

from strongroom.errors import ConfigError

_SPECIAL_KINDS = (
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISFIFO, "fifo"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
)
_XATTR_UNSUPPORTED = frozenset({errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS})


@dataclass(slots=True)  # not frozen: a frozen dataclass is slow to build
class WalkItem:
    """One entry found by the walk: recorded path, path on disk, kind, lstat (or stat).

    ``xattrs`` is None for a file whose extended attributes the walk left to its caller
    (see ``Walker.file_xattrs``).
    """

    path: str
    absolute: str
    kind: Literal["dir", "file", "symlink"]  # hard links are told apart later
    stat: os.stat_result
    target: str | None = None
    xattrs: dict[str, bytes] | None = None


def compile_patterns(patterns: Sequence[str], setting: str) -> pathspec.GitIgnoreSpec | None:
    """Compile gitignore-style patterns; ``None`` when there are none.

    Raises ``ConfigError`` for a negated pattern (``!x``): exclude must always win.
    """
    for pattern in patterns:
        if pattern.startswith("!"):
            raise ConfigError(
                f"{setting}: the pattern {pattern!r} is a negation, which is not supported; "
                "exclude patterns always win over include patterns"
            )
    return pathspec.GitIgnoreSpec.from_lines(patterns) if patterns else None


@lru_cache(maxsize=1024)
def user_name(uid: int) -> str | None:
    """Return the user name of ``uid``, or None when the machine does not know it."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


@lru_cache(maxsize=1024)
def group_name(gid: int) -> str | None:
    """Return the group name of ``gid``, or None when the machine does not know it."""
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return None


class XattrUnsupportedError(OSError):
    """The file system of a path keeps no extended attributes."""


def read_xattrs(path: str, *, follow: bool = False) -> dict[str, bytes]:
    """Return the extended attributes of ``path`` (empty if it vanished).

    Raises ``XattrUnsupportedError`` when its file system keeps none, ``OSError`` when
    they cannot be read.
    """
    try:
        names = os.listxattr(path, follow_symlinks=follow)
    except OSError as exc:
        if exc.errno in _XATTR_UNSUPPORTED:
            raise XattrUnsupportedError(exc.errno, exc.strerror, path) from None
        if exc.errno == errno.ENOENT:
            return {}
        raise
    if not names:
        return {}
    values: dict[str, bytes] = {}
    for name in sorted(names):
        try:
            values[name] = os.getxattr(path, name, follow_symlinks=follow)
        except OSError as exc:
            # ENODATA: removed since listxattr; unsupported: nothing to keep.
            if exc.errno not in _XATTR_UNSUPPORTED | {errno.ENODATA, errno.ENOENT}:
                raise
    return values


class XattrReader:
    """Reads extended attributes, and stops asking a file system that reported it has none.

    ``skip`` hears about (path, reason) when they cannot be read (they are then recorded
    as none).
    """

    def __init__(self, skip: Callable[[str, str], None]) -> None:
        self._skip = skip
        self._unsupported: set[int] = set()

    def read(self, path: str, absolute: str, device: int, *, follow: bool) -> dict[str, bytes]:
        """Return the extended attributes of ``absolute`` (recorded as ``path``)."""
        if device in self._unsupported:
            return {}
        try:
            return read_xattrs(absolute, follow=follow)
        except XattrUnsupportedError:
            self._unsupported.add(device)
        except OSError as exc:
            self._skip(path, f"extended attributes not read: {exc.strerror}")
        return {}


def encode_xattrs(xattrs: dict[str, bytes] | None) -> dict[str, str] | None:
    """Return extended attributes as the index records them (base64), None when none."""
    if not xattrs:
        return None
    return {name: base64.b64encode(value).decode("ascii") for name, value in xattrs.items()}


def special_kind(mode: int) -> str | None:
    """Return what kind of special file ``mode`` describes, or None for dir/file/symlink."""
    for test, name in _SPECIAL_KINDS:
        if test(mode):
            return name
    return None


def record_of(
    item: WalkItem,
    *,
    size: int | None = None,
    sha256: str | None = None,
    stream: str | None = None,
    offset: int | None = None,
    link_to: str | None = None,
    xattrs: dict[str, str] | None = None,
) -> dict[str, object]:
    """Return the index record of a walk item (a ``hardlink`` record when ``link_to``).

    ``xattrs``, already encoded (see :func:`encode_xattrs`), take the place of the item's.
    The record is what ``IndexEntry(...).record()`` returns (the same keys, the unset ones
    left out), built directly: a backup makes one per entry.
    """
    if link_to is not None:
        return {"path": item.path, "type": "hardlink", "link_to": link_to}
    status = item.stat
    uid, gid = status.st_uid, status.st_gid
    record: dict[str, object] = {
        "path": item.path,
        "type": item.kind,
        "mode": stat.S_IMODE(status.st_mode),
        "uid": uid,
        "gid": gid,
    }
    user, group = user_name(uid), group_name(gid)
    if user is not None:
        record["user"] = user
    if group is not None:
        record["group"] = group
    record["mtime_ns"] = status.st_mtime_ns
    if xattrs is None:
        xattrs = encode_xattrs(item.xattrs)
    if xattrs:
        record["xattrs"] = xattrs
    for name, value in (("size", size), ("sha256", sha256), ("stream", stream)):
        if value is not None:
            record[name] = value
    if offset is not None:
        record["offset"] = offset
    if item.target is not None:
        record["target"] = item.target
    return record


@dataclass
class _Frame:
    item: WalkItem
    relative: str  # relative to its root, for the patterns
    entries: Iterator[os.DirEntry[str]]
    included: bool
    emitted: bool
    device: int
    identity: tuple[int, int]


def _name_key(entry: os.DirEntry[str]) -> bytes:
    return os.fsencode(entry.name)


@dataclass
class Walker:
    """Walks roots and yields :class:`WalkItem` in walk order.

    ``base`` is what recorded paths are relative to (``/`` for a backup, the scratch folder
    when checking a restored tree). ``skip`` is called with (path, reason) for anything left
    out that a user should hear about. With ``file_xattrs`` false, files come with
    ``xattrs`` None: the caller reads them when it needs them (a backup takes them from
    its cache for unchanged files). ``xattr_reader`` may be shared with that caller.
    """

    roots: Sequence[str]
    skip: Callable[[str, str], None]
    base: str = "/"
    include: pathspec.GitIgnoreSpec | None = None
    exclude: pathspec.GitIgnoreSpec | None = None
    follow_symlinks: bool = False
    one_file_system: bool = False
    file_xattrs: bool = True
    xattr_reader: XattrReader | None = None
    _xattrs: XattrReader = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._xattrs = self.xattr_reader or XattrReader(self.skip)

    def walk(self) -> Iterator[WalkItem]:
        """Yield every recorded entry of every root, in walk order."""
        for root in sorted(self.roots, key=os.fsencode):
            yield from self._walk_root(root)

    def _recorded(self, absolute: str) -> str:
        relative = os.path.relpath(absolute, self.base)
        return "" if relative == "." else relative

    def _stat(
        self, path: str, absolute: str | os.DirEntry[str], *, follow: bool
    ) -> os.stat_result | None:
        try:
            if isinstance(absolute, str):  # a root: entries in folders come as DirEntry
                return Path(absolute).stat(follow_symlinks=follow)
            return absolute.stat(follow_symlinks=follow)
        except FileNotFoundError:
            self.skip(path or "/", "vanished during the walk")
        except OSError as exc:
            self.skip(path or "/", f"cannot stat: {exc.strerror}")
        return None

    def _item(self, path: str, absolute: str, stat_result: os.stat_result) -> WalkItem | None:
        mode = stat_result.st_mode
        if stat.S_ISREG(mode):
            kind: Literal["dir", "file", "symlink"] = "file"
            if not self.file_xattrs:
                return WalkItem(path, absolute, kind, stat_result)
        elif stat.S_ISDIR(mode):
            kind = "dir"
        elif stat.S_ISLNK(mode):
            kind = "symlink"
        else:
            self.skip(path, f"{special_kind(mode) or 'special file'} skipped")
            return None
        target = None
        if kind == "symlink":
            try:
                # The exact link text: Path.readlink would normalise it.
                target = os.readlink(absolute)  # noqa: PTH115
            except OSError as exc:
                self.skip(path, f"cannot read the link: {exc.strerror}")
                return None
        follow = self.follow_symlinks and kind != "symlink"
        xattrs = self._xattrs.read(path, absolute, stat_result.st_dev, follow=follow)
        return WalkItem(path, absolute, kind, stat_result, target, xattrs)

    def _walk_root(self, root: str) -> Iterator[WalkItem]:
        path = self._recorded(root)
        root_stat = self._stat(path, root, follow=True)
        if root_stat is None:
            return
        item = self._item(path, root, root_stat)
        if item is None:
            return
        if item.kind != "dir":
            yield item
            return
        frame = self._frame(item, "", included=self.include is None, device=root_stat.st_dev)
        if frame is None:
            return
        stack = [frame]
        if item.path:  # the root "/" itself has no entry
            yield item
        frame.emitted = True
        while stack:
            entry = next(stack[-1].entries, None)
            if entry is None:
                stack.pop()
                continue
            yield from self._visit(stack, entry)

    def _frame(
        self, item: WalkItem, relative: str, *, included: bool, device: int
    ) -> _Frame | None:
        try:
            with os.scandir(item.absolute) as listing:
                entries = sorted(listing, key=_name_key)
        except FileNotFoundError:
            self.skip(item.path, "vanished during the walk")
            return None
        except OSError as exc:
            self.skip(item.path, f"cannot list: {exc.strerror}")
            entries = []
        identity = (item.stat.st_dev, item.stat.st_ino)
        return _Frame(item, relative, iter(entries), included, False, device, identity)

    def _visit(self, stack: list[_Frame], entry: os.DirEntry[str]) -> Iterator[WalkItem]:
        parent = stack[-1]
        name = entry.name
        # scandir joins the folder given and the name: the path on disk.
        absolute = entry.path
        path = f"{parent.item.path}/{name}" if parent.item.path else name
        relative = f"{parent.relative}/{name}" if parent.relative else name
        found = None
        if self.follow_symlinks:
            with contextlib.suppress(OSError):  # a dangling link is recorded as a link
                found = entry.stat()
        if found is None:
            found = self._stat(path, entry, follow=False)
        if found is None:
            return
        is_dir = stat.S_ISDIR(found.st_mode)
        if self.exclude is not None and self.exclude.match_file(
            relative + "/" if is_dir else relative
        ):
            return
        if (
            is_dir
            and self.follow_symlinks
            and (found.st_dev, found.st_ino) in {frame.identity for frame in stack}
        ):
            self.skip(path, "symlink loop not followed")
            found = os.lstat(absolute)
            is_dir = False
        item = self._item(path, absolute, found)
        if item is None:
            return
        included = parent.included or (
            self.include is not None
            and self.include.match_file(relative + "/" if is_dir else relative)
        )
        if not is_dir:
            if included:
                if not parent.emitted:
                    yield from self._pending(stack)
                yield item
            return
        if self.one_file_system and found.st_dev != parent.device:
            if included:
                yield from self._pending(stack)
                yield item
            self.skip(item.path, "mount point: other file system not entered")
            return
        frame = self._frame(item, relative, included=included, device=parent.device)
        if frame is None:
            return
        stack.append(frame)
        if included:
            yield from self._pending(stack)

    @staticmethod
    def _pending(stack: list[_Frame]) -> Iterator[WalkItem]:
        """Yield the folders on the stack not recorded yet (kept for what they hold)."""
        for frame in stack:
            if not frame.emitted:
                frame.emitted = True
                yield frame.item


class Hardlinks:
    """Tells which regular files share an inode with one recorded earlier in the walk."""

    def __init__(self) -> None:
        self._first: dict[tuple[int, int], str] = {}

    @staticmethod
    def _key(item: WalkItem) -> tuple[int, int] | None:
        if item.kind != "file" or item.stat.st_nlink < 2:
            return None
        return (item.stat.st_dev, item.stat.st_ino)

    def first_path(self, item: WalkItem) -> str | None:
        """Return the recorded path ``item`` is a hard link to, or None if it is the first."""
        key = self._key(item)
        return None if key is None else self._first.get(key)

    def remember(self, item: WalkItem) -> None:
        """Record ``item`` as the first path of its inode (if it has other links)."""
        key = self._key(item)
        if key is not None:
            self._first.setdefault(key, item.path)

    def forget(self, item: WalkItem) -> None:
        """Drop ``item`` as a first path (its content could not be read)."""
        key = self._key(item)
        if key is not None and self._first.get(key) == item.path:
            del self._first[key]
