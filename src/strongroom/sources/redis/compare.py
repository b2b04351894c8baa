"""The restore test's key-by-key comparison: restored keys against the backed-up records.

For every record (or every ``sample``-th) the scratch server is asked ``DUMP`` and
``PEXPIRETIME`` of the key, pipelined: the value must serialise to the same bytes as the
recorded payload, and the expiry must be within ``tolerance_ms`` of the recorded one
(none for a key without). Values in hash tables (large sets and hashes) serialise in an
order that differs between processes, so where the bytes differ the recorded payload is
restored under a scratch key and the server's ``DEBUG DIGEST-VALUE`` (a digest of the
value, whatever its encoding and order) of both keys must be equal. A key whose recorded expiry has passed may be missing. Each
difference is a failed check naming the key; at most ``MAX_FAILURES`` are listed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

import redis
import redis.exceptions

from strongroom.sources.base import Check
from strongroom.sources.redis import records
from strongroom.sources.redis.client import Command, pipeline, translate
from strongroom.sources.redis.restore import batches, server_now_ms, show_key

MAX_FAILURES: Final = 20
_GONE: Final = -2
_PROBE: Final = b"\x00strongroom:compare-probe\x00"
"""The scratch key a recorded payload is restored under to compare digests."""


@dataclass
class Comparison:
    """What the comparison of one database found."""

    compared: int = 0
    failures: list[Check] = field(default_factory=list)
    more_failures: int = 0

    def fail(self, check: Check) -> None:
        """Record a failed check (counted only beyond ``MAX_FAILURES``)."""
        if len(self.failures) < MAX_FAILURES:
            self.failures.append(check)
        else:
            self.more_failures += 1


def compare_keys(
    client: redis.Redis,
    stream: Iterable[records.Record],
    *,
    database: int,
    tolerance_ms: int = 1000,
    sample: int = 1,
    doing: str = "comparing restored keys",
) -> Comparison:
    """Compare the keys of ``stream`` (every ``sample``-th) with the client's database."""
    result = Comparison()
    chosen = (record for index, record in enumerate(stream) if index % sample == 0)
    try:
        for batch in batches(chosen):
            now_ms = server_now_ms(client)
            commands: list[Command] = []
            for record in batch:
                commands += [["DUMP", record.key], ["PEXPIRETIME", record.key]]
            replies = pipeline(client, commands)
            differing: list[records.Record] = []
            for index, record in enumerate(batch):
                if _compare(
                    result,
                    record,
                    replies[2 * index],
                    replies[2 * index + 1],
                    now_ms,
                    tolerance_ms,
                    database,
                ):
                    differing.append(record)
            _compare_digests(client, result, differing, database)
    except redis.exceptions.RedisError as exc:
        raise translate(exc, doing) from exc
    return result


def _compare(
    result: Comparison,
    record: records.Record,
    payload: object,
    expiry: object,
    now_ms: int,
    tolerance_ms: int,
    database: int,
) -> bool:
    """Check one key's presence and expiry; return True when its serialisation differs."""
    for reply in (payload, expiry):
        if isinstance(reply, redis.exceptions.ResponseError):
            raise reply
    expired = record.expire_at != records.NO_EXPIRY and record.expire_at <= now_ms
    if expired:
        return False
    result.compared += 1
    name = f"db {database} key {show_key(record.key)}"
    if payload is None or expiry == _GONE:
        result.fail(Check(f"{name} present", True, False))
        return False
    differs = payload != record.payload
    assert isinstance(expiry, int)  # noqa: S101 - PEXPIRETIME answers an integer
    recorded = record.expire_at
    if (recorded == records.NO_EXPIRY) != (expiry < 0) or (
        recorded != records.NO_EXPIRY and abs(expiry - recorded) > tolerance_ms
    ):
        result.fail(Check(f"{name} expires at (ms)", recorded, expiry))
    return differs


def _compare_digests(
    client: redis.Redis, result: Comparison, differing: list[records.Record], database: int
) -> None:
    """Compare by value digest the keys whose serialisation differs from the recorded one."""
    if not differing:
        return
    commands: list[Command] = []
    for record in differing:
        commands += [
            # The digest covers whether a key expires, so the probe gets the same expiry.
            ["RESTORE", _PROBE, max(record.expire_at, 0), record.payload, "ABSTTL", "REPLACE"],
            ["DEBUG", "DIGEST-VALUE", record.key, _PROBE],
        ]
    commands.append(["DEL", _PROBE])
    replies = pipeline(client, commands)
    for reply in replies:
        if isinstance(reply, redis.exceptions.ResponseError):
            raise reply
    for index, record in enumerate(differing):
        restored, recorded = replies[2 * index + 1]
        if restored != recorded:
            name = f"db {database} key {show_key(record.key)}"
            result.fail(
                Check(f"{name} value", records.payload_type(record.payload), "a different value")
            )
