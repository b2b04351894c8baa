"""The files source with real files: backup, restore elsewhere or in place, restore test."""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import stat
from pathlib import Path

import pytest

from strongroom.config.resources import FilesResource
from strongroom.errors import AbortedError, ConfigError, ConflictError
from strongroom.sources import REGISTRY
from strongroom.sources.base import BackupResult, Source, SourceContext
from strongroom.sources.files.content import LARGE_FILE
from strongroom.sources.files.source import FilesSource
from strongroom.sources.sqlite import SqliteSource
from tests.support.environment import mounted_tmpfs, require_user_xattrs
from tests.support.source_fakes import MemoryReader, MemorySink, tree_state

OLD_NS = 1_500_000_000_123_456_789


def make_rich_tree(root: Path) -> None:
    """A tree with every kind of entry the files source records."""
    (root / "docs" / "deep" / "deeper").mkdir(parents=True)
    (root / "empty-dir").mkdir()
    (root / "docs" / "readme.txt").write_text("hello\n")
    (root / "docs" / "deep" / "deeper" / "notes.md").write_text("# notes\n" * 100)
    (root / "empty-file").write_bytes(b"")
    (root / "binary.bin").write_bytes(bytes(range(256)) * 64)
    (root / "large.bin").write_bytes(os.urandom(LARGE_FILE + 12345))
    (root / "naïve café ☕.txt").write_text("unicode name\n")
    (root / "日本語").mkdir()
    (root / "日本語" / "ファイル").write_bytes(b"\x00\x01\x02")
    (root / os.fsdecode(b"latin1-\xe9t\xe9")).write_bytes(b"not utf-8 name")
    script = root / "run.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    (root / "secret").write_text("s")
    (root / "secret").chmod(0o600)
    (root / "docs" / "link-to-readme").symlink_to("readme.txt")
    (root / "dangling").symlink_to("../nowhere/at/all")
    (root / "hard-a").write_text("shared inode")
    os.link(root / "hard-a", root / "hard-b")
    os.link(root / "hard-a", root / "docs" / "hard-c")
    require_user_xattrs(root)
    os.setxattr(root / "docs" / "readme.txt", "user.origin", b"strongroom test")
    os.setxattr(root / "docs", "user.folder", b"\x00binary\xff")
    for index, path in enumerate(sorted(root.rglob("*"), key=str)):
        os.utime(path, ns=(OLD_NS + index, OLD_NS + index), follow_symlinks=False)
    (root / "docs" / "deep").chmod(0o750)
    os.utime(root, ns=(OLD_NS, OLD_NS))


def files_source(*paths: Path, **settings: object) -> FilesSource:
    resource = FilesResource.model_validate(
        {"type": "files", "paths": [str(path) for path in paths], **settings}
    )
    return FilesSource(resource)


def recorded_paths(sink: MemorySink) -> list[str]:
    lines = sink.streams["files.index"].decode().splitlines()[1:]
    return [json.loads(line)["path"] for line in lines]


@pytest.fixture
def context(tmp_path: Path) -> SourceContext:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    return SourceContext(scratch=scratch)


def backup(source: FilesSource, context: SourceContext) -> tuple[BackupResult, MemorySink]:
    sink = MemorySink()
    return source.backup(context, sink), sink


def round_trip(root: Path, context: SourceContext, target: Path) -> tuple[BackupResult, Path]:
    """Back ``root`` up, restore it below ``target`` (checking the report); return the
    backup's result and where ``root`` came back."""
    result, sink = backup(files_source(root), context)
    report = files_source(root).restore(
        context, MemoryReader(sink.streams), result.metadata, {"path": str(target)}
    )
    assert report.ok, report.failures
    return result, target / str(root).lstrip("/")


def test_rich_tree_restores_byte_identical_into_another_folder(
    tmp_path: Path, context: SourceContext
) -> None:
    root = tmp_path / "data"
    root.mkdir()
    make_rich_tree(root)
    before = tree_state(root)
    result, restored = round_trip(root, context, tmp_path / "restored")

    assert tree_state(restored) == before
    counts = result.metadata["counts"]
    assert counts == {
        "files": 11,
        "dirs": 6,
        "symlinks": 2,
        "hardlinks": 2,
        "bytes": counts["bytes"],
    }
    assert counts["bytes"] == sum(
        path.lstat().st_size
        for path in root.rglob("*")
        if path.is_file() and not path.is_symlink() and path.name not in ("hard-b", "hard-c")
    )
    assert not result.partial
    assert list(context.scratch.iterdir()) == []


def test_restore_test_passes_and_removes_its_scratch_folder(
    tmp_path: Path, context: SourceContext
) -> None:
    root = tmp_path / "data"
    root.mkdir()
    make_rich_tree(root)
    result, sink = backup(files_source(root), context)

    report = files_source(root).restore_test(context, MemoryReader(sink.streams), result.metadata)

    assert report.ok, report.failures
    names = {check.name for check in report.checks}
    assert {"index sha256", "tree digest", "count of files", "sha256: entries matching"} <= names
    assert list(context.scratch.iterdir()) == []


def test_small_files_share_packs_and_large_files_get_their_own_stream(
    tmp_path: Path, context: SourceContext
) -> None:
    root = tmp_path / "data"
    root.mkdir()
    for index in range(300):
        (root / f"small-{index:03d}").write_bytes(b"x" * 100)
    (root / "big").write_bytes(b"y" * LARGE_FILE)
    _result, sink = backup(files_source(root), context)

    content = [name for name in sink.streams if name.startswith("content/")]
    entries = [json.loads(line) for line in sink.streams["files.index"].decode().splitlines()[1:]]
    big = next(entry for entry in entries if entry["path"].endswith("/big"))
    assert len(content) == 2
    assert sink.streams[big["stream"]] == b"y" * LARGE_FILE


def test_sockets_and_fifos_are_skipped_with_a_note(tmp_path: Path, context: SourceContext) -> None:
    root = tmp_path / "data"
    root.mkdir()
    os.mkfifo(root / "pipe")
    listener = socket.socket(socket.AF_UNIX)
    try:
        os.chdir(root)  # keeps the socket path short
        listener.bind("sock")
        result, sink = backup(files_source(root), context)
    finally:
        listener.close()
        os.chdir(tmp_path)
    reasons = {
        entry["path"].rsplit("/", 1)[-1]: entry["reason"] for entry in result.metadata["skipped"]
    }
    assert reasons == {"pipe": "fifo skipped", "sock": "socket skipped"}
    assert recorded_paths(sink) == [str(root).lstrip("/")]


def test_exclude_prunes_folders_and_wins_over_include(
    tmp_path: Path, context: SourceContext
) -> None:
    root = tmp_path / "project"
    for name in (
        "src/app/main.py",
        "src/app/main.pyc",
        "src/notes.txt",
        "build/out.py",
        "docs/guide.md",
        "docs/old/guide.md",
        "docs/secret.md",
        "app.log",
        "x/app.log",
    ):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(name)
    source = files_source(
        root,
        include=["src/**/*.py", "docs/*.md", "*.log"],
        exclude=["build/", "secret.md", "x/"],
    )
    _result, sink = backup(source, context)

    prefix = str(root).lstrip("/")
    relative = [path.removeprefix(prefix).lstrip("/") for path in recorded_paths(sink)]
    assert relative == ["", "app.log", "docs", "docs/guide.md", "src", "src/app", "src/app/main.py"]


def test_an_included_folder_brings_its_whole_subtree_including_empty_folders(
    tmp_path: Path, context: SourceContext
) -> None:
    root = tmp_path / "data"
    (root / "keep" / "empty").mkdir(parents=True)
    (root / "keep" / "a.txt").write_text("a")
    (root / "other").mkdir()
    (root / "other" / "b.txt").write_text("b")
    _result, sink = backup(files_source(root, include=["keep"]), context)
    prefix = str(root).lstrip("/")
    relative = [path.removeprefix(prefix).lstrip("/") for path in recorded_paths(sink)]
    assert relative == ["", "keep", "keep/a.txt", "keep/empty"]


def test_negated_patterns_and_nested_paths_are_refused() -> None:
    with pytest.raises(ConfigError, match="negation"):
        files_source(Path("/srv"), exclude=["!keep.txt"])
    with pytest.raises(ConfigError, match="inside"):
        files_source(Path("/srv"), Path("/srv/data"))


def test_a_missing_path_makes_the_backup_partial(tmp_path: Path, context: SourceContext) -> None:
    (tmp_path / "here").mkdir()
    result, _sink = backup(files_source(tmp_path / "here", tmp_path / "gone"), context)
    assert result.failed_parts == {str(tmp_path / "gone"): "does not exist"}
    assert result.partial


def test_a_file_changing_while_read_is_reported_and_strict_fails(
    tmp_path: Path, context: SourceContext
) -> None:
    root = tmp_path / "data"
    root.mkdir()
    growing = root / "growing.log"
    growing.write_bytes(b"a" * (LARGE_FILE + 1))

    def append_while_written(name: str, _data: bytes) -> None:
        if name.startswith("content/"):
            with growing.open("ab") as handle:
                handle.write(b"more")

    result = files_source(root).backup(context, MemorySink(on_write=append_while_written))
    assert result.metadata["changed_during_backup"] == [str(growing).lstrip("/")]
    assert not result.partial

    strict = FilesSource(FilesResource(type="files", paths=[str(root)]), strict=True)
    with pytest.raises(ConflictError, match="changed while being read") as raised:
        strict.backup(context, MemorySink(on_write=append_while_written))
    assert raised.value.retryable


def test_a_file_vanishing_before_it_is_read_is_a_note(
    tmp_path: Path, context: SourceContext
) -> None:
    root = tmp_path / "data"
    root.mkdir()
    (root / "a").write_text("first")
    (root / "b").write_text("removed while a is written")

    def remove_b(name: str, _data: bytes) -> None:
        (root / "b").unlink(missing_ok=True)

    sink = MemorySink(on_write=remove_b)
    result = files_source(root).backup(context, sink)

    assert result.metadata["skipped"] == [
        {"path": str(root / "b").lstrip("/"), "reason": "vanished before it was read"}
    ]
    report = files_source(root).restore_test(context, MemoryReader(sink.streams), result.metadata)
    assert report.ok, report.failures


def test_restore_to_original_paths_with_several_roots(
    tmp_path: Path, context: SourceContext
) -> None:
    first, second = tmp_path / "one", tmp_path / "two" / "nested"
    for root in (first, second):
        (root / "sub").mkdir(parents=True)
        (root / "sub" / "file").write_text(str(root))
    before = {root: tree_state(root) for root in (first, second)}
    result, sink = backup(files_source(first, second), context)
    shutil.rmtree(first)
    shutil.rmtree(tmp_path / "two")

    report = files_source(first, second).restore(
        context, MemoryReader(sink.streams), result.metadata, {"original": True}
    )
    assert report.ok, report.failures
    assert {root: tree_state(root) for root in (first, second)} == before


def test_a_single_file_can_be_a_root(tmp_path: Path, context: SourceContext) -> None:
    (tmp_path / "etc").mkdir()
    single = tmp_path / "etc" / "fstab"
    single.write_text("/dev/sda1 / ext4 defaults 0 1\n")
    before = single.read_bytes()
    result, sink = backup(files_source(single), context)
    assert recorded_paths(sink) == [str(single).lstrip("/")]
    single.unlink()

    report = files_source(single).restore(
        context, MemoryReader(sink.streams), result.metadata, {"original": True}
    )
    assert report.ok
    assert single.read_bytes() == before


def test_restore_refuses_to_overwrite_unless_asked(tmp_path: Path, context: SourceContext) -> None:
    root = tmp_path / "data"
    root.mkdir()
    (root / "a").write_text("backed up")
    (root / "b").write_text("backed up too")
    result, sink = backup(files_source(root), context)
    (root / "a").write_text("changed since")
    (root / "b").unlink()

    with pytest.raises(ConflictError, match="already exist"):
        files_source(root).restore(
            context, MemoryReader(sink.streams), result.metadata, {"original": True}
        )
    assert (root / "a").read_text() == "changed since"
    assert not (root / "b").exists()

    report = files_source(root).restore(
        context, MemoryReader(sink.streams), result.metadata, {"original": True, "overwrite": True}
    )
    assert report.ok
    assert (root / "a").read_text() == "backed up"
    assert (root / "b").read_text() == "backed up too"


def test_overwrite_never_replaces_a_folder_with_a_file(
    tmp_path: Path, context: SourceContext
) -> None:
    root = tmp_path / "data"
    root.mkdir()
    (root / "a").write_text("a file")
    (root / "b").write_text("b")
    result, sink = backup(files_source(root), context)
    (root / "a").unlink()
    (root / "a").mkdir()
    (root / "a" / "precious").write_text("kept")
    (root / "b").write_text("changed")

    with pytest.raises(ConflictError, match="a folder stands where a file must go"):
        files_source(root).restore(
            context,
            MemoryReader(sink.streams),
            result.metadata,
            {"original": True, "overwrite": True},
        )
    assert (root / "a" / "precious").read_text() == "kept"
    assert (root / "b").read_text() == "changed"


def test_follow_symlinks_backs_up_what_links_point_to(
    tmp_path: Path, context: SourceContext
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "inside.txt").write_text("reached through a link")
    root = tmp_path / "data"
    root.mkdir()
    (root / "to-folder").symlink_to(elsewhere)
    (root / "dangling").symlink_to(tmp_path / "missing")
    (root / "loop").symlink_to(root)
    result, sink = backup(files_source(root, follow_symlinks=True), context)

    entries = {
        json.loads(line)["path"].removeprefix(str(root).lstrip("/")): json.loads(line)["type"]
        for line in sink.streams["files.index"].decode().splitlines()[1:]
    }
    assert entries == {
        "": "dir",
        "/dangling": "symlink",
        "/loop": "symlink",
        "/to-folder": "dir",
        "/to-folder/inside.txt": "file",
    }
    reasons = [entry["reason"] for entry in result.metadata["skipped"]]
    assert reasons == ["symlink loop not followed"]
    report = files_source(root).restore_test(context, MemoryReader(sink.streams), result.metadata)
    assert report.ok, report.failures


def test_one_file_system_records_a_mount_point_but_does_not_enter_it(
    context: SourceContext, tmp_path: Path
) -> None:
    root = tmp_path / "tree"
    (root / "kept").mkdir(parents=True)
    (root / "kept" / "file").write_text("on the root's file system")
    with mounted_tmpfs(root / "mounted", 1024 * 1024) as mounted:
        (mounted / "inside").write_text("on another file system")
        source = files_source(root, one_file_system=True)
        result, sink = backup(source, context)
    top = str(root).lstrip("/")
    assert recorded_paths(sink) == [top, f"{top}/kept", f"{top}/kept/file", f"{top}/mounted"]
    assert {"path": f"{top}/mounted", "reason": "mount point: other file system not entered"} in (
        result.metadata["skipped"]
    )


def test_restoring_one_file_reads_only_its_stream(tmp_path: Path, context: SourceContext) -> None:
    root = tmp_path / "data"
    root.mkdir()
    (root / "big-1").write_bytes(b"1" * LARGE_FILE)
    (root / "big-2").write_bytes(b"2" * LARGE_FILE)
    (root / "small").write_text("small")
    result, sink = backup(files_source(root), context)
    reader = MemoryReader(sink.streams)

    wanted = str(root / "big-2").lstrip("/")
    report = files_source(root).restore(
        context, reader, result.metadata, {"path": str(tmp_path / "out"), "only": [wanted]}
    )

    assert report.ok
    assert (tmp_path / "out" / wanted).read_bytes() == b"2" * LARGE_FILE
    assert not (tmp_path / "out" / str(root / "small").lstrip("/")).exists()
    assert reader.opened == ["files.index", "content/000002"]


def test_restoring_one_hard_link_brings_its_first_path(
    tmp_path: Path, context: SourceContext
) -> None:
    root = tmp_path / "data"
    root.mkdir()
    (root / "a").write_text("shared")
    os.link(root / "a", root / "z")
    result, sink = backup(files_source(root), context)
    out = tmp_path / "out"
    wanted = str(root / "z").lstrip("/")
    report = files_source(root).restore(
        context, MemoryReader(sink.streams), result.metadata, {"path": str(out), "only": [wanted]}
    )
    assert report.ok
    restored_a, restored_z = out / str(root / "a").lstrip("/"), out / wanted
    assert restored_z.read_text() == "shared"
    assert restored_a.stat().st_ino == restored_z.stat().st_ino


def test_invalid_restore_targets_are_config_errors(tmp_path: Path, context: SourceContext) -> None:
    source = files_source(tmp_path)
    for target in (
        {},
        {"path": "relative"},
        {"path": "/x", "original": True},
        {"path": "/x", "x": 1},
    ):
        with pytest.raises(ConfigError):
            source.restore(context, MemoryReader({}), {}, target)


def test_dry_run_backup_reads_and_writes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    (root / "a").write_text("abc")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    sink = MemorySink()
    result = files_source(root).backup(SourceContext(scratch=scratch, dry_run=True), sink)
    assert sink.streams == {}
    assert result.metadata["counts"]["files"] == 1
    assert result.metadata["counts"]["bytes"] == 3


def test_a_cancelled_backup_stops(tmp_path: Path, context: SourceContext) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a").write_text("a")
    context.cancel.set()
    with pytest.raises(AbortedError):
        backup(files_source(tmp_path / "data"), context)
    assert list(context.scratch.iterdir()) == []


def test_a_cancelled_restore_test_stops_and_cleans_up(
    tmp_path: Path, context: SourceContext
) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a").write_text("a")
    result, sink = backup(files_source(tmp_path / "data"), context)
    context.cancel.set()
    with pytest.raises(AbortedError):
        files_source(tmp_path / "data").restore_test(
            context, MemoryReader(sink.streams), result.metadata
        )
    assert list(context.scratch.iterdir()) == []


def test_restore_test_without_root_compares_everything_but_owners(
    tmp_path: Path, context: SourceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "data"
    root.mkdir()
    make_rich_tree(root)
    result, sink = backup(files_source(root), context)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)

    report = files_source(root).restore_test(context, MemoryReader(sink.streams), result.metadata)

    assert report.ok, report.failures
    assert "tree digest without owners" in {check.name for check in report.checks}
    assert "not running as root: owners are not compared" in report.notes


def test_sources_are_registered_explicitly_and_follow_the_protocol(tmp_path: Path) -> None:
    assert REGISTRY["files"].source_class() is FilesSource
    assert REGISTRY["sqlite"].source_class() is SqliteSource
    source = files_source(tmp_path)
    assert isinstance(source, Source)
    description = source.describe(SourceContext(scratch=tmp_path))
    assert description.parts == [str(tmp_path)]


def test_a_file_system_without_xattrs_is_asked_once(
    tmp_path: Path, context: SourceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "data"
    (root / "sub").mkdir(parents=True)
    for index in range(20):
        (root / "sub" / f"file-{index}").write_text(str(index))
    asked: list[str] = []

    def listxattr(path: str, *, follow_symlinks: bool = True) -> list[str]:
        asked.append(path)
        raise OSError(errno.ENOTSUP, "Operation not supported", path)

    monkeypatch.setattr(os, "listxattr", listxattr)
    result, sink = backup(files_source(root), context)
    assert len(asked) == 1  # the syscall count is the point: one per file system
    assert result.metadata["skipped_count"] == 0
    report = files_source(root).restore(
        context, MemoryReader(sink.streams), result.metadata, {"path": str(tmp_path / "out")}
    )
    assert report.ok, report.failures
    assert len(list((tmp_path / "out" / str(root).lstrip("/") / "sub").iterdir())) == 20


def test_a_restore_is_made_durable_once_and_replacements_file_by_file(
    tmp_path: Path, context: SourceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """New files are synced together at the end (one syncfs per filesystem); a file that
    replaces another is fsynced before its rename, so a crash never swaps it for nothing."""
    from strongroom.sources.files import restore as files_restore

    root = tmp_path / "data"
    root.mkdir()
    make_rich_tree(root)
    result, sink = backup(files_source(root), context)
    fsynced: list[str] = []
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(descriptor: int) -> None:
        fsynced.append(str(Path(f"/proc/self/fd/{descriptor}").readlink()))
        real_fsync(descriptor)

    def sync_filesystem(folder: str) -> None:
        synced.append(folder)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(files_restore, "sync_filesystem", sync_filesystem)

    target = tmp_path / "restored"
    report = files_source(root).restore(
        context, MemoryReader(sink.streams), result.metadata, {"path": str(target)}
    )
    assert report.ok, report.failures
    assert fsynced == []
    assert synced == [str(target)]

    synced.clear()
    report = files_source(root).restore(
        context,
        MemoryReader(sink.streams),
        result.metadata,
        {"original": True, "overwrite": True},
    )
    assert report.ok, report.failures
    replaced = [path for path in fsynced if ".strongroom-" in path]
    assert len(replaced) == result.metadata["counts"]["files"]  # type: ignore[index]
    assert any(Path(path).is_dir() for path in fsynced)  # and their folders
    [anchor] = synced  # one filesystem: one sync
    assert root.is_relative_to(anchor)


def test_sync_filesystem_uses_syncfs(tmp_path: Path) -> None:
    from strongroom.sources.files import handles as files_handles

    assert files_handles._syncfs is not None  # glibc has had syncfs since 2.14
    (tmp_path / "new").write_bytes(b"data")
    files_handles.sync_filesystem(str(tmp_path))


def test_many_small_files_written_by_several_threads_restore_exactly(
    tmp_path: Path, context: SourceContext
) -> None:
    root = tmp_path / "data"
    for folder in range(30):
        (root / f"d{folder:02d}").mkdir(parents=True)
        for number in range(20):
            path = root / f"d{folder:02d}" / f"f{number:02d}"
            path.write_bytes(os.urandom(number * 97 + folder))
            path.chmod(0o600 + number % 8)
            os.utime(path, ns=(1_600_000_000_000_000_000 + number, 1_600_000_000_000_000_000))
        os.link(root / f"d{folder:02d}" / "f03", root / f"d{folder:02d}" / "link-to-f03")
    before = tree_state(root)
    _result, restored = round_trip(root, context, tmp_path / "restored")

    assert tree_state(restored) == before
    assert not [path for path in restored.rglob("*") if ".strongroom-" in path.name]


def test_modes_and_owners_come_back_exactly_whatever_the_umask(
    tmp_path: Path, context: SourceContext
) -> None:
    root = tmp_path / "data"
    root.mkdir()
    modes = {"plain": 0o644, "private": 0o600, "group": 0o640, "read-only": 0o444}
    modes |= {"none": 0o000, "setuid": 0o4755, "sticky-ish": 0o2750, "open": 0o777}
    as_root = os.geteuid() == 0
    for number, (name, mode) in enumerate(modes.items()):
        path = root / name
        path.write_bytes(name.encode() * 100)
        if as_root and number % 2:
            os.chown(path, 1000 + number, 2000 + number)  # someone else's file
        path.chmod(mode)  # after chown, which clears setuid
    owners = {name: (root / name).stat()[4:6] for name in modes}
    old_umask = os.umask(0o077)
    try:
        _, restored = round_trip(root, context, tmp_path / "restored")
    finally:
        os.umask(old_umask)
    for name, mode in modes.items():
        found = (restored / name).stat()
        assert stat.S_IMODE(found.st_mode) == mode, name
        assert (restored / name).read_bytes() == name.encode() * 100
        if as_root:
            assert (found.st_uid, found.st_gid) == owners[name], name
