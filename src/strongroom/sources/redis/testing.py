"""Restore tests of Redis recovery points, in a scratch server strongroom starts.

* Logical and cluster points: every key is restored into the scratch server's database
  of the same number (a cluster's keys all into database 0), then per database: the
  keys restored (or skipped as expired) against the recorded count, the keys by type on
  the server against the recorded counts, and key by key the value and expiry
  (:mod:`strongroom.sources.redis.compare`). A damaged payload fails the test naming
  the key. Function library names are compared.
* Snapshot points: the RDB's CRC64 and SHA-256 are checked while it is copied, the
  scratch server loads it (its own loader checks every value), and the keys per database
  must match the counts seen at backup.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from strongroom.errors import IntegrityError
from strongroom.sources.base import (
    Check,
    JsonObject,
    RestoreReport,
    SourceContext,
    StreamReader,
    erasure_test,
)
from strongroom.sources.redis import facts
from strongroom.sources.redis.client import RedisServer
from strongroom.sources.redis.compare import compare_keys
from strongroom.sources.redis.erasing import erase
from strongroom.sources.redis.live import library_names
from strongroom.sources.redis.restoring import StreamKeys, restore_logical, spool_rdb
from strongroom.sources.redis.scratch import scratch_server
from strongroom.sources.redis.target import RedisRestoreTarget


def test_logical(
    reader: StreamReader,
    metadata: JsonObject,
    context: SourceContext,
    *,
    sample: int,
    tolerance_ms: int,
) -> RestoreReport:
    """Restore a logical or cluster point into a scratch server and compare key by key."""
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
                comparison = compare_keys(
                    client,
                    StreamKeys(reader, entry)(),
                    database=number,
                    tolerance_ms=tolerance_ms,
                    sample=sample,
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
            with scratch.client() as client:
                names = library_names(client, "listing the restored functions")
            report.checks.append(
                Check("function libraries", sorted(functions["libraries"]), sorted(names))
            )
        _erase(scratch, context, report)
    return report


def test_snapshot(
    reader: StreamReader, metadata: JsonObject, context: SourceContext
) -> RestoreReport:
    """Load the RDB into a scratch server; compare key counts with those seen at backup."""
    spooled = Path(context.scratch) / f"test-{os.getpid()}.rdb"
    try:
        report = spool_rdb(reader, metadata, spooled, context)
    except IntegrityError as exc:
        report = RestoreReport(target="scratch redis-server (not started)")
        report.checks.append(Check(f"rdb: {exc}", "intact", "damaged"))
        return report
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
        _erase(scratch, context, report)
    return report


def _erase(scratch: RedisServer, context: SourceContext, report: RestoreReport) -> None:
    """Re-apply the erasure requests in the scratch server, as checks of the test."""
    checks, report.erasures = erasure_test(
        "redis", lambda: erase(scratch, context.erasures, report.target)
    )
    report.checks.extend(checks)
