"""Dump streams of the ``mysql`` source: what flows out of the dump tool and back in.

Out: :func:`stream_dump` copies the dump tool's stdout into one sink stream, keeping the
first and last few kilobytes to read the binary log coordinates the dump recorded
(``--master-data=2`` / ``--source-data=2`` write them as a ``CHANGE MASTER TO`` comment;
MariaDB adds the GTID position as a ``gtid_slave_pos`` comment near the end).

In: :func:`filter_dump` edits a dump on its way into the client, line by line, without
holding it whole:

* the sandbox line. mariadb-dump 10.5.25/10.6.18/10.11.8/11.x and later start a dump with
  ``/*M!999999\\- enable the sandbox mode */``. A MariaDB client that knows ``--sandbox``
  reads it and refuses shell and file commands for the rest of the input (a defence
  against crafted object names, CVE-2024-21096); MySQL clients and older MariaDB clients
  stop with ``Unknown command '\\-'``. The line is kept for a client that knows it and
  removed for one that does not.
* events, for a restore test only: ``ENABLE`` becomes ``DISABLE`` so that no event of the
  scratch copy runs (an event body may name other databases).
* for a restore under a new name nothing needs rewriting: the dump is made without
  ``--databases``, so it holds no ``CREATE DATABASE`` or ``USE``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Final

from strongroom.sources.base import JsonObject, SourceContext, StreamSink
from strongroom.sources.tool_streams import ToolRunner

SANDBOX_PREFIX: Final = b"/*M!999999\\- enable the sandbox mode */"
_HEAD_BYTES: Final = 64 * 1024
_TAIL_BYTES: Final = 16 * 1024
_COORDINATES: Final = re.compile(
    rb"CHANGE (?:MASTER|REPLICATION SOURCE) TO (?:MASTER|SOURCE)_LOG_FILE='([^']+)',\s*"
    rb"(?:MASTER|SOURCE)_LOG_POS=(\d+)"
)
_GTID: Final = re.compile(rb"gtid_slave_pos='([^']*)'|GTID_PURGED=(?:/\*!\d+ '\+'\*/ )?'([^']*)'")
_EVENT_LINE: Final = b"/*!50106 CREATE*/"
_EVENT_STATUS: Final = re.compile(
    rb"(ON COMPLETION (?:NOT )?PRESERVE) (?:ENABLE|DISABLE ON SLAVE)\b"
)


def coordinates(head: bytes, tail: bytes) -> JsonObject | None:
    """The binary log file, position (and GTID) a dump recorded; None when it has none."""
    match = _COORDINATES.search(head)
    if match is None:
        return None
    found: JsonObject = {"file": match.group(1).decode(), "position": int(match.group(2))}
    gtid = _GTID.search(tail) or _GTID.search(head)
    if gtid is not None:
        found["gtid"] = (gtid.group(1) or gtid.group(2) or b"").decode()
    return found


class _Ends:
    """Keeps the first and last few kilobytes of a dump as it streams past."""

    def __init__(self) -> None:
        self.head = b""
        self.tail = b""

    def add(self, block: bytes) -> None:
        if len(self.head) < _HEAD_BYTES:
            self.head += block[: _HEAD_BYTES - len(self.head)]
        self.tail = (self.tail + block)[-_TAIL_BYTES:]


def stream_dump(
    argv: Sequence[str],
    tools: ToolRunner,
    doing: str,
    sink: StreamSink,
    name: str,
    context: SourceContext,
) -> JsonObject:
    """Stream the dump tool's stdout into ``name``; return size, SHA-256 and what it says."""
    ends = _Ends()
    recorded = tools.stream_into(argv, doing, sink, name, context, watch=ends.add)
    return {
        **recorded,
        "sandbox_line": ends.head.startswith(SANDBOX_PREFIX),
        "binlog": coordinates(ends.head, ends.tail),
    }


def filter_dump(
    blocks: Iterable[bytes], *, strip_sandbox: bool, disable_events: bool
) -> Iterator[bytes]:
    """Yield a dump's bytes with the edits of the module docstring applied."""
    iterator = iter(blocks)
    if strip_sandbox:
        first = b""
        for block in iterator:
            first += block
            if b"\n" in first:
                break
        if first.startswith(SANDBOX_PREFIX):
            first = first.partition(b"\n")[2]
        iterator = itertools.chain([first], iterator)
    if not disable_events:
        yield from iterator
        return
    pending = b""
    for block in iterator:
        pending += block
        cut = pending.rfind(b"\n") + 1
        if cut:
            yield _disable_events(pending[:cut])
            pending = pending[cut:]
    if pending:
        yield _disable_events(pending)


def _disable_events(text: bytes) -> bytes:
    if _EVENT_LINE not in text:
        return text
    lines = text.split(b"\n")
    for index, line in enumerate(lines):
        if line.startswith(_EVENT_LINE) and b" EVENT " in line:
            lines[index] = _EVENT_STATUS.sub(rb"\1 DISABLE", line, count=1)
    return b"\n".join(lines)


def map_grants(script: str, database_map: dict[str, str]) -> str:
    """Point grants on renamed databases (``ON `old`.``) at their new names."""
    for old, new in database_map.items():
        quoted_old = "`" + old.replace("`", "``") + "`."
        quoted_new = "`" + new.replace("`", "``") + "`."
        script = script.replace(f" ON {quoted_old}", f" ON {quoted_new}")
    return script
