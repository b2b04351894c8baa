"""The files cache: unchanged files are not read again when the sink can reuse content."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from strongroom.config.resources import FilesResource
from strongroom.sources import files_cache
from strongroom.sources.base import BackupResult, SourceContext
from strongroom.sources.files import FilesSource
from strongroom.sources.files_content import LARGE_FILE
from tests.unit.sources.fakes import MemoryReader, MemorySink, ReusingMemorySink, tree_state


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
