"""Logical backup of one Redis server: SCAN every database, DUMP every key with its expiry.

Each round trip sends, for the keys of one SCAN reply, ``DUMP`` and ``PEXPIRETIME`` per key
plus the next ``SCAN``, so the server always has the next batch to answer while the
previous one is written: one round trip per batch of ``count`` keys, and memory bounded by
one batch. Servers before 7.0 have no ``PEXPIRETIME``: ``PTTL`` is sent instead, after a
``TIME`` at the start of the batch, and the expiry recorded is that time plus the PTTL.
The PTTL is read later than the TIME, so the recorded expiry is never later than the real
one: a restored key may expire up to one round trip early, never late.

A key deleted or expired between SCAN and DUMP is skipped and counted as ``vanished``.
Keys written during the scan may or may not be in the backup (SCAN's guarantee covers only
keys present for the whole scan): this is the known limit of a logical backup, and the
counts recorded are the counts seen.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import redis
import redis.exceptions

from strongroom.sources.base import JsonObject, SourceContext, WritableStream
from strongroom.sources.redis import records
from strongroom.sources.redis.client import Command, raw_pipe, translate

_GONE: Final = -2
"""What PEXPIRETIME and PTTL answer for a key that does not exist (any more)."""


@dataclass
class DatabaseCounts:
    """What one database's stream holds: key counts by type, expiring keys, bytes, digest."""

    keys: int = 0
    types: Counter[str] = field(default_factory=Counter)
    expiring: int = 0
    vanished: int = 0
    size: int = 0
    rdb_versions: set[int] = field(default_factory=set)
    digest: Any = field(default_factory=hashlib.sha256)

    def as_metadata(self, stream: str) -> JsonObject:
        """The counts as recorded in a recovery point's metadata."""
        return {
            "stream": stream,
            "keys": self.keys,
            "types": dict(sorted(self.types.items())),
            "expiring": self.expiring,
            "vanished": self.vanished,
            "size": self.size,
            "sha256": self.digest.hexdigest(),
        }


def _scan(cursor: bytes, pattern: str | None, count: int) -> Command:
    command: list[bytes | str | int] = ["SCAN", cursor]
    if pattern is not None:
        command += ["MATCH", pattern]
    return [*command, "COUNT", count]


def write_header(stream: WritableStream, counts: DatabaseCounts) -> None:
    """Write the magic bytes a key stream starts with."""
    stream.write(records.MAGIC)
    counts.digest.update(records.MAGIC)
    counts.size += len(records.MAGIC)


def scan_batches(
    client: redis.Redis,
    counts: DatabaseCounts,
    context: SourceContext,
    *,
    pattern: str | None = None,
    count: int = 1000,
    expiretime: bool = True,
) -> Iterator[list[records.Record]]:
    """Yield the keys of the client's database (matching ``pattern``) as batches of records.

    Counts what it yields (and what vanished) into ``counts``. Raises redis-py errors.
    """
    expiry_command = "PEXPIRETIME" if expiretime else "PTTL"

    def send_batch(scan_reply: Any) -> tuple[list[bytes], bool, int]:
        """Send DUMP and expiry of the keys of one SCAN reply, and the next SCAN."""
        if isinstance(scan_reply, redis.exceptions.ResponseError):
            raise scan_reply
        cursor, keys = scan_reply[0], scan_reply[1]
        commands: list[Command] = [] if expiretime else [["TIME"]]
        for key in keys:
            commands.append(["DUMP", key])
            commands.append([expiry_command, key])
        last = cursor == b"0"
        if not last:
            commands.append(_scan(cursor, pattern, count))
        if commands:
            pipe.send(commands)
        return keys, last, len(commands)

    with raw_pipe(client) as pipe:
        pipe.send([_scan(b"0", pattern, count)])
        keys, last, expected = send_batch(pipe.receive(1)[0])
        while True:
            context.check_cancelled()
            replies = pipe.receive(expected)
            batch_keys, batch_last = keys, last
            if not batch_last:
                # The next batch goes out before this one is handled, so the server works
                # on it while Python encodes and writes this one.
                keys, last, expected = send_batch(replies[-1])
            yield _batch(counts, batch_keys, replies, expiretime)
            if batch_last:
                return


def dump_database(
    client: redis.Redis,
    stream: WritableStream,
    context: SourceContext,
    *,
    pattern: str | None = None,
    count: int = 1000,
    expiretime: bool = True,
    doing: str = "dumping keys",
) -> DatabaseCounts:
    """Write every key of the client's database (matching ``pattern``) as records.

    Given a client selected on the database and a stream to write to; returns the counts.
    Raises typed errors (``AccessDeniedError`` naming SCAN, DUMP or PEXPIRETIME when the
    ACL user may not run it, ``NetworkError``, ``AbortedError`` when cancelled).
    """
    counts = DatabaseCounts()
    write_header(stream, counts)
    try:
        for batch in scan_batches(
            client, counts, context, pattern=pattern, count=count, expiretime=expiretime
        ):
            if not batch:
                continue
            data = b"".join(
                records.encode(record.key, record.expire_at, record.payload) for record in batch
            )
            stream.write(data)
            counts.digest.update(data)
            counts.size += len(data)
            context.progress(len(data))
    except redis.exceptions.RedisError as exc:
        raise translate(exc, doing) from exc
    return counts


def _batch(
    counts: DatabaseCounts,
    keys: Sequence[bytes],
    replies: Sequence[Any],
    expiretime: bool,
) -> list[records.Record]:
    offset = 0
    now_ms = 0
    if not expiretime:
        if isinstance(replies[0], Exception):
            raise replies[0]
        seconds, microseconds = replies[0]
        now_ms = int(seconds) * 1000 + int(microseconds) // 1000
        offset = 1
    batch: list[records.Record] = []
    for index, key in enumerate(keys):
        payload = replies[offset + 2 * index]
        expiry = replies[offset + 2 * index + 1]
        for reply in (payload, expiry):
            if isinstance(reply, redis.exceptions.ResponseError):
                raise reply
        if payload is None or expiry == _GONE:
            counts.vanished += 1
            continue
        if expiry < 0:
            expire_at = records.NO_EXPIRY
        else:
            expire_at = expiry if expiretime else now_ms + expiry
            counts.expiring += 1
        counts.keys += 1
        counts.types[records.payload_type(payload)] += 1
        batch.append(records.Record(key, expire_at, payload))
    if batch:  # one server writes one payload version: a key per batch tells it
        counts.rdb_versions.add(records.payload_version(batch[0].payload))
    return batch
