"""Restores and restore tests of Redis recovery points.

* A logical point is restored key by key into a live server (:func:`restore_logical`):
  without ``replace`` every target database that holds keys is first checked for the
  keys to restore, and the restore is refused before anything is written; then the
  function libraries (``FUNCTION RESTORE``), then the keys (``RESTORE … ABSTTL``).
* A snapshot point is either placed as ``dump.rdb`` for a cold start (:func:`place_rdb`),
  or loaded by a scratch server and copied from it key by key into a live server
  (:func:`restore_snapshot_live`).
* A restore test (:func:`test_logical`, :func:`test_snapshot`) restores into a scratch
  server strongroom starts on a free port, compares, and stops it.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from strongroom.errors import ConfigError, ConflictError, IntegrityError
from strongroom.sources.base import Check, JsonObject, RestoreReport, SourceContext, StreamReader
from strongroom.sources.redis import facts, records
from strongroom.sources.redis.backup import FUNCTIONS_STREAM
from strongroom.sources.redis.client import RedisServer, translating
from strongroom.sources.redis.compare import compare_keys
from strongroom.sources.redis.logical import DatabaseCounts, scan_batches
from strongroom.sources.redis.rdb import RdbCheck
from strongroom.sources.redis.restore import (
    LoadCounts,
    Versions,
    find_existing,
    load_records,
    refuse_existing,
    restore_functions,
    server_version,
)
from strongroom.sources.redis.scratch import DUMP_FILE, scratch_server
from strongroom.sources.redis.target import RedisRestoreTarget
from strongroom.sources.tool_streams import CheckedBlocks, read_whole


def _stream_records(
    reader: StreamReader, entry: JsonObject
) -> tuple[CheckedBlocks, Iterator[records.Record]]:
    blocks = CheckedBlocks(reader, entry["stream"], entry)
    return blocks, records.decode(blocks, entry["stream"])


def _library_names(server: RedisServer) -> set[str]:
    with server.client() as client, translating(f"listing functions on {server.address}"):
        return {
            str(entry.get("library_name", entry.get(b"library_name", b"")), "utf-8")
            if isinstance(entry.get("library_name", entry.get(b"library_name")), bytes)
            else str(entry.get("library_name"))
            for entry in (_as_dict(item) for item in client.function_list())
        }


def _as_dict(item: Any) -> dict[Any, Any]:
    if isinstance(item, dict):
        return item
    fields = list(item)
    return {
        (key.decode() if isinstance(key, bytes) else key): value
        for key, value in zip(fields[::2], fields[1::2], strict=True)
    }


def restore_logical(
    reader: StreamReader,
    metadata: JsonObject,
    options: RedisRestoreTarget,
    server: RedisServer,
    context: SourceContext,
    report: RestoreReport,
) -> dict[int, LoadCounts]:
    """Restore a logical point into ``server``; add checks to ``report``.

    Returns what was restored (and skipped as expired) per backed-up database. Raises ``ConflictError`` (nothing
    written) when the target holds keys or libraries to restore and ``replace`` is off,
    ``ConfigError`` for a database mapping that collides, the errors of
    :func:`strongroom.sources.redis.restore.load_records`.
    """
    entries: dict[str, JsonObject] = metadata["databases"]
    try:
        numbers = options.selected_from(sorted(int(number) for number in entries))
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    keep = options.key_matcher()
    with server.client() as client, translating(f"reading {server.address}"):
        versions = Versions(source=metadata["server"]["version"], target=server_version(client))
    functions: JsonObject | None = metadata.get("functions") if options.functions else None
    if not options.replace:
        _refuse_conflicts(reader, entries, numbers, options, server, context)
        if functions:
            taken = _library_names(server) & set(functions["libraries"])
            if taken:
                raise ConflictError(
                    f"{server.address} already has the function libraries "
                    f"{', '.join(sorted(taken))}; nothing was written",
                    hint="Set replace: true to replace them, or functions: false.",
                    retryable=False,
                )
    if functions:
        payload = read_whole(reader, FUNCTIONS_STREAM, functions)
        with server.client() as client:
            restore_functions(
                client,
                payload,
                replace=options.replace,
                versions=versions,
                doing=f"restoring functions on {server.address}",
            )
        report.notes.append(f"function libraries restored: {', '.join(functions['libraries'])}")
    restored: dict[int, LoadCounts] = {}
    for number in numbers:
        entry = entries[str(number)]
        target_number = options.target_database(number)
        blocks, stream = _stream_records(reader, entry)
        with server.client(target_number) as client:
            counts = load_records(
                client,
                stream,
                context,
                replace=options.replace,
                versions=versions,
                doing=f"restoring database {number} into {target_number} of {server.address}",
                keep=keep,
            )
        report.checks.append(blocks.check())
        if options.key_pattern is None:
            report.checks.append(
                Check(
                    f"db {number} keys restored or expired",
                    entry["keys"],
                    counts.restored + counts.expired,
                )
            )
        report.notes.append(
            f"db {number} -> {target_number}: {counts.restored} keys restored, "
            f"{counts.expired} skipped as expired"
        )
        restored[number] = counts
    return restored


def _refuse_conflicts(
    reader: StreamReader,
    entries: dict[str, JsonObject],
    numbers: list[int],
    options: RedisRestoreTarget,
    server: RedisServer,
    context: SourceContext,
) -> None:
    keep = options.key_matcher()
    for number in numbers:
        target_number = options.target_database(number)
        with server.client(target_number) as client:
            with translating(f"reading {server.address}"):
                if not client.dbsize():
                    continue
            _, stream = _stream_records(reader, entries[str(number)])
            found, shown = find_existing(
                client,
                (record for record in stream if keep(record.key)),
                f"checking database {target_number} of {server.address}",
                context,
            )
            refuse_existing(found, shown, f"database {target_number} of {server.address}")


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
            retryable=False,
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
    spooled = Path(context.scratch) / f"restore-{os.getpid()}.rdb"
    report = spool_rdb(reader, metadata, spooled, context)
    report.target = f"redis://{server.address}"
    with scratch_server(context, rdb=spooled) as scratch:
        with scratch.client() as client:
            keyspace = facts.read_keyspace(client, "reading the scratch server")
        entries = {number: {"keys": keys} for number, keys in keyspace.items()}
        numbers = options.selected_from(sorted(int(number) for number in entries))
        keep = options.key_matcher()
        with server.client() as client, translating(f"reading {server.address}"):
            versions = Versions(source=metadata["server"]["version"], target=server_version(client))
        if not options.replace:
            for number in numbers:
                with (
                    scratch.client(number) as source,
                    server.client(options.target_database(number)) as target,
                ):
                    with translating(f"reading {server.address}"):
                        if not target.dbsize():
                            continue
                    found, shown = find_existing(
                        target,
                        (r for r in _scratch_records(source, context) if keep(r.key)),
                        f"checking {server.address}",
                        context,
                    )
                    refuse_existing(
                        found,
                        shown,
                        f"database {options.target_database(number)} of {server.address}",
                    )
        for number in numbers:
            target_number = options.target_database(number)
            with scratch.client(number) as source, server.client(target_number) as target:
                counts = load_records(
                    target,
                    _scratch_records(source, context),
                    context,
                    replace=options.replace,
                    versions=versions,
                    doing=f"restoring database {number} into {target_number} of {server.address}",
                    keep=keep,
                )
            report.notes.append(
                f"db {number} -> {target_number}: {counts.restored} keys restored, "
                f"{counts.expired} skipped as expired"
            )
    return report


def _scratch_records(client: Any, context: SourceContext) -> Iterator[records.Record]:
    counts = DatabaseCounts()
    with translating("reading the scratch server"):
        for batch in scan_batches(client, counts, context):
            yield from batch


def test_logical(
    reader: StreamReader,
    metadata: JsonObject,
    context: SourceContext,
    *,
    sample: int,
    tolerance_ms: int,
) -> RestoreReport:
    """Restore a logical point into a scratch server and compare it key by key."""
    with scratch_server(context) as scratch:
        report = RestoreReport(target=f"scratch redis-server on {scratch.address}")
        try:
            restored = restore_logical(
                reader, metadata, RedisRestoreTarget(), scratch, context, report
            )
        except IntegrityError as exc:
            # A damaged stream or payload is the finding of the test, naming the key.
            report.checks.append(Check(f"restore: {exc}", "restored", "refused"))
            return report
        for number, counts in restored.items():
            entry = metadata["databases"][str(number)]
            expected = Counter(entry["types"])
            expected.subtract(counts.expired_types)
            with scratch.client(number) as client:
                found = facts.count_types(client, "counting restored keys")
                report.checks.append(
                    Check(
                        f"db {number} keys by type",
                        dict(sorted((+expected).items())),
                        dict(sorted(found.items())),
                    )
                )
                _, stream = _stream_records(reader, entry)
                comparison = compare_keys(
                    client, stream, database=number, tolerance_ms=tolerance_ms, sample=sample
                )
            report.checks.extend(comparison.failures)
            report.checks.append(
                Check(
                    f"db {number} keys differing",
                    0,
                    len(comparison.failures) + comparison.more_failures,
                )
            )
            report.notes.append(f"db {number}: {comparison.compared} keys compared")
        functions = metadata.get("functions")
        if functions:
            names = _library_names(scratch)
            report.checks.append(
                Check("function libraries", sorted(functions["libraries"]), sorted(names))
            )
    return report


def test_snapshot(
    reader: StreamReader, metadata: JsonObject, context: SourceContext
) -> RestoreReport:
    """Load the RDB into a scratch server; compare key counts with those seen at backup."""
    spooled = Path(context.scratch) / f"test-{os.getpid()}.rdb"
    report = spool_rdb(reader, metadata, spooled, context)
    with scratch_server(context, rdb=spooled) as scratch:
        report.target = f"scratch redis-server on {scratch.address}"
        with scratch.client() as client:
            loaded = facts.read_keyspace(client, "reading the scratch server")
        before: dict[str, int] = metadata["keyspace_before"]
        after: dict[str, int] = metadata["keyspace_after"]
        for number in sorted({*before, *after, *loaded}, key=int):
            low, high = sorted((before.get(number, 0), after.get(number, 0)))
            found = loaded.get(number, 0)
            if low == high:
                report.checks.append(Check(f"db {number} keys", low, found))
            else:
                # Keys were written during the snapshot: the RDB holds a count in between.
                report.checks.append(
                    Check(f"db {number} keys within {low}..{high}", True, low <= found <= high)
                )
            with scratch.client(int(number)) as client:
                types = facts.count_types(client, "counting loaded keys")
            report.notes.append(f"db {number}: {found} keys loaded ({dict(sorted(types.items()))})")
    return report
