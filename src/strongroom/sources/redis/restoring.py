"""Restores of Redis recovery points.

* A logical or cluster point is restored key by key into a live server or cluster
  (:func:`restore_logical`): without ``replace`` the target is first checked and the
  restore refused before anything is written; then the function libraries (``FUNCTION
  RESTORE``), then the keys (``RESTORE … ABSTTL``), see :mod:`strongroom.sources.redis.live`.
* A snapshot point is either placed as ``dump.rdb`` for a cold start (:func:`place_rdb`),
  or loaded by a scratch server and copied from it key by key into a live target
  (:func:`restore_snapshot_live`).

Restore tests: :mod:`strongroom.sources.redis.testing`.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from strongroom.errors import ConfigError, ConflictError, IntegrityError
from strongroom.sources.base import Check, JsonObject, RestoreReport, SourceContext, StreamReader
from strongroom.sources.redis import facts, records
from strongroom.sources.redis.backup import FUNCTIONS_STREAM, stream_parts
from strongroom.sources.redis.client import RedisServer, translating
from strongroom.sources.redis.live import (
    KeySource,
    LiveServer,
    load_databases,
    load_functions,
    refuse_taken_libraries,
)
from strongroom.sources.redis.logical import DatabaseCounts, scan_batches
from strongroom.sources.redis.rdb import RdbCheck
from strongroom.sources.redis.restore import LoadCounts, Versions
from strongroom.sources.redis.scratch import DUMP_FILE, scratch_server
from strongroom.sources.redis.target import RedisRestoreTarget
from strongroom.sources.tool_streams import CheckedBlocks, read_whole


class StreamKeys:
    """The records of one database entry (its streams in order), with their digests."""

    def __init__(self, reader: StreamReader, entry: JsonObject) -> None:
        self.reader = reader
        self.parts = stream_parts(entry)
        self.blocks: list[CheckedBlocks] = []

    def __call__(self) -> Iterator[records.Record]:
        """A fresh pass over every record (the digests are of the latest pass)."""
        self.blocks = [CheckedBlocks(self.reader, part["stream"], part) for part in self.parts]
        return itertools.chain.from_iterable(
            records.decode(blocks, blocks.name) for blocks in self.blocks
        )

    def checks(self) -> list[Check]:
        """The SHA-256 of every stream as recorded and as read in the latest pass."""
        return [blocks.check() for blocks in self.blocks]


def key_sources(reader: StreamReader, metadata: JsonObject, numbers: list[int]) -> list[KeySource]:
    """One key source per selected database of a logical or cluster point."""
    entries: dict[str, JsonObject] = metadata["databases"]
    sources: list[KeySource] = []
    for number in numbers:
        keys = StreamKeys(reader, entries[str(number)])
        sources.append(KeySource(number, keys, entries[str(number)]["keys"], keys.checks))
    return sources


def _selected(options: RedisRestoreTarget, numbers: list[int]) -> list[int]:
    try:
        return options.selected_from(numbers)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def restore_logical(
    reader: StreamReader,
    metadata: JsonObject,
    options: RedisRestoreTarget,
    server: RedisServer,
    context: SourceContext,
    report: RestoreReport,
) -> dict[int, LoadCounts]:
    """Restore a logical or cluster point into ``server``; add checks to ``report``.

    Returns what was restored (and skipped as expired) per backed-up database. Raises
    ``ConflictError`` (nothing written) when the target holds keys or libraries to
    restore and ``replace`` is off, ``ConfigError`` for a database mapping that collides
    or a database a cluster does not have, the errors of ``load_records``.
    """
    live = LiveServer(server)
    numbers = _selected(options, sorted(int(number) for number in metadata["databases"]))
    versions = Versions(source=metadata["server"]["version"], target=live.version)
    functions: JsonObject | None = metadata.get("functions") if options.functions else None
    if functions and not options.replace:
        refuse_taken_libraries(live, functions["libraries"])

    def restore_libraries() -> None:
        if functions:
            payload = read_whole(reader, FUNCTIONS_STREAM, functions)
            load_functions(
                live, payload, functions["libraries"], replace=options.replace, versions=versions
            )
            report.notes.append(f"function libraries restored: {', '.join(functions['libraries'])}")

    return load_databases(
        key_sources(reader, metadata, numbers),
        options,
        live,
        context,
        report,
        versions,
        before_load=restore_libraries,
    )


def spool_rdb(
    reader: StreamReader, metadata: JsonObject, path: Path, context: SourceContext
) -> RestoreReport:
    """Write the point's RDB to ``path``, checked (CRC64 and SHA-256); return the checks."""
    entry: JsonObject = metadata["rdb"]
    check = RdbCheck(name=f"the RDB of stream {entry['stream']}")
    digest = hashlib.sha256()
    report = RestoreReport(target=str(path))
    with reader.open_stream(entry["stream"]) as stream, path.open("xb") as out:
        while block := stream.read(1024 * 1024):
            context.check_cancelled()
            check.feed(block)
            digest.update(block)
            out.write(block)
            context.progress(len(block))
        out.flush()
        os.fsync(out.fileno())
    found = check.finish()
    report.checks.append(Check("rdb sha256", entry["sha256"], digest.hexdigest()))
    report.checks.append(Check("rdb crc64", entry["crc64"], found.crc64))
    return report


def place_rdb(
    reader: StreamReader, metadata: JsonObject, folder: Path, context: SourceContext
) -> RestoreReport:
    """Place the RDB as ``folder/dump.rdb`` for a new server's cold start.

    Refuses (``ConflictError``) when ``dump.rdb`` exists there; a damaged RDB is removed
    again (``IntegrityError``), never left in place.
    """
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / DUMP_FILE
    if final.exists():
        raise ConflictError(
            f"{final} exists; nothing was written",
            hint="Place the RDB into an empty folder, or move the existing file away.",
        )
    partial = folder / f".{DUMP_FILE}.partial"
    partial.unlink(missing_ok=True)
    try:
        report = spool_rdb(reader, metadata, partial, context)
        if not report.ok:
            raise IntegrityError(f"the RDB read back does not match the backup: {report.failures}")
        os.link(partial, final)
    finally:
        partial.unlink(missing_ok=True)
    report.target = str(final)
    report.notes.append(
        f"start a redis-server {metadata['server']['version']} (or later) with dir {folder} "
        f"and dbfilename {DUMP_FILE}"
    )
    return report


def restore_snapshot_live(
    reader: StreamReader,
    metadata: JsonObject,
    options: RedisRestoreTarget,
    server: RedisServer,
    context: SourceContext,
) -> RestoreReport:
    """Load the RDB in a scratch server and copy its keys into ``server`` (a live one)."""
    live = LiveServer(server)
    spooled = Path(context.scratch) / f"restore-{os.getpid()}.rdb"
    report = spool_rdb(reader, metadata, spooled, context)
    report.target = f"redis://{live.address}"
    with scratch_server(context, rdb=spooled) as scratch:
        with scratch.client() as client:
            keyspace = facts.read_keyspace(client, "reading the scratch server")
        numbers = _selected(options, sorted(int(number) for number in keyspace))
        sources = [
            KeySource(number, _scratch_keys(scratch, number, context), keyspace[str(number)])
            for number in numbers
        ]
        versions = Versions(source=metadata["server"]["version"], target=live.version)
        load_databases(sources, options, live, context, report, versions)
    return report


def _scratch_keys(scratch: RedisServer, number: int, context: SourceContext) -> Any:
    def open_keys() -> Iterator[records.Record]:
        with scratch.client(number) as client, translating("reading the scratch server"):
            for batch in scan_batches(client, DatabaseCounts(), context):
                yield from batch

    return open_keys
