"""A files restore never writes outside its target, and never restores damaged data."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from strongroom.config.resources import FilesResource
from strongroom.errors import ConflictError, IntegrityError
from strongroom.sources.base import JsonObject, SourceContext
from strongroom.sources.files.source import FilesSource
from tests.support.source_fakes import MemoryReader, MemorySink

CONTENT = b"planted by a malicious index"
SHA = hashlib.sha256(CONTENT).hexdigest()


def file_entry(path: str) -> JsonObject:
    return {
        "path": path,
        "type": "file",
        "mode": 0o644,
        "mtime_ns": 1,
        "size": len(CONTENT),
        "sha256": SHA,
        "stream": "content/000001",
        "offset": 0,
    }


def dir_entry(path: str) -> JsonObject:
    return {"path": path, "type": "dir", "mode": 0o755, "mtime_ns": 1}


def crafted(entries: list[JsonObject]) -> tuple[dict[str, bytes], JsonObject]:
    """Streams and metadata of a recovery point whose index holds ``entries``."""
    lines = [{"format": "strongroom-files", "version": 1, "roots": ["/r"]}, *entries]
    index = "".join(json.dumps(line) + "\n" for line in lines).encode()
    streams = {"files.index": index, "content/000001": CONTENT}
    return streams, {"roots": ["/r"], "index_sha256": hashlib.sha256(index).hexdigest()}


@pytest.fixture
def layout(tmp_path: Path) -> dict[str, Path]:
    paths = {name: tmp_path / name for name in ("target", "outside", "scratch")}
    for path in paths.values():
        path.mkdir()
    return paths


def source() -> FilesSource:
    return FilesSource(FilesResource(type="files", paths=["/r"]))


def restore(layout: dict[str, Path], entries: list[JsonObject], **options: object) -> None:
    streams, metadata = crafted(entries)
    source().restore(
        SourceContext(scratch=layout["scratch"]),
        MemoryReader(streams),
        metadata,
        {"path": str(layout["target"]), **options},
    )


@pytest.mark.parametrize(
    "path", ["../x", "a/../../x", "/etc/x", "a//b", "./a", "a/.", "", "a/\x00b"]
)
def test_unsafe_recorded_paths_are_refused_before_anything_is_written(
    layout: dict[str, Path], path: str
) -> None:
    entries = [dir_entry("a"), file_entry("a/fine"), file_entry(path)]
    with pytest.raises(IntegrityError, match="refusing"):
        restore(layout, entries)
    assert list(layout["target"].iterdir()) == []
    assert list(layout["outside"].iterdir()) == []


def test_a_recorded_symlink_cannot_be_the_parent_of_a_later_entry(layout: dict[str, Path]) -> None:
    entries = [
        {
            "path": "a",
            "type": "symlink",
            "mode": 0o777,
            "mtime_ns": 1,
            "target": str(layout["outside"]),
        },
        file_entry("a/evil"),
    ]
    with pytest.raises(IntegrityError, match="lies under 'a', which is a symlink"):
        restore(layout, entries)
    assert list(layout["outside"].iterdir()) == []
    assert list(layout["target"].iterdir()) == []


@pytest.mark.parametrize("depth", [1, 2])
def test_a_symlink_recorded_after_entries_below_it_still_refuses_later_ones(
    layout: dict[str, Path], depth: int
) -> None:
    # Folders already seen clear are not checked again; a non-folder recorded at one of
    # them afterwards must make the entries below it checked (and refused) once more.
    link = "/".join(["a", "b"][:depth])
    folders = [dir_entry("a")] if depth == 2 else []  # parents need not be recorded
    entries = [
        *folders,
        file_entry("a/b/fine"),
        file_entry("a/b/also-fine"),
        {"path": link, "type": "symlink", "mode": 0o777, "mtime_ns": 1, "target": "/"},
        file_entry("a/b/evil"),
    ]
    with pytest.raises(IntegrityError, match=f"lies under '{link}', which is a symlink"):
        restore(layout, entries)
    assert list(layout["target"].iterdir()) == []


def test_a_symlink_already_in_the_target_is_never_followed(layout: dict[str, Path]) -> None:
    (layout["target"] / "a").symlink_to(layout["outside"])
    with pytest.raises(ConflictError, match="already exist"):
        restore(layout, [dir_entry("a"), file_entry("a/evil")])
    assert list(layout["outside"].iterdir()) == []

    restore(layout, [dir_entry("a"), file_entry("a/evil")], overwrite=True)
    assert list(layout["outside"].iterdir()) == []
    assert not (layout["target"] / "a").is_symlink()
    assert (layout["target"] / "a" / "evil").read_bytes() == CONTENT


def test_a_symlinked_folder_above_recorded_entries_is_refused(layout: dict[str, Path]) -> None:
    (layout["target"] / "x").symlink_to(layout["outside"])
    with pytest.raises(ConflictError, match="refusing to restore through 'x'"):
        restore(layout, [file_entry("x/y/evil")], overwrite=True)
    assert list(layout["outside"].iterdir()) == []


def test_symlinks_pointing_outside_are_restored_as_links_only(layout: dict[str, Path]) -> None:
    victim = layout["outside"] / "victim"
    victim.write_bytes(b"untouched")
    entries = [
        {"path": "link", "type": "symlink", "mode": 0o777, "mtime_ns": 1, "target": str(victim)}
    ]
    restore(layout, entries)
    assert (layout["target"] / "link").readlink() == victim
    assert victim.read_bytes() == b"untouched"


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (
            [file_entry("a"), {"path": "b", "type": "hardlink", "link_to": "../../etc/passwd"}],
            "hard link must name an earlier file",
        ),
        (
            [{"path": "b", "type": "hardlink", "link_to": "a"}, file_entry("a")],
            "hard link must name an earlier file",
        ),
        ([file_entry("a"), file_entry("a")], "recorded twice"),
        ([{**file_entry("a"), "sha256": None}], "needs stream, offset, size and sha256"),
        ([{**file_entry("a"), "mode": 0o170000}], "mode or mtime"),
        ([{**file_entry("a"), "unknown": 1}], "not a valid entry"),
    ],
)
def test_inconsistent_entries_are_refused(
    layout: dict[str, Path], entries: list[JsonObject], message: str
) -> None:
    with pytest.raises(IntegrityError, match=message):
        restore(layout, entries)
    assert list(layout["target"].iterdir()) == []


def test_original_restore_refuses_paths_outside_the_roots(layout: dict[str, Path]) -> None:
    streams, metadata = crafted([file_entry("etc/cron.d/evil")])
    with pytest.raises(IntegrityError, match="under none of the recorded roots"):
        source().restore(
            SourceContext(scratch=layout["scratch"]),
            MemoryReader(streams),
            metadata,
            {"original": True},
        )


def test_restore_test_reports_an_unsafe_index_and_cleans_up(layout: dict[str, Path]) -> None:
    streams, metadata = crafted([file_entry("../escape")])
    report = source().restore_test(
        SourceContext(scratch=layout["scratch"]), MemoryReader(streams), metadata
    )
    assert not report.ok
    assert [check.name for check in report.failures] == ["index is safe to restore"]
    assert list(layout["scratch"].iterdir()) == []
    assert list(layout["outside"].iterdir()) == []


def backed_up(tmp_path: Path) -> tuple[FilesSource, MemorySink, JsonObject, Path]:
    root = tmp_path / "data"
    root.mkdir()
    for name in ("a.txt", "b.txt", "c.txt"):
        (root / name).write_text(f"content of {name}\n")
    files = FilesSource(FilesResource(type="files", paths=[str(root)]))
    sink = MemorySink()
    result = files.backup(SourceContext(scratch=tmp_path), sink)
    return files, sink, result.metadata, root


def test_a_tampered_content_stream_fails_the_restore_test_naming_the_file(tmp_path: Path) -> None:
    files, sink, metadata, root = backed_up(tmp_path)
    streams = dict(sink.streams)
    damaged = bytearray(streams["content/000001"])
    damaged[len("content of a.txt\n") + 3] ^= 0x01  # inside b.txt
    streams["content/000001"] = bytes(damaged)

    report = files.restore_test(SourceContext(scratch=tmp_path), MemoryReader(streams), metadata)

    b_path = str(root / "b.txt").lstrip("/")
    failures = {check.name: check for check in report.failures}
    assert not report.ok
    assert failures[f"restore of {b_path}"].actual.startswith("content damaged")
    assert failures["missing paths"].actual == [b_path]
    assert f"restore of {str(root / 'a.txt').lstrip('/')}" not in failures


def test_a_damaged_file_is_not_put_in_place_but_the_others_are(tmp_path: Path) -> None:
    files, sink, metadata, root = backed_up(tmp_path)
    streams = dict(sink.streams)
    streams["content/000001"] = streams["content/000001"][:-2]  # truncates c.txt
    out = tmp_path / "out"

    report = files.restore(
        SourceContext(scratch=tmp_path), MemoryReader(streams), metadata, {"path": str(out)}
    )

    restored = out / str(root).lstrip("/")
    assert not report.ok
    assert sorted(path.name for path in restored.iterdir()) == ["a.txt", "b.txt"]


def test_a_tampered_index_is_never_restored(tmp_path: Path) -> None:
    files, sink, metadata, _root = backed_up(tmp_path)
    streams = dict(sink.streams)
    streams["files.index"] = streams["files.index"].replace(b'"mode":420', b'"mode":511', 1)

    report = files.restore_test(SourceContext(scratch=tmp_path), MemoryReader(streams), metadata)
    assert [check.name for check in report.failures] == ["index sha256"]
    with pytest.raises(IntegrityError, match="does not match the SHA-256"):
        files.restore(
            SourceContext(scratch=tmp_path),
            MemoryReader(streams),
            metadata,
            {"path": str(tmp_path / "out")},
        )
    assert not (tmp_path / "out").exists()


def test_recorded_metadata_that_disagrees_fails_field_by_field(tmp_path: Path) -> None:
    files, sink, metadata, _root = backed_up(tmp_path)
    wrong = {**metadata, "counts": {**metadata["counts"], "files": 4}, "tree_digest": "0" * 64}
    report = files.restore_test(SourceContext(scratch=tmp_path), MemoryReader(sink.streams), wrong)
    assert sorted(check.name for check in report.failures) == ["count of files", "tree digest"]


def test_a_file_that_appears_after_the_check_is_never_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from strongroom.sources.files import restore as files_restore

    files, sink, metadata, root = backed_up(tmp_path)
    out = tmp_path / "out"
    planted = out / str(root).lstrip("/") / "b.txt"
    real_restore = files_restore.Restorer.restore

    def plant_then_restore(self: files_restore.Restorer, entries: Any) -> Any:
        planted.parent.mkdir(parents=True, exist_ok=True)
        planted.write_text("someone else's")  # after the check found the way clear
        return real_restore(self, entries)

    monkeypatch.setattr(files_restore.Restorer, "restore", plant_then_restore)
    with pytest.raises(ConflictError, match="appeared in the target meanwhile"):
        files.restore(
            SourceContext(scratch=tmp_path),
            MemoryReader(sink.streams),
            metadata,
            {"path": str(out)},
        )
    assert planted.read_text() == "someone else's"
    assert not [path for path in planted.parent.iterdir() if ".strongroom-" in path.name]
