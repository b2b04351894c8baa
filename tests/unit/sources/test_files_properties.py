"""Properties of the files source: random trees round-trip; recorded paths never escape."""

from __future__ import annotations

import json
import os
import posixpath
import tempfile
from pathlib import Path
from typing import Union

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strongroom.config.resources import FilesResource
from strongroom.errors import IntegrityError
from strongroom.sources.base import SourceContext
from strongroom.sources.files import FilesSource
from strongroom.sources.files_index import IndexEntry, check_recorded_path, dump_line
from tests.unit.sources.fakes import MemoryReader, MemorySink, tree_state

Tree = dict[str, Union[bytes, str, "Tree"]]  # bytes: a file, str: a symlink's text

names = st.text(alphabet=st.sampled_from("abcXYZ019 .-_éü日本☕"), min_size=1, max_size=8).filter(
    lambda name: name not in (".", "..")
)
leaves = st.one_of(st.binary(max_size=2000), st.sampled_from(["target", "../up", "/abs/x"]))
trees: st.SearchStrategy[Tree] = st.recursive(
    st.dictionaries(names, leaves, max_size=4),
    lambda children: st.dictionaries(names, st.one_of(leaves, children), max_size=4),
    max_leaves=12,
)


def build(folder: Path, tree: Tree) -> None:
    for name, value in tree.items():
        path = folder / name
        if isinstance(value, bytes):
            path.write_bytes(value)
        elif isinstance(value, str):
            path.symlink_to(value)
        else:
            path.mkdir()
            build(path, value)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=trees)
def test_random_trees_round_trip(tree: Tree) -> None:
    with tempfile.TemporaryDirectory() as temporary:
        base = Path(temporary)
        root, scratch, out = base / "root", base / "scratch", base / "out"
        for folder in (root, scratch):
            folder.mkdir()
        build(root, tree)
        source = FilesSource(FilesResource(type="files", paths=[str(root)]))
        sink = MemorySink()
        result = source.backup(SourceContext(scratch=scratch), sink)

        report = source.restore(
            SourceContext(scratch=scratch),
            MemoryReader(sink.streams),
            result.metadata,
            {"path": str(out)},
        )
        test = source.restore_test(
            SourceContext(scratch=scratch), MemoryReader(sink.streams), result.metadata
        )

        assert report.ok and test.ok, (report.failures, test.failures)
        assert tree_state(out / str(root).lstrip("/")) == tree_state(root)
        assert list(scratch.iterdir()) == []


@given(path=st.text(alphabet=st.sampled_from("ab./\x00"), max_size=12))
def test_accepted_recorded_paths_stay_below_the_target(path: str) -> None:
    try:
        parts = check_recorded_path(path)
    except IntegrityError:
        return
    joined = posixpath.normpath(posixpath.join("/target", *parts))
    assert joined.startswith("/target/")
    assert "/".join(parts) == path


@given(
    raw=st.binary(min_size=1, max_size=40).filter(lambda raw: b"/" not in raw and b"\0" not in raw)
)
def test_index_lines_round_trip_any_file_name(raw: bytes) -> None:
    name = os.fsdecode(raw)  # any bytes a file system may hold, as Python names them
    entry = IndexEntry(path=f"dir/{name}", type="symlink", mode=0o777, mtime_ns=1, target=name)
    parsed = IndexEntry.model_validate(json.loads(dump_line(entry.record())))
    assert parsed == entry
    assert os.fsencode(parsed.path) == b"dir/" + raw


def test_names_that_are_not_utf8_round_trip_through_the_index() -> None:
    name = os.fsdecode(b"caf\xe9")
    entry = IndexEntry(path=name, type="symlink", mode=0o777, mtime_ns=1, target=name)
    line = dump_line(entry.record())
    assert b"\\udce9" in line
    assert IndexEntry.model_validate(json.loads(line)) == entry
