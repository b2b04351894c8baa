"""Loading key records into a live Redis server: ``RESTORE ... ABSTTL``, pipelined.

:func:`find_existing` is the check a restore without ``replace`` runs first, before it
writes anything: which of the records' keys the target already holds. :func:`load_records`
then sends ``RESTORE key expire-at payload ABSTTL [REPLACE]`` for batches of records in
one round trip each. A key whose expiry has passed (by the target's clock) is skipped and
counted; a key without expiry is restored with 0 (no TTL).

A payload the target refuses with "DUMP payload version or checksum are wrong" is told
apart by its own CRC64: intact, the target is older than the server that dumped it (an
``UnsupportedError`` naming both versions); altered, it is an ``IntegrityError`` naming
the key.
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Final

import anycrc
import redis
import redis.exceptions

from strongroom.errors import ConflictError, IntegrityError, StrongroomError, UnsupportedError
from strongroom.sources.base import SourceContext
from strongroom.sources.redis import records
from strongroom.sources.redis.client import Command, RawPipe, pipeline, raw_pipe, translate

BATCH: Final = 1000
_CRC64: Final = anycrc.Model("CRC64-REDIS")
_CRC_FOOTER: Final = struct.Struct("<Q")
_BAD_PAYLOAD: Final = "DUMP payload version or checksum are wrong"
_SHOWN_KEYS: Final = 5


def show_key(key: bytes) -> str:
    """A key for messages: text when it decodes, else its Python bytes form."""
    try:
        text = key.decode("utf-8")
    except UnicodeDecodeError:
        return repr(key)
    return repr(text) if text.isprintable() else repr(key)


def payload_intact(payload: bytes) -> bool:
    """True when a DUMP payload's CRC64 footer matches its content."""
    if len(payload) < 10:
        return False
    expected = _CRC_FOOTER.unpack_from(payload, len(payload) - 8)[0]
    return bool(_CRC64.calc(payload[:-8]) == expected)


def batches(items: Iterable[records.Record], size: int = BATCH) -> Iterator[list[records.Record]]:
    """Yield lists of up to ``size`` records."""
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


@dataclass
class LoadCounts:
    """What a load did in one database: keys restored by type, keys skipped as expired."""

    restored: int = 0
    expired: int = 0
    types: Counter[str] = field(default_factory=Counter)
    expired_types: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class Versions:
    """The versions a version-mismatch error names: the backed-up server's and the target's."""

    source: str
    target: str


def server_now_ms(client: redis.Redis) -> int:
    """The server's clock in Unix milliseconds (``TIME``)."""
    seconds, microseconds = client.time()
    return int(seconds) * 1000 + int(microseconds) // 1000


@dataclass(frozen=True)
class Target:
    """Where restored keys go: one server's database, or a cluster's primaries by slot."""

    clients: Sequence[redis.Redis]
    route: Callable[[bytes], int] | None = None

    def by_node(self, batch: list[records.Record]) -> list[list[records.Record]]:
        """Split a batch by the node each key goes to."""
        if self.route is None:
            return [batch]
        groups: list[list[records.Record]] = [[] for _ in self.clients]
        for record in batch:
            groups[self.route(record.key)].append(record)
        return groups


def find_existing(
    target: Target,
    stream: Iterable[records.Record],
    doing: str,
    context: SourceContext,
) -> tuple[int, list[bytes]]:
    """Return how many of the records' keys exist on the target and the first few of them."""
    found = 0
    shown: list[bytes] = []
    try:
        for batch in batches(stream):
            context.check_cancelled()
            for client, group in zip(target.clients, target.by_node(batch), strict=True):
                if not group:
                    continue
                replies = pipeline(client, [["EXISTS", record.key] for record in group])
                for record, reply in zip(group, replies, strict=True):
                    if isinstance(reply, redis.exceptions.ResponseError):
                        raise reply
                    if reply:
                        found += 1
                        if len(shown) < _SHOWN_KEYS:
                            shown.append(record.key)
    except redis.exceptions.RedisError as exc:
        raise translate(exc, doing) from exc
    return found, shown


def refuse_existing(found: int, shown: list[bytes], where: str) -> None:
    """Raise the ``ConflictError`` of a restore that would overwrite ``found`` keys."""
    if found:
        names = ", ".join(show_key(key) for key in shown)
        raise ConflictError(
            f"{where} already holds {found} of the keys to restore (e.g. {names}); "
            "nothing was written",
            hint="Restore into an empty database (database_map), or set replace: true "
            "to overwrite them.",
        )


def load_records(
    target: Target,
    stream: Iterable[records.Record],
    context: SourceContext,
    *,
    replace: bool,
    versions: Versions,
    doing: str,
    keep: Callable[[bytes], bool] = lambda _key: True,
) -> LoadCounts:
    """RESTORE every record that ``keep`` accepts; return the counts.

    Raises ``ConflictError`` naming a key that exists (without ``replace``; the keys of
    the batches sent before the error stay restored), ``UnsupportedError`` or
    ``IntegrityError`` for a refused payload (see the module docstring), typed
    connection errors.
    """
    counts = LoadCounts()
    tail: list[str] = ["ABSTTL", "REPLACE"] if replace else ["ABSTTL"]
    try:
        now_ms = server_now_ms(target.clients[0])
        with ExitStack() as stack:
            pipes = [stack.enter_context(raw_pipe(client)) for client in target.clients]
            waiting: list[list[records.Record]] = [[] for _ in pipes]
            for batch in batches(record for record in stream if keep(record.key)):
                context.check_cancelled()
                live: list[records.Record] = []
                for record in batch:
                    if record.expire_at != records.NO_EXPIRY and record.expire_at <= now_ms:
                        counts.expired += 1
                        counts.expired_types[record.type_name] += 1
                    else:
                        live.append(record)
                groups = target.by_node(live)
                for pipe, group in zip(pipes, groups, strict=True):
                    if group:
                        # This batch goes out before the previous one's replies are read,
                        # so the servers restore while Python decodes the next records.
                        pipe.send([_restore(record, tail) for record in group])
                for index, pipe in enumerate(pipes):
                    _check_replies(pipe, waiting[index], counts, versions, doing)
                waiting = groups
            for index, pipe in enumerate(pipes):
                _check_replies(pipe, waiting[index], counts, versions, doing)
    except redis.exceptions.RedisError as exc:
        raise translate(exc, doing) from exc
    return counts


def _restore(record: records.Record, tail: list[str]) -> Command:
    expire_at = 0 if record.expire_at == records.NO_EXPIRY else record.expire_at
    return ["RESTORE", record.key, expire_at, record.payload, *tail]


def _check_replies(
    pipe: RawPipe,
    sent: list[records.Record],
    counts: LoadCounts,
    versions: Versions,
    doing: str,
) -> None:
    for record, reply in zip(sent, pipe.receive(len(sent)), strict=True):
        if isinstance(reply, redis.exceptions.ResponseError):
            raise _refused(reply, record, versions, doing) from reply
        counts.restored += 1
        counts.types[record.type_name] += 1


def _refused(
    reply: redis.exceptions.ResponseError,
    record: records.Record,
    versions: Versions,
    doing: str,
) -> StrongroomError:
    text = str(reply)
    key = show_key(record.key)
    if text.startswith("BUSYKEY") or "already exists" in text:
        return ConflictError(
            f"{doing}: key {key} appeared on the target during the restore",
            hint="Keys restored before it stay; restore again with replace: true.",
        )
    if _BAD_PAYLOAD in text:
        if not payload_intact(record.payload):
            return IntegrityError(f"{doing}: the DUMP payload of key {key} is damaged")
        return UnsupportedError(
            f"{doing}: the target runs Redis {versions.target}, which cannot read the "
            f"DUMP payload version {records.payload_version(record.payload)} written by "
            f"Redis {versions.source} (key {key})",
            hint=f"Restore into Redis {versions.source} or later.",
        )
    return translate(reply, f"{doing}: restoring key {key}")


def restore_functions(
    client: redis.Redis, payload: bytes, *, replace: bool, versions: Versions, doing: str
) -> None:
    """FUNCTION RESTORE a ``FUNCTION DUMP`` payload (REPLACE or APPEND as asked)."""
    try:
        reply = pipeline(
            client, [["FUNCTION", "RESTORE", payload, "REPLACE" if replace else "APPEND"]]
        )[0]
    except redis.exceptions.RedisError as exc:
        raise translate(exc, doing) from exc
    if not isinstance(reply, redis.exceptions.ResponseError):
        return
    text = str(reply)
    if "already exists" in text:
        raise ConflictError(
            f"{doing}: {text}",
            hint="Set replace: true to replace the target's libraries, or functions: false "
            "to leave them out.",
        ) from reply
    if _BAD_PAYLOAD in text:
        raise UnsupportedError(
            f"{doing}: the target runs Redis {versions.target}, which cannot read the "
            f"function payload written by Redis {versions.source}",
        ) from reply
    raise translate(reply, doing) from reply


def server_version(client: redis.Redis) -> str:
    """The server's version (``INFO server``)."""
    info: dict[str, Any] = client.info("server")
    return str(info.get("redis_version", "unknown"))
