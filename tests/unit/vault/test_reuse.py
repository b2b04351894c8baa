"""Stream reuse: a stream stored before goes into a new point without its bytes, and only
while every chunk of it is still in the vault (the files source's unchanged-file cache)."""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from strongroom.config.resources import FilesResource
from strongroom.errors import ConfigError
from strongroom.sources.base import SourceContext
from strongroom.sources.files import cache as files_cache
from strongroom.sources.files.cache import ReusingSink
from strongroom.sources.files.content import LARGE_FILE
from strongroom.sources.files.source import FilesSource
from strongroom.vault import StreamReader, Vault, VaultReader
from tests.support.source_fakes import tree_state

from .conftest import OPTIONS, VaultFactory, backup, restore, sample_data

LONG = sample_data(700_000, seed=21)  # > 64 chunks: listed through list chunks
SHORT = sample_data(30_000, seed=22)  # a few chunks, listed in the manifest


def _write_and_reference(vault: Vault, streams: dict[str, bytes]) -> tuple[str, dict[str, Any]]:
    references: dict[str, Any] = {}
    with vault.writer(OPTIONS) as writer:
        for name, data in streams.items():
            with writer.open_stream(name) as stream:
                stream.write(data)
            references[name] = writer.stream_reference(name)
        point_id = writer.commit()
    return point_id, json.loads(json.dumps(references))  # kept as JSON, like a files cache


def _reuse(vault: Vault, streams: dict[str, dict[str, Any]]) -> tuple[str, dict[str, bool]]:
    with vault.writer(OPTIONS) as writer:
        accepted = {name: writer.reuse(name, reference) for name, reference in streams.items()}
        return writer.commit(), accepted


def test_the_vault_writer_is_a_reusing_sink(make_vault: VaultFactory) -> None:
    with make_vault().writer(OPTIONS) as writer:
        assert isinstance(writer, ReusingSink)
        writer.abort()


@pytest.mark.parametrize("data", [LONG, SHORT, b""], ids=["long", "short", "empty"])
def test_reused_stream_restores_identically_with_no_new_data(
    make_vault: VaultFactory, data: bytes
) -> None:
    vault = make_vault()
    first, references = _write_and_reference(vault, {"file": data})
    second, accepted = _reuse(vault, {"again": references["file"]})
    assert accepted == {"again": True}
    assert restore(vault, second) == {"again": data}
    old, new = vault.point(first), vault.point(second)
    assert (new.stats.new_stored_size, new.stats.new_chunk_count) == (0, 0)
    assert new.stats.logical_size == len(data)
    assert new.stats.stored_size == old.stats.stored_size
    assert new.streams[0].model_dump(exclude={"name"}) == old.streams[0].model_dump(
        exclude={"name"}
    )
    assert vault.verify(read_data=True).ok


def test_reuse_and_writing_mix_in_one_point(make_vault: VaultFactory) -> None:
    vault = make_vault()
    _, references = _write_and_reference(vault, {"a": LONG, "b": SHORT})
    fresh = sample_data(50_000, seed=23)
    with vault.writer(OPTIONS) as writer:
        assert writer.reuse("a", references["a"])
        writer.add_stream("c", [fresh])
        assert writer.reuse("b", references["b"])
        reference = writer.stream_reference("a")
        point_id = writer.commit()
    assert restore(vault, point_id) == {"a": LONG, "c": fresh, "b": SHORT}
    assert reference == references["a"]  # a reused stream's reference is the same content


def test_reference_to_collected_data_is_refused(make_vault: VaultFactory) -> None:
    vault = make_vault()
    first, references = _write_and_reference(vault, {"long": LONG, "short": SHORT})
    backup(vault, {"other": sample_data(10_000, seed=24)})
    vault.delete_point(first)
    vault.gc(grace=timedelta(0))
    second, accepted = _reuse(vault, references)
    assert accepted == {"long": False, "short": False}
    assert vault.point(second).streams == []


def test_reference_to_an_uncommitted_writer_is_refused(make_vault: VaultFactory) -> None:
    vault = make_vault()
    with vault.writer(OPTIONS) as writer:
        writer.add_stream("s", [LONG])
        reference = writer.stream_reference("s")
        writer.abort()
    assert reference is not None
    _, accepted = _reuse(vault, {"s": reference})
    assert accepted == {"s": False}


def _altered(reference: dict[str, Any], **changes: Any) -> dict[str, Any]:
    altered = copy.deepcopy(reference)
    altered.update(changes)
    return altered


def test_altered_or_foreign_references_are_refused(make_vault: VaultFactory) -> None:
    vault = make_vault()
    _, references = _write_and_reference(vault, {"s": LONG})
    good = references["s"]
    bad: dict[str, Any] = {
        "size": _altered(good, size=good["size"] + 1),
        "hash": _altered(good, hash="0" * 64),
        "mac": _altered(good, mac="0" * 64),
        "no mac": {key: value for key, value in good.items() if key != "mac"},
        "other vault": _altered(good, vault_id="f" * 32),
        "generation": _altered(good, generation=2),
        "version": _altered(good, version=2),
        "not an object": ["s"],
        "non-ASCII mac": _altered(good, mac="é" * 64),
    }
    _, accepted = _reuse(vault, bad)
    assert accepted == dict.fromkeys(bad, False)
    other = make_vault()
    _, accepted = _reuse(other, {"s": good})
    assert accepted == {"s": False}


def test_references_do_not_survive_a_key_rotation(make_vault: VaultFactory) -> None:
    vault = make_vault()
    _, references = _write_and_reference(vault, {"s": SHORT})
    vault.rotate_data_key()
    _, accepted = _reuse(vault, references)
    assert accepted == {"s": False}


def test_reuse_names_follow_stream_rules(make_vault: VaultFactory) -> None:
    vault = make_vault()
    _, references = _write_and_reference(vault, {"s": SHORT})
    with vault.writer(OPTIONS) as writer:
        assert writer.stream_reference("s") is None  # not in this writer
        assert writer.reuse("s", references["s"])
        with pytest.raises(ConfigError, match="already part"):
            writer.reuse("s", references["s"])
        with pytest.raises(ConfigError, match="already part"):
            writer.open_stream("s")
        with pytest.raises(ConfigError, match="invalid stream name"):
            writer.reuse("", references["s"])
        writer.abort()


class _PointReader:
    """The sources' StreamReader over one recovery point."""

    def __init__(self, reader: VaultReader) -> None:
        self._reader = reader

    def stream_names(self) -> list[str]:
        return [record.name for record in self._reader.streams()]

    def open_stream(self, name: str) -> StreamReader:
        return self._reader.open_stream(name)


def test_files_source_reuses_unchanged_files_through_the_vault(
    make_vault: VaultFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files_cache, "RACY_MARGIN_NS", 0)  # the files were just written
    tree = tmp_path / "data"
    (tree / "many").mkdir(parents=True)
    for index in range(40):
        (tree / "many" / f"file-{index:03d}").write_bytes(sample_data(50_000, seed=index))
    (tree / "large").write_bytes(sample_data(LARGE_FILE + 1, seed=99))
    source = FilesSource(
        FilesResource(type="files", paths=[str(tree)]), cache_path=tmp_path / "cache.sqlite"
    )
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    vault = make_vault()
    results = []
    for _ in range(2):
        with vault.writer(OPTIONS) as writer:
            result = source.backup(SourceContext(scratch=scratch), writer)
            results.append((result, writer.commit(metadata=result.metadata)))
    (first, _), (second, point_id) = results
    assert first.metadata["cache"]["bytes_read"] > LARGE_FILE
    assert second.metadata["cache"]["bytes_read"] == 0
    point = vault.point(point_id)
    assert point.stats.new_stored_size < 100_000  # only the tree listing may be new
    with vault.reader(point_id) as reader:
        report = source.restore(
            SourceContext(scratch=scratch),
            _PointReader(reader),
            second.metadata,
            {"path": str(tmp_path / "out")},
        )
    assert report.ok
    assert tree_state(tmp_path / "out" / str(tree).lstrip("/")) == tree_state(tree)
