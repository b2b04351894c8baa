"""Read-ahead across streams: a reader told which streams come next fetches their chunks
while the current one is read, hands out the same bytes, and keeps every failure with
the stream it belongs to."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest

from strongroom.config.resources import FilesResource
from strongroom.errors import IntegrityError
from strongroom.services.jobs.handlers.streams import PointStreams
from strongroom.sources.base import JsonObject, SourceContext
from strongroom.sources.files import content as files_content
from strongroom.sources.files.source import FilesSource
from strongroom.storage.memory import MemoryStore
from strongroom.vault import ReaderOptions, Vault
from tests.support.source_fakes import tree_state
from tests.support.waiting import PATIENCE

from .conftest import VaultFactory, backup, sample_data

TIGHT = ReaderOptions(threads=4, prefetch_bytes=96 * 1024, segment_bytes=16 * 1024)
STREAMS = {
    f"content/{number:06d}": sample_data(40_000 + number * 9_000, seed=100 + number)
    for number in range(6)
}
STREAMS["content/000006"] = b""  # an empty stream has no segment at all
STREAMS["content/000007"] = sample_data(30_000, seed=7)


def _read_like_a_files_restore(stream: io.RawIOBase, size: int) -> bytes:
    """Read exactly ``size`` bytes in small reads and stop there, as the files restore's
    cursor does (it never asks for the end of the stream)."""
    out = bytearray()
    while len(out) < size:
        block = stream.read(min(3_000, size - len(out)))
        if not block:
            break
        out += block
    return bytes(out)


def test_planned_streams_read_whole_or_to_their_size_give_the_same_bytes(
    make_vault: VaultFactory,
) -> None:
    vault = make_vault()
    point_id = backup(vault, STREAMS)
    names = list(STREAMS)
    with vault.reader(point_id, TIGHT) as reader:
        reader.read_ahead(names)
        for name in names:
            if name.endswith(("1", "4")):
                assert reader.read_stream(name) == STREAMS[name]
            else:
                with reader.open_stream(name) as stream:
                    assert _read_like_a_files_restore(stream, len(STREAMS[name])) == STREAMS[name]
        # the plan is used up: reading again starts afresh
        assert reader.read_stream(names[2]) == STREAMS[names[2]]


def test_reading_out_of_turn_or_stopping_early_drops_the_plan_not_the_bytes(
    make_vault: VaultFactory,
) -> None:
    vault = make_vault()
    point_id = backup(vault, STREAMS)
    names = list(STREAMS)
    with vault.reader(point_id, TIGHT) as reader:
        reader.read_ahead(names)
        assert reader.read_stream(names[0]) == STREAMS[names[0]]
        assert reader.read_stream(names[3]) == STREAMS[names[3]]  # out of turn
        assert reader.read_stream(names[1]) == STREAMS[names[1]]
        reader.read_ahead(names)
        with reader.open_stream(names[0]) as stream:
            assert stream.read(100) == STREAMS[names[0]][:100]  # left early
        for name in names:
            assert reader.read_stream(name) == STREAMS[name]
        reader.read_ahead(["content/000001", "no such stream", "content/000002"])
        assert reader.read_stream("content/000001") == STREAMS["content/000001"]
        assert reader.read_stream("content/000002") == STREAMS["content/000002"]


def _damage_chunk(vault: Vault, point_id: str, name: str, which: int) -> tuple[str, bytes]:
    """Flip one byte of chunk ``which`` of stream ``name``; return its pack and id."""
    store = vault.store
    assert isinstance(store, MemoryStore)
    with vault.reader(point_id, TIGHT) as reader:
        chunk_ids = list(reader.chunk_ids(reader.stream(name)))
    location = vault.parts.index.locate(chunk_ids[which])
    assert location is not None
    damaged = bytearray(store.get(location.pack_name))
    damaged[location.entry.offset + 5] ^= 0x01
    store.put(location.pack_name, bytes(damaged))
    return location.pack_name, chunk_ids[which]


def test_a_damaged_chunk_is_named_in_its_own_stream_only(make_vault: VaultFactory) -> None:
    vault = make_vault()
    point_id = backup(vault, STREAMS)
    names = list(STREAMS)
    victim = names[3]
    pack, chunk_id = _damage_chunk(vault, point_id, victim, 1)
    with vault.reader(point_id, TIGHT) as reader:
        reader.read_ahead(names)
        for name in names[:3]:  # read while the damaged chunk is being fetched ahead
            assert reader.read_stream(name) == STREAMS[name]
        out = io.BytesIO()
        with pytest.raises(IntegrityError) as raised:
            reader.copy_stream(victim, out)
        assert pack in str(raised.value) and chunk_id.hex() in str(raised.value)
        assert victim in str(raised.value)
        written = out.getvalue()
        assert written == STREAMS[victim][: len(written)]
        assert len(written) < len(STREAMS[victim])
        for name in names[4:]:
            assert reader.read_stream(name) == STREAMS[name]


class _WatchedStore(MemoryStore):
    """A memory store that signals when a range starting at a given place is read."""

    def __init__(self) -> None:
        super().__init__()
        self.watched: tuple[str, int] | None = None
        self.seen = threading.Event()

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        if (name, offset) == self.watched:
            self.seen.set()
        return super().get(name, offset, length)


def test_the_next_stream_is_fetched_before_it_is_opened(make_vault: VaultFactory) -> None:
    store = _WatchedStore()
    vault = make_vault(store)
    first, second = "content/000000", "content/000001"
    point_id = backup(vault, {first: STREAMS[first], second: STREAMS[second]})
    with vault.reader(point_id, TIGHT) as reader:
        chunk_ids = list(reader.chunk_ids(reader.stream(second)))
    location = vault.parts.index.locate(chunk_ids[0])
    assert location is not None
    store.watched = (location.pack_name, location.entry.offset)

    with vault.reader(point_id, TIGHT) as reader:
        reader.read_ahead([first, second])
        with reader.open_stream(first) as stream:
            assert _read_like_a_files_restore(stream, len(STREAMS[first])) == STREAMS[first]
        # Nothing has opened the second stream yet, and its first segment is on its way
        # (the bound is a failure's, not a timing: a reader without the plan never gets it).
        assert store.seen.wait(PATIENCE), "the second stream was not fetched ahead"
        assert reader.read_stream(second) == STREAMS[second]


def _small_file_tree(root: Path, count: int) -> None:
    for index in range(count):
        folder = root / f"d{index // 40:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{index:04d}.txt").write_bytes(sample_data(200 + index * 37, seed=index))


def _files_backup(vault: Vault, tree: Path, scratch: Path) -> tuple[str, JsonObject]:
    source = FilesSource(FilesResource(type="files", paths=[str(tree)]))
    with vault.writer() as writer:
        result = source.backup(SourceContext(scratch=scratch), writer)
        return writer.commit(metadata=result.metadata), result.metadata


@pytest.fixture
def small_packs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Content streams of a few files each, so that a small tree spans many streams."""
    monkeypatch.setattr(files_content, "PACK_MIN", 1)
    monkeypatch.setattr(files_content, "PACK_MAX_FILES", 25)


@pytest.mark.usefixtures("small_packs")
def test_a_files_restore_reads_ahead_and_restores_every_byte(
    make_vault: VaultFactory, tmp_path: Path
) -> None:
    tree, scratch = tmp_path / "tree", tmp_path / "scratch"
    _small_file_tree(tree, 300)
    scratch.mkdir()
    vault = make_vault()
    point_id, metadata = _files_backup(vault, tree, scratch)
    streams = [r.name for r in vault.point(point_id).streams if r.name.startswith("content/")]
    assert len(streams) >= 10
    source = FilesSource(FilesResource(type="files", paths=[str(tree)]))
    with vault.reader(point_id, TIGHT) as reader:
        report = source.restore(
            SourceContext(scratch=scratch),
            PointStreams(reader),
            metadata,
            {"path": str(tmp_path / "out")},
        )
    assert report.ok, report.failures
    assert tree_state(tmp_path / "out" / str(tree).lstrip("/")) == tree_state(tree)


@pytest.mark.usefixtures("small_packs")
def test_a_damaged_chunk_fails_only_the_files_of_its_stream_from_it_on(
    make_vault: VaultFactory, tmp_path: Path
) -> None:
    tree, scratch = tmp_path / "tree", tmp_path / "scratch"
    _small_file_tree(tree, 300)
    scratch.mkdir()
    vault = make_vault()
    point_id, metadata = _files_backup(vault, tree, scratch)
    streams = [r.name for r in vault.point(point_id).streams if r.name.startswith("content/")]
    victim = streams[len(streams) // 2]
    _, chunk_id = _damage_chunk(vault, point_id, victim, 0)
    source = FilesSource(FilesResource(type="files", paths=[str(tree)]))
    out = tmp_path / "out"
    with vault.reader(point_id, TIGHT) as reader:
        report = source.restore(
            SourceContext(scratch=scratch), PointStreams(reader), metadata, {"path": str(out)}
        )
    assert not report.ok
    reasons = [str(check.actual) for check in report.failures if check.name.startswith("restore")]
    assert reasons and all(chunk_id.hex() in reason for reason in reasons), reasons
    restored_root = out / str(tree).lstrip("/")
    missing = []
    for original in sorted(tree.rglob("*.txt")):
        restored = restored_root / original.relative_to(tree)
        if restored.exists():
            assert restored.read_bytes() == original.read_bytes(), original
        else:
            missing.append(original)
    # the damaged stream's files from the damaged chunk on, and nothing else
    assert 0 < len(missing) <= files_content.PACK_MAX_FILES
    assert [path.name for path in restored_root.rglob(".strongroom-*")] == []
