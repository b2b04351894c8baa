"""The files cache: unchanged files are not read again when the sink can reuse content."""

from __future__ import annotations

import dataclasses
import errno
import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from strongroom.config.resources import FilesResource
from strongroom.errors import StrongroomError
from strongroom.sources.base import BackupResult, SourceContext
from strongroom.sources.files import cache as files_cache
from strongroom.sources.files import content as files_content
from strongroom.sources.files.content import LARGE_FILE
from strongroom.sources.files.source import FilesSource
from strongroom.sources.files.walk import WalkItem
from tests.support.environment import require_user_xattrs
from tests.support.source_fakes import (
    MemoryReader,
    MemorySink,
    ReusingMemorySink,
    tree_state,
)


@pytest.fixture(autouse=True)
def cuts_by_file_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """Packs end where a hash of the file's *name* says, not of its whole path: the tree
    lives under a temporary folder whose name changes from run to run, and these tests
    need the same pack layout every time (the cut rule itself is tested elsewhere)."""
    real = files_content.ContentWriter._pack_full

    def pack_full(writer: files_content.ContentWriter, last: WalkItem) -> bool:
        return real(writer, dataclasses.replace(last, path=Path(last.path).name))

    monkeypatch.setattr(files_content.ContentWriter, "_pack_full", pack_full)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    (root / "many").mkdir(parents=True)
    for index in range(100):  # 10 MB of small files: more than one pack
        (root / "many" / f"file-{index:04d}").write_bytes(os.urandom(100_000))
    (root / "large").write_bytes(os.urandom(LARGE_FILE + 1))
    return root


@pytest.fixture
def no_racy_margin(monkeypatch: pytest.MonkeyPatch) -> None:
    # The files were written a moment ago; the margin that guards against changes within
    # one timestamp tick would keep them out of the cache.
    monkeypatch.setattr(files_cache, "RACY_MARGIN_NS", 0)


def run(source: FilesSource, tmp_path: Path, sink: MemorySink) -> BackupResult:
    scratch = tmp_path / "scratch"
    scratch.mkdir(exist_ok=True)
    return source.backup(SourceContext(scratch=scratch), sink)


def content_streams(sink: MemorySink) -> list[str]:
    return sorted(name for name in sink.streams if name.startswith("content/"))


@pytest.mark.usefixtures("no_racy_margin")
def test_an_unchanged_tree_is_not_read_again(tree: Path, tmp_path: Path) -> None:
    source = FilesSource(
        FilesResource(type="files", paths=[str(tree)]), cache_path=tmp_path / "cache.sqlite"
    )
    store: dict[str, bytes] = {}
    first = run(source, tmp_path, ReusingMemorySink(store))
    second_sink = ReusingMemorySink(store)
    second = run(source, tmp_path, second_sink)

    assert first.metadata["cache"]["bytes_read"] == first.metadata["counts"]["bytes"]
    assert second.metadata["cache"]["bytes_read"] == 0
    assert second_sink.reused == content_streams(second_sink)
    assert len(second_sink.reused) >= 3
    assert second.metadata["tree_digest"] == first.metadata["tree_digest"]

    out = tmp_path / "out"
    report = source.restore(
        SourceContext(scratch=tmp_path / "scratch"),
        MemoryReader(second_sink.streams),
        second.metadata,
        {"path": str(out)},
    )
    assert report.ok
    assert tree_state(out / str(tree).lstrip("/")) == tree_state(tree)


@pytest.mark.usefixtures("no_racy_margin")
def test_one_changed_file_rereads_only_its_pack(tree: Path, tmp_path: Path) -> None:
    source = FilesSource(
        FilesResource(type="files", paths=[str(tree)]), cache_path=tmp_path / "cache.sqlite"
    )
    store: dict[str, bytes] = {}
    run(source, tmp_path, ReusingMemorySink(store))
    (tree / "many" / "file-0050").write_bytes(b"changed, and shorter")
    sink = ReusingMemorySink(store)
    result = run(source, tmp_path, sink)

    read_again = sorted(set(content_streams(sink)) - set(sink.reused))
    assert len(read_again) == 1
    assert result.metadata["cache"]["bytes_read"] == len(sink.streams[read_again[0]])
    report = source.restore_test(
        SourceContext(scratch=tmp_path / "scratch"), MemoryReader(sink.streams), result.metadata
    )
    assert report.ok, report.failures


def test_files_changed_just_before_the_backup_are_not_trusted(tree: Path, tmp_path: Path) -> None:
    source = FilesSource(
        FilesResource(type="files", paths=[str(tree)]), cache_path=tmp_path / "cache.sqlite"
    )
    store: dict[str, bytes] = {}
    run(source, tmp_path, ReusingMemorySink(store))
    sink = ReusingMemorySink(store)
    result = run(source, tmp_path, sink)
    assert sink.reused == []
    assert result.metadata["cache"]["bytes_read"] == result.metadata["counts"]["bytes"]


@pytest.mark.usefixtures("no_racy_margin")
def test_a_sink_without_reuse_reads_everything_and_keeps_no_cache(
    tree: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache.sqlite"
    source = FilesSource(FilesResource(type="files", paths=[str(tree)]), cache_path=cache)
    result = run(source, tmp_path, MemorySink())
    assert result.metadata["cache"]["used"] is False
    assert not cache.exists()


@pytest.mark.usefixtures("no_racy_margin")
def test_reuse_refused_by_the_sink_falls_back_to_reading(tree: Path, tmp_path: Path) -> None:
    source = FilesSource(
        FilesResource(type="files", paths=[str(tree)]), cache_path=tmp_path / "cache.sqlite"
    )
    run(source, tmp_path, ReusingMemorySink({}))
    sink = ReusingMemorySink({})  # a store that lost the earlier data
    result = run(source, tmp_path, sink)
    assert sink.reused == []
    assert result.metadata["cache"]["bytes_read"] == result.metadata["counts"]["bytes"]


@pytest.mark.usefixtures("no_racy_margin")
def test_a_damaged_cache_file_is_replaced(tree: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache.sqlite"
    cache.write_bytes(b"this is not a database" * 100)
    source = FilesSource(FilesResource(type="files", paths=[str(tree)]), cache_path=cache)
    store: dict[str, bytes] = {}
    run(source, tmp_path, ReusingMemorySink(store))
    sink = ReusingMemorySink(store)
    assert run(source, tmp_path, sink).metadata["cache"]["bytes_read"] == 0


def cached_source(tree: Path, tmp_path: Path) -> FilesSource:
    return FilesSource(
        FilesResource(type="files", paths=[str(tree)]), cache_path=tmp_path / "cache.sqlite"
    )


def read_again(sink: ReusingMemorySink) -> list[str]:
    return sorted(set(content_streams(sink)) - set(sink.reused))


def restored_state(
    source: FilesSource, tmp_path: Path, sink: MemorySink, result: BackupResult, tree: Path
) -> dict[str, tuple[object, ...]]:
    out = tmp_path / f"out-{len(list(tmp_path.glob('out-*')))}"
    report = source.restore(
        SourceContext(scratch=tmp_path / "scratch"),
        MemoryReader(sink.streams),
        result.metadata,
        {"path": str(out)},
    )
    assert report.ok, report.failures
    return tree_state(out / str(tree).lstrip("/"))


@pytest.mark.usefixtures("no_racy_margin")
def test_streams_kept_by_a_backup_stay_reusable_in_the_next_ones(
    tree: Path, tmp_path: Path
) -> None:
    # The second backup only marks the streams it reuses; the third must still find them.
    source = cached_source(tree, tmp_path)
    store: dict[str, bytes] = {}
    first = run(source, tmp_path, ReusingMemorySink(store))
    for _ in range(2):
        sink = ReusingMemorySink(store)
        result = run(source, tmp_path, sink)
        assert result.metadata["cache"]["bytes_read"] == 0
        assert sink.reused == content_streams(sink)
        assert result.metadata["tree_digest"] == first.metadata["tree_digest"]


@pytest.mark.usefixtures("no_racy_margin")
def test_content_changed_with_size_and_mtime_restored_is_read_again(
    tree: Path, tmp_path: Path
) -> None:
    source = cached_source(tree, tmp_path)
    store: dict[str, bytes] = {}
    run(source, tmp_path, ReusingMemorySink(store))
    target = tree / "many" / "file-0050"
    before = target.stat()
    target.write_bytes(b"x" * before.st_size)  # same size, same inode
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))  # as rsync -t or tar would
    assert target.stat().st_mtime_ns == before.st_mtime_ns

    sink = ReusingMemorySink(store)
    result = run(source, tmp_path, sink)
    assert len(read_again(sink)) == 1
    assert result.metadata["cache"]["bytes_read"] > 0
    assert restored_state(source, tmp_path, sink, result, tree) == tree_state(tree)


@pytest.mark.usefixtures("no_racy_margin")
def test_a_file_replaced_by_another_inode_with_the_same_size_and_mtime_is_read_again(
    tree: Path, tmp_path: Path
) -> None:
    source = cached_source(tree, tmp_path)
    store: dict[str, bytes] = {}
    run(source, tmp_path, ReusingMemorySink(store))
    target = tree / "many" / "file-0007"
    before = target.stat()
    replacement = tree / "many" / ".replacement"
    replacement.write_bytes(b"y" * before.st_size)
    os.utime(replacement, ns=(before.st_atime_ns, before.st_mtime_ns))
    replacement.replace(target)

    sink = ReusingMemorySink(store)
    result = run(source, tmp_path, sink)
    assert len(read_again(sink)) == 1
    assert restored_state(source, tmp_path, sink, result, tree) == tree_state(tree)


@pytest.mark.usefixtures("no_racy_margin")
def test_a_removed_file_rereads_its_pack_and_leaves_the_index(tree: Path, tmp_path: Path) -> None:
    source = cached_source(tree, tmp_path)
    store: dict[str, bytes] = {}
    run(source, tmp_path, ReusingMemorySink(store))
    (tree / "many" / "file-0031").unlink()

    sink = ReusingMemorySink(store)
    result = run(source, tmp_path, sink)
    assert len(read_again(sink)) == 1
    assert result.metadata["counts"]["files"] == 100  # 99 small and the large one
    assert restored_state(source, tmp_path, sink, result, tree) == tree_state(tree)
    # Put back with new content at the same path: never taken from the old cache rows.
    (tree / "many" / "file-0031").write_bytes(b"back again")
    sink = ReusingMemorySink(store)
    result = run(source, tmp_path, sink)
    assert len(read_again(sink)) == 1
    assert restored_state(source, tmp_path, sink, result, tree) == tree_state(tree)


@pytest.mark.usefixtures("no_racy_margin")
def test_a_renamed_file_is_recorded_under_its_new_name(tree: Path, tmp_path: Path) -> None:
    source = cached_source(tree, tmp_path)
    store: dict[str, bytes] = {}
    run(source, tmp_path, ReusingMemorySink(store))
    (tree / "many" / "file-0020").rename(tree / "many" / "file-0020-renamed")

    sink = ReusingMemorySink(store)
    result = run(source, tmp_path, sink)
    assert 1 <= len(read_again(sink)) <= 2  # where it left and where it arrived
    report = source.restore_test(
        SourceContext(scratch=tmp_path / "scratch"), MemoryReader(sink.streams), result.metadata
    )
    assert report.ok, report.failures
    assert restored_state(source, tmp_path, sink, result, tree) == tree_state(tree)


@pytest.mark.usefixtures("no_racy_margin")
def test_changed_xattrs_and_mode_of_an_unchanged_file_are_recorded(
    tree: Path, tmp_path: Path
) -> None:
    require_user_xattrs(tmp_path)
    labelled = tree / "many" / "file-0003"
    os.setxattr(labelled, "user.kept", b"from the cache")
    source = cached_source(tree, tmp_path)
    store: dict[str, bytes] = {}
    first = run(source, tmp_path, ReusingMemorySink(store))

    sink = ReusingMemorySink(store)
    second = run(source, tmp_path, sink)
    assert second.metadata["cache"]["bytes_read"] == 0  # its xattrs came from the cache
    assert second.metadata["tree_digest"] == first.metadata["tree_digest"]
    assert restored_state(source, tmp_path, sink, second, tree) == tree_state(tree)

    os.setxattr(labelled, "user.kept", b"changed")  # moves the ctime, not the mtime
    os.setxattr(tree / "many" / "file-0090", "user.new", b"\x00\xff")
    (tree / "many" / "file-0060").chmod(0o600)
    sink = ReusingMemorySink(store)
    third = run(source, tmp_path, sink)
    assert third.metadata["tree_digest"] != first.metadata["tree_digest"]
    assert restored_state(source, tmp_path, sink, third, tree) == tree_state(tree)


@pytest.mark.usefixtures("no_racy_margin")
def test_a_cache_of_an_older_format_is_replaced(tree: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache.sqlite"
    with closing(sqlite3.connect(cache)) as connection, connection:
        connection.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        connection.execute("INSERT INTO meta VALUES ('version', '1'), ('generation', '7')")
        connection.execute("CREATE TABLE files (path BLOB PRIMARY KEY, reference TEXT)")
    source = FilesSource(FilesResource(type="files", paths=[str(tree)]), cache_path=cache)
    store: dict[str, bytes] = {}
    first = run(source, tmp_path, ReusingMemorySink(store))
    assert first.metadata["cache"]["bytes_read"] == first.metadata["counts"]["bytes"]
    sink = ReusingMemorySink(store)
    assert run(source, tmp_path, sink).metadata["cache"]["bytes_read"] == 0


@pytest.mark.usefixtures("no_racy_margin")
def test_a_failed_backup_leaves_the_cache_as_it_was(tree: Path, tmp_path: Path) -> None:
    source = cached_source(tree, tmp_path)
    store: dict[str, bytes] = {}
    run(source, tmp_path, ReusingMemorySink(store))
    (tree / "many" / "file-0042").write_bytes(b"new")

    class FailingIndexSink(ReusingMemorySink):
        def open_stream(self, name: str) -> Iterator[Any]:  # type: ignore[override]
            if name == "files.index":
                raise OSError(errno.EIO, "disk on fire")
            return super().open_stream(name)

    with pytest.raises(StrongroomError):
        run(source, tmp_path, FailingIndexSink(store))
    sink = ReusingMemorySink(store)
    result = run(source, tmp_path, sink)
    assert len(read_again(sink)) == 1  # the failed backup's streams were not kept
    assert restored_state(source, tmp_path, sink, result, tree) == tree_state(tree)
