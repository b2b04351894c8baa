"""A blob store in a local directory: one file per blob, written atomically.

Blob ``a/b/c`` is the file ``<root>/a/b/c``: the layout on disk is the layout of the names,
so a vault can be copied to or from an S3 bucket with rsync, rclone or ``aws s3 sync``.
Spreading many blobs over folders (``data/ab/abcdef...``) is the caller's naming choice.

A put writes a temporary file in the blob's folder, fsyncs it, renames it into place
(``os.replace``; ``os.link`` for exclusive puts, which fails atomically if the name
exists) and fsyncs the folder. Temporary files are named ``.strongroom-*.tmp~``; ``~`` is
not allowed in blob names, so no temporary file is ever taken for a blob, and leftovers
of a killed process are removed by :meth:`LocalStore.cleanup_temp`.

Large blobs (1 MiB and more: packs) are written with ``O_DIRECT`` where the filesystem
allows it, through a page-aligned staging buffer of the writing thread, padded to the
block size and truncated back. Packs thus bypass the page cache: a backup does not evict
what the machine keeps cached (a database's working set) and pays no kernel time for cache
pages it will not read again. (Reads stay buffered: direct reads measured no faster.)
Filesystems without direct I/O (tmpfs, some FUSE) get ordinary writes.

A file cannot also be a folder, so ``a`` and ``a/b`` cannot both be blobs here
(``overlapping_names=False``). Empty folders stay after a delete; they are not blobs.
"""

from __future__ import annotations

import errno
import fcntl
import mmap
import os
import stat
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

from strongroom.errors import (
    AccessDeniedError,
    BlobNotFoundError,
    ConfigError,
    ConflictError,
    InsufficientStorageError,
    StrongroomError,
    UnsupportedError,
)
from strongroom.logs import get_logger
from strongroom.storage.base import (
    BlobInfo,
    StoreCapabilities,
    check_name,
    check_prefix,
    check_range,
    is_name,
)

TEMP_PREFIX = ".strongroom-"
TEMP_SUFFIX = ".tmp~"

_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
_DENIED = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})
_NO_HARD_LINKS = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP})
_ABSENT = (FileNotFoundError, NotADirectoryError, IsADirectoryError)
_CAPABILITIES = StoreCapabilities(overlapping_names=False)
_FOLDER_ATTEMPTS = 3
_DIRECT_MIN = 1 << 20  # smaller blobs go through the page cache
_DIRECT_ALIGN = 4096  # covers the logical block size of every common device
_STAGING = 8 << 20  # a thread's page-aligned buffer for direct writes
_O_DIRECT = getattr(os, "O_DIRECT", 0)

_log = get_logger(__name__)


def translate_os_error(exc: OSError, action: str, path: Path) -> StrongroomError:
    """Return the strongroom error for an ``OSError`` met while doing ``action`` on ``path``."""
    message = f"cannot {action} {path}: {exc.strerror or exc}"
    if exc.errno in _FULL:
        return InsufficientStorageError(message)
    if exc.errno in _DENIED:
        return AccessDeniedError(
            message, hint="Check that strongroom's user may read and write the vault folder."
        )
    if exc.errno == errno.ENAMETOOLONG:
        return ConfigError(message, hint="Use a shorter vault path.")
    return StrongroomError(message)


def _remove_quietly(path: Path) -> None:
    """Remove a temporary file; failing to is harmless (``cleanup_temp`` finds it later)."""
    try:
        path.unlink()
    except OSError:
        _log.debug("could not remove temporary file %s", path)


def _write_all(descriptor: int, data: memoryview) -> None:
    while data:
        data = data[os.write(descriptor, data) :]


def _is_temp(file_name: str) -> bool:
    return file_name.startswith(TEMP_PREFIX) and file_name.endswith(TEMP_SUFFIX)


class LocalStore:
    """Blobs as files under ``root`` (created on the first put)."""

    def __init__(self, root: Path) -> None:
        self._root = Path(root).absolute()
        self._direct = bool(_O_DIRECT)  # cleared when the filesystem refuses direct I/O
        self._staging = threading.local()

    @property
    def root(self) -> Path:
        """The folder holding the blobs."""
        return self._root

    @property
    def capabilities(self) -> StoreCapabilities:
        """Everything but overlapping names (a file cannot be a folder too)."""
        return _CAPABILITIES

    @property
    def url(self) -> str:
        """``file:///absolute/root``."""
        return self._root.as_uri()

    def put(self, name: str, data: bytes, *, exclusive: bool = False) -> None:
        """Write ``data`` to a temporary file and rename it into place; see ``BlobStore.put``."""
        path = self._path(name)
        temp = self._write_temp(path, name, data)
        renamed = False
        try:
            self._install(temp, path, name, data, exclusive=exclusive)
            renamed = not exclusive
        finally:
            if not renamed:
                _remove_quietly(temp)
        self._sync_folder(path.parent)

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        """Read the blob, or only ``length`` bytes from ``offset``; see ``BlobStore.get``."""
        path = self._path(name)
        check_range(offset, length)
        try:
            with path.open("rb") as file:
                size = os.fstat(file.fileno()).st_size
                if offset >= size:
                    return b""
                file.seek(offset)
                # Never ask read() for more than is there: it allocates what it is asked for.
                return file.read(size - offset if length is None else min(length, size - offset))
        except _ABSENT as exc:
            raise BlobNotFoundError(f"blob {name!r} not found in {self.url}") from exc
        except OSError as exc:
            raise translate_os_error(exc, "read", path) from exc

    def stat(self, name: str) -> BlobInfo:
        """Return the file's size; see ``BlobStore.stat``."""
        path = self._path(name)
        try:
            status = path.stat()
        except _ABSENT as exc:
            raise BlobNotFoundError(f"blob {name!r} not found in {self.url}") from exc
        except OSError as exc:
            raise translate_os_error(exc, "stat", path) from exc
        if not stat.S_ISREG(status.st_mode):
            raise BlobNotFoundError(f"blob {name!r} not found in {self.url}")
        return BlobInfo(name, status.st_size)

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        """Walk only the folders that can hold names under ``prefix``; see ``BlobStore.list``.

        Temporary files, symbolic links and files whose names are not blob names are
        skipped.
        """
        check_prefix(prefix)
        folder_name = prefix.rpartition("/")[0]
        folder = self._root.joinpath(*folder_name.split("/")) if folder_name else self._root
        return self._walk(folder, folder_name, prefix)

    def delete(self, name: str) -> None:
        """Remove the file and fsync its folder; a missing blob is not an error."""
        path = self._path(name)
        try:
            path.unlink()
        except _ABSENT:
            return
        except OSError as exc:
            raise translate_os_error(exc, "delete", path) from exc
        self._sync_folder(path.parent)

    def cleanup_temp(self, older_than: timedelta) -> int:
        """Remove temporary files last written more than ``older_than`` ago; return how many.

        ``older_than`` must exceed the longest put in progress, whose file is still growing.
        """
        if older_than < timedelta(0):
            raise ConfigError(f"cleanup_temp: older_than must not be negative, not {older_than}")
        cutoff = time.time() - older_than.total_seconds()
        removed = 0
        for folder, _folders, file_names in os.walk(self._root, onerror=self._raise_walk_error):
            for file_name in filter(_is_temp, file_names):
                path = Path(folder, file_name)
                try:
                    if path.stat().st_mtime >= cutoff:
                        continue
                    path.unlink()
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    raise translate_os_error(exc, "remove", path) from exc
                removed += 1
                _log.info("removed leftover temporary file %s", path)
        return removed

    def _path(self, name: str) -> Path:
        return self._root.joinpath(*check_name(name).split("/"))

    def _make_folders(self, folder: Path, name: str) -> None:
        """Create the blob's folder and its parents, fsyncing each parent that gains one."""
        if folder.is_dir():
            return
        if not self._root.is_dir():
            try:
                self._root.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise translate_os_error(exc, "create the vault folder", self._root) from exc
            self._sync_folder(self._root.parent)
        current = self._root
        for segment in folder.relative_to(self._root).parts:
            parent, current = current, current / segment
            try:
                current.mkdir()
            except FileExistsError:
                if not current.is_dir():
                    raise self._overlap(name, current) from None
                continue
            except NotADirectoryError:
                raise self._overlap(name, parent) from None
            except OSError as exc:
                raise translate_os_error(exc, "create folder", current) from exc
            self._sync_folder(parent)

    def _write_temp(self, path: Path, name: str, data: bytes) -> Path:
        """Write ``data`` durably to a new temporary file beside ``path``; return its path.

        On failure the temporary file is removed, so a full disk leaves nothing behind.
        """
        for attempt in range(1, _FOLDER_ATTEMPTS + 1):
            self._make_folders(path.parent, name)
            try:
                descriptor, temp_name = tempfile.mkstemp(
                    prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX, dir=path.parent
                )
                break
            except FileNotFoundError as exc:
                # A concurrent put replacing an empty folder removed ours; make it again.
                if attempt == _FOLDER_ATTEMPTS:
                    raise translate_os_error(exc, "write", path) from exc
            except OSError as exc:
                raise translate_os_error(exc, "write", path) from exc
        temp = Path(temp_name)
        try:
            try:
                if not (len(data) >= _DIRECT_MIN and self._write_direct(descriptor, data)):
                    _write_all(descriptor, memoryview(data))
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
        except BaseException as exc:
            _remove_quietly(temp)
            if isinstance(exc, OSError):
                raise translate_os_error(exc, "write", path) from exc
            raise
        return temp

    def _write_direct(self, descriptor: int, data: bytes) -> bool:
        """Write ``data`` to the empty file ``descriptor`` with ``O_DIRECT``; tell whether
        it did. False (nothing written, the descriptor back to normal) when the filesystem
        refuses direct I/O: this store then stops trying. Raises ``OSError`` of the writes.
        """
        if not self._direct:
            return False
        flags = fcntl.fcntl(descriptor, fcntl.F_GETFL)
        try:
            fcntl.fcntl(descriptor, fcntl.F_SETFL, flags | _O_DIRECT)
        except OSError as exc:
            if exc.errno not in {errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP}:
                raise
            self._direct = False
            return False
        source = memoryview(data).cast("B")
        try:
            with memoryview(self._staging_buffer()) as buffer:
                for start in range(0, len(source), _STAGING):
                    piece = source[start : start + _STAGING]
                    size = len(piece)
                    padded = -(-size // _DIRECT_ALIGN) * _DIRECT_ALIGN
                    buffer[:size] = piece
                    buffer[size:padded] = bytes(padded - size)
                    _write_all(descriptor, buffer[:padded])
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            # The device wants a larger alignment than ours: start again through the cache.
            self._direct = False
            fcntl.fcntl(descriptor, fcntl.F_SETFL, flags)
            os.ftruncate(descriptor, 0)
            os.lseek(descriptor, 0, os.SEEK_SET)
            return False
        fcntl.fcntl(descriptor, fcntl.F_SETFL, flags)
        if len(source) % _DIRECT_ALIGN:
            os.ftruncate(descriptor, len(source))
        return True

    def _staging_buffer(self) -> mmap.mmap:
        """The calling thread's page-aligned staging buffer for direct I/O."""
        staging: mmap.mmap | None = getattr(self._staging, "buffer", None)
        if staging is None:
            staging = self._staging.buffer = mmap.mmap(-1, _STAGING)
        return staging

    def _install(self, temp: Path, path: Path, name: str, data: bytes, *, exclusive: bool) -> None:
        """Move the written temporary file to ``path``; an empty folder there is replaced."""
        for _attempt in range(2):
            try:
                if exclusive:
                    os.link(temp, path)
                else:
                    temp.replace(path)
                return
            except FileExistsError:
                if path.is_file():
                    if self._holds(path, data):
                        return
                    raise ConflictError(f"blob {name!r} already exists in {self.url}") from None
                if not self._remove_empty_folder(path):
                    raise self._overlap(name, path) from None
            except IsADirectoryError:
                if not self._remove_empty_folder(path):
                    raise self._overlap(name, path) from None
            except NotADirectoryError:
                raise self._overlap(name, path.parent) from None
            except OSError as exc:
                if exclusive and exc.errno in _NO_HARD_LINKS:
                    raise UnsupportedError(
                        f"cannot hard-link in {path.parent}: {exc.strerror}",
                        hint="Exclusive puts need hard links; put the vault on a filesystem "
                        "that has them (ext4, XFS, btrfs, ZFS, NFSv4).",
                    ) from exc
                raise translate_os_error(exc, "write", path) from exc
        raise self._overlap(name, path)

    def _holds(self, path: Path, data: bytes) -> bool:
        """Tell whether the file at ``path`` holds exactly ``data``."""
        try:
            if path.stat().st_size != len(data):
                return False
            return path.read_bytes() == data
        except OSError as exc:
            raise translate_os_error(exc, "read", path) from exc

    def _remove_empty_folder(self, path: Path) -> bool:
        """Remove ``path`` if it is a folder holding no files, only (empty) folders, as
        deletes leave them; tell whether it is gone."""
        for folder, _folders, _files in os.walk(path, topdown=False):
            try:
                Path(folder).rmdir()
            except FileNotFoundError:
                continue
            except OSError:
                return False
        return not path.exists()

    def _overlap(self, name: str, path: Path) -> ConflictError:
        return ConflictError(
            f"blob name {name!r} overlaps {path} in {self.url}: "
            "a name cannot be a blob and a folder of blobs in a file:// store",
        )

    def _walk(self, folder: Path, folder_name: str, prefix: str) -> Iterator[BlobInfo]:
        try:
            with os.scandir(folder) as iterator:
                entries = [*iterator]
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as exc:
            raise translate_os_error(exc, "list", folder) from exc
        for entry in entries:
            name = f"{folder_name}/{entry.name}" if folder_name else entry.name
            if not name.startswith(prefix) or not is_name(name):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    yield from self._walk(Path(entry.path), name, prefix)
                elif entry.is_file(follow_symlinks=False):
                    yield BlobInfo(name, entry.stat(follow_symlinks=False).st_size)
            except FileNotFoundError:
                continue  # deleted while we were listing

    def _sync_folder(self, folder: Path) -> None:
        """Fsync a folder so a rename or unlink in it survives a crash."""
        try:
            descriptor = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError as exc:
            raise translate_os_error(exc, "open folder", folder) from exc
        try:
            os.fsync(descriptor)
        except OSError as exc:
            # Some filesystems (FUSE, CIFS) cannot fsync a folder; their renames are final.
            if exc.errno not in {errno.EINVAL, errno.ENOTSUP}:
                raise translate_os_error(exc, "sync folder", folder) from exc
        finally:
            os.close(descriptor)

    @staticmethod
    def _raise_walk_error(exc: OSError) -> None:
        if not isinstance(exc, FileNotFoundError):
            raise translate_os_error(exc, "list", Path(exc.filename or "")) from exc
