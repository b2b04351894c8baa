"""What the conformance suite cannot see of the local store: atomic writes, leftovers of
killed processes, full disks and refused permissions (simulated: the tests run as root)."""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from strongroom.errors import (
    AccessDeniedError,
    BlobNotFoundError,
    ConfigError,
    ConflictError,
    InsufficientStorageError,
    StrongroomError,
    UnsupportedError,
)
from strongroom.storage.base import BlobInfo
from strongroom.storage.local import TEMP_PREFIX, TEMP_SUFFIX, LocalStore


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "vault"


@pytest.fixture
def store(root: Path) -> LocalStore:
    return LocalStore(root)


def temp_files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.name.endswith(TEMP_SUFFIX)]


def opened_path(descriptor: int) -> str:
    return str(Path(f"/proc/self/fd/{descriptor}").readlink())


def in_vault(root: Path, descriptor: int) -> bool:
    return opened_path(descriptor).startswith(str(root))


def test_blob_names_are_the_paths_on_disk(store: LocalStore, root: Path) -> None:
    store.put("data/ab/abcdef", b"pack")

    path = root / "data" / "ab" / "abcdef"
    assert path.read_bytes() == b"pack"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert store.url == root.as_uri()
    assert temp_files(root) == []


def test_missing_root_is_an_empty_store_until_the_first_put(store: LocalStore, root: Path) -> None:
    assert list(store.list()) == []
    with pytest.raises(BlobNotFoundError):
        store.get("config")

    store.put("config", b"{}")

    assert root.is_dir()
    assert store.get("config") == b"{}"


def test_relative_root_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)

    store = LocalStore(Path("vault"))

    assert store.root == tmp_path / "vault"
    assert store.url == (tmp_path / "vault").as_uri()


def test_blob_is_invisible_until_renamed_into_place(
    store: LocalStore, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen_while_writing: list[object] = []
    real_fsync = os.fsync

    def fsync_and_look(descriptor: int) -> None:
        real_fsync(descriptor)
        if opened_path(descriptor).endswith(TEMP_SUFFIX):
            seen_while_writing.append([info.name for info in store.list()])
            try:
                store.stat("data/1")
            except BlobNotFoundError as exc:
                seen_while_writing.append(type(exc))

    monkeypatch.setattr(os, "fsync", fsync_and_look)
    store.put("data/1", b"x" * 100_000)

    assert seen_while_writing == [[], BlobNotFoundError]
    assert store.get("data/1") == b"x" * 100_000


def test_leftover_of_a_killed_process_is_ignored_and_cleaned(root: Path) -> None:
    # A child process is killed after writing its temporary file, before the rename.
    script = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from strongroom.storage.local import LocalStore\n"
        "real_fsync = os.fsync\n"
        "def fsync(descriptor):\n"
        "    if os.readlink(f'/proc/self/fd/{descriptor}').endswith(sys.argv[2]):\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "    real_fsync(descriptor)\n"
        "os.fsync = fsync\n"
        "LocalStore(Path(sys.argv[1])).put('data/ab/abcdef', b'half a backup')\n"
    )
    child = subprocess.run([sys.executable, "-c", script, str(root), TEMP_SUFFIX], check=False)
    assert child.returncode == -9
    assert len(temp_files(root)) == 1

    store = LocalStore(root)
    store.put("data/ab/other", b"kept")

    assert list(store.list()) == [BlobInfo("data/ab/other", 4)]
    with pytest.raises(BlobNotFoundError):
        store.stat("data/ab/abcdef")
    assert store.cleanup_temp(timedelta(0)) == 1
    assert temp_files(root) == []
    assert store.get("data/ab/other") == b"kept"


def test_cleanup_temp_spares_recent_files(store: LocalStore, root: Path) -> None:
    store.put("data/1", b"blob")
    old = root / "data" / f"{TEMP_PREFIX}old{TEMP_SUFFIX}"
    recent = root / f"{TEMP_PREFIX}recent{TEMP_SUFFIX}"
    for path in (old, recent):
        path.write_bytes(b"partial")
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))

    assert store.cleanup_temp(timedelta(hours=1)) == 1

    assert not old.exists()
    assert recent.exists()
    assert [info.name for info in store.list()] == ["data/1"]


def test_cleanup_temp_refuses_a_negative_age(store: LocalStore) -> None:
    with pytest.raises(ConfigError):
        store.cleanup_temp(timedelta(seconds=-1))


def test_files_that_are_not_blob_names_are_not_listed(store: LocalStore, root: Path) -> None:
    store.put("data/1", b"blob")
    (root / "lost+found").mkdir()
    (root / "lost+found" / "file").write_bytes(b"?")
    (root / "notes.txt~").write_bytes(b"editor backup")
    (root / "data" / "link").symlink_to(root / "data" / "1")

    assert list(store.list()) == [BlobInfo("data/1", 4)]


@pytest.mark.parametrize("size", [12_000, 3 * 1024 * 1024 + 5], ids=["small", "direct"])
@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
@pytest.mark.parametrize("failing_call", ["write", "fsync"])
def test_full_disk_leaves_no_visible_blob(
    store: LocalStore,
    root: Path,
    monkeypatch: pytest.MonkeyPatch,
    code: int,
    failing_call: str,
    size: int,
) -> None:
    store.put("data/1", b"previous version")
    real_call: Callable[..., Any] = getattr(os, failing_call)

    def fill_up(descriptor: int, *args: Any) -> Any:
        if in_vault(root, descriptor) and not Path(f"/proc/self/fd/{descriptor}").is_dir():
            if failing_call == "write":
                real_call(descriptor, bytes(args[0][:10]))  # some bytes land first
            raise OSError(code, os.strerror(code))
        return real_call(descriptor, *args)

    monkeypatch.setattr(os, failing_call, fill_up)
    with pytest.raises(InsufficientStorageError) as full:
        store.put("data/1", os.urandom(size))
    with pytest.raises(InsufficientStorageError):
        store.put("data/2", os.urandom(size))
    monkeypatch.undo()

    assert not full.value.retryable
    assert str(root / "data" / "1") in str(full.value)
    assert store.get("data/1") == b"previous version"
    assert [info.name for info in store.list()] == ["data/1"]
    assert temp_files(root) == []


def direct_io_works(folder: Path) -> bool:
    """Tell whether ``folder``'s filesystem accepts ``O_DIRECT``."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(folder / "probe", os.O_WRONLY | os.O_CREAT | os.O_DIRECT)
    except OSError:
        return False
    os.close(descriptor)
    return True


def spy_direct_writes(root: Path, monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Record, for each write into the vault, whether its descriptor had ``O_DIRECT``."""
    seen: list[bool] = []
    real_write = os.write

    def write(descriptor: int, data: Any) -> int:
        if in_vault(root, descriptor):
            seen.append(bool(fcntl.fcntl(descriptor, fcntl.F_GETFL) & os.O_DIRECT))
        return real_write(descriptor, data)

    monkeypatch.setattr(os, "write", write)
    return seen


@pytest.mark.parametrize("size", [1024 * 1024, 9 * 1024 * 1024 + 4095, 20 * 1024 * 1024])
def test_large_blobs_are_written_around_the_page_cache_with_their_exact_size(
    store: LocalStore, root: Path, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    data = os.urandom(size)
    seen = spy_direct_writes(root, monkeypatch)

    store.put("data/big", data)
    store.put("data/small", b"tiny")

    assert (root / "data" / "big").stat().st_size == size
    assert store.get("data/big") == data
    assert store.get("data/big", size - 10, 100) == data[-10:]
    assert store.get("data/small") == b"tiny"
    direct = direct_io_works(root.parent / "probe")
    assert seen[:-1] == [direct] * len(seen[:-1])  # the big blob, in 8 MiB pieces
    assert len(seen) - 1 == -(-size // (8 * 1024 * 1024))
    assert seen[-1] is False  # small blobs go through the page cache
    assert temp_files(root) == []


def test_filesystem_without_direct_io_gets_ordinary_writes(
    store: LocalStore, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fcntl = fcntl.fcntl
    refusals = 0

    def no_direct_io(descriptor: int, command: int, argument: int = 0) -> Any:
        nonlocal refusals
        if command == fcntl.F_SETFL and argument & os.O_DIRECT:
            refusals += 1
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        return real_fcntl(descriptor, command, argument)

    monkeypatch.setattr(fcntl, "fcntl", no_direct_io)
    seen = spy_direct_writes(root, monkeypatch)
    first, second = os.urandom(2 * 1024 * 1024 + 1), os.urandom(3 * 1024 * 1024)

    store.put("data/1", first)
    store.put("data/2", second)

    assert store.get("data/1") == first
    assert store.get("data/2") == second
    assert refusals == 1  # the store stopped asking after the first refusal
    assert True not in seen


def test_device_refusing_the_alignment_is_written_again_through_the_cache(
    store: LocalStore, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = os.write

    def picky_device(descriptor: int, data: Any) -> int:
        if in_vault(root, descriptor) and fcntl.fcntl(descriptor, fcntl.F_GETFL) & os.O_DIRECT:
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        return real_write(descriptor, data)

    monkeypatch.setattr(os, "write", picky_device)
    data = os.urandom(5 * 1024 * 1024 + 17)

    store.put("data/1", data)

    assert (root / "data" / "1").stat().st_size == len(data)
    assert store.get("data/1") == data
    assert temp_files(root) == []


@pytest.mark.parametrize("code", [errno.EACCES, errno.EPERM, errno.EROFS])
def test_refused_writes_are_access_denied(
    store: LocalStore, root: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    root.mkdir()
    real_open = os.open

    def refuse(path: Any, *args: Any, **kwargs: Any) -> int:
        if str(path).startswith(str(root)):
            raise OSError(code, os.strerror(code), str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(AccessDeniedError) as denied:
        store.put("config", b"{}")

    assert not denied.value.retryable
    assert str(root / "config") in str(denied.value)


def test_refused_reads_are_access_denied(
    store: LocalStore, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.put("data/1", b"secret")

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(Path, "open", refuse)
    monkeypatch.setattr(Path, "stat", refuse)
    monkeypatch.setattr(Path, "unlink", refuse)
    monkeypatch.setattr(os, "scandir", refuse)

    with pytest.raises(AccessDeniedError):
        store.get("data/1")
    with pytest.raises(AccessDeniedError):
        store.stat("data/1")
    with pytest.raises(AccessDeniedError):
        store.delete("data/1")
    with pytest.raises(AccessDeniedError):
        next(store.list())


def test_other_os_errors_name_the_path(
    store: LocalStore, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.put("data/1", b"bytes")

    def broken_disk(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(Path, "open", broken_disk)
    with pytest.raises(StrongroomError) as failure:
        store.get("data/1")

    assert type(failure.value) is StrongroomError
    assert str(root / "data" / "1") in str(failure.value)
    assert "Input/output error" in str(failure.value)


def test_exclusive_conflict_leaves_no_temporary_file(store: LocalStore, root: Path) -> None:
    store.put("locks/1", b"holder")

    with pytest.raises(ConflictError):
        store.put("locks/1", b"intruder", exclusive=True)

    assert temp_files(root) == []
    assert store.get("locks/1") == b"holder"


def test_exclusive_put_needs_hard_links(
    store: LocalStore, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    with pytest.raises(UnsupportedError) as unsupported:
        store.put("locks/1", b"mine", exclusive=True)

    assert "hard links" in unsupported.value.hint
    assert temp_files(root) == []
    assert list(store.list()) == []


def test_name_freed_from_nested_empty_folders(store: LocalStore, root: Path) -> None:
    store.put("a/b/c/d", b"deep")
    store.delete("a/b/c/d")

    store.put("a", b"now a blob")

    assert list(store.list()) == [BlobInfo("a", 10)]


def test_folder_with_a_leftover_temporary_file_still_conflicts(
    store: LocalStore, root: Path
) -> None:
    (root / "a").mkdir(parents=True)
    (root / "a" / f"{TEMP_PREFIX}x{TEMP_SUFFIX}").write_bytes(b"partial")

    with pytest.raises(ConflictError):
        store.put("a", b"blob")
    store.cleanup_temp(timedelta(0))
    store.put("a", b"blob")

    assert store.get("a") == b"blob"
