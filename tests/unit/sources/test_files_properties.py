"""Properties of the files source: random trees round-trip; recorded paths never escape."""

from __future__ import annotations

import json
import os
import posixpath
import tempfile
from pathlib import Path
from typing import Any, Literal, Union

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strongroom.config.resources import FilesResource
from strongroom.errors import IntegrityError
from strongroom.sources.base import SourceContext
from strongroom.sources.files.index import (
    IndexEntry,
    canonical,
    check_recorded_path,
    dump_line,
    entry_lines,
)
from strongroom.sources.files.source import FilesSource
from strongroom.sources.files.walk import WalkItem, encode_xattrs, record_of
from tests.support.source_fakes import MemoryReader, MemorySink, tree_state

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


json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False),
        st.text(),
        st.binary().map(os.fsdecode),  # surrogate escapes, as names that are not UTF-8
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(), children, max_size=3)
    ),
    max_leaves=10,
)


record_keys = st.one_of(
    st.sampled_from(["gid", "group", "offset", "path", "stream", "type", "uid", "user"]),
    st.text(),
)


@given(record=st.dictionaries(record_keys, json_values, max_size=8))
def test_index_and_digest_lines_are_canonical_json(record: dict[str, object]) -> None:
    # Both are encoded by hand for speed; their bytes must stay json.dumps' exactly, or
    # the tree digests of earlier recovery points would no longer match.
    expected = json.dumps(record, sort_keys=True, separators=(",", ":")).encode("ascii")
    assert dump_line(record) == expected + b"\n"
    assert entry_lines(record) == (dump_line(record), canonical(record))


@given(
    kind=st.sampled_from(["dir", "file", "symlink"]),
    xattrs=st.dictionaries(st.sampled_from(["user.a", "user.b"]), st.binary(max_size=8)),
    located=st.booleans(),
)
def test_records_of_walk_items_are_valid_index_entries(
    kind: Literal["dir", "file", "symlink"], xattrs: dict[str, bytes], located: bool
) -> None:
    status = os.stat_result((0o100644, 7, 3, 1, 0, 0, 5, 1, 2, 3, 1, 2, 3, 1_000, 2_000, 3_000))
    target = "elsewhere" if kind == "symlink" else None
    item = WalkItem("dir/name", "/dir/name", kind, status, target, xattrs)
    location: dict[str, Any] = (
        {"size": 5, "sha256": "00" * 32, "stream": "content/000001", "offset": 0} if located else {}
    )
    record = record_of(item, **location)
    assert IndexEntry.model_validate(record).record() == record
    assert record.get("xattrs") == encode_xattrs(xattrs)
    assert record_of(item, xattrs={"user.c": "AA=="}, **location)["xattrs"] == {"user.c": "AA=="}
