"""The one small interface every data source implements, and the types it exchanges.

A source never sees vault internals. A backup writes *named streams* (one per database,
table file, partition, file …) into a :class:`StreamSink` it is given and returns
metadata: the consistency point, tool versions, and the counts and checksums a restore
is checked against. A restore reads the same streams back from a :class:`StreamReader`.
A restore test restores into a scratch target, compares with the recorded metadata
field by field, and removes the scratch target on every path out.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

from strongroom.errors import AbortedError, ConfigError, ErasureError
from strongroom.sources.erasure import Erasure, ErasureEffect

JsonObject = dict[str, Any]


class WritableStream(Protocol):
    """A stream being written: bytes go in with ``write``."""

    def write(self, data: bytes, /) -> int:
        """Append ``data``; may block while the pipeline catches up (back-pressure)."""
        ...


class ReadableStream(Protocol):
    """A stream being read: ``read(n)`` returns up to n bytes, ``b""`` at the end."""

    def read(self, size: int = -1, /) -> bytes:
        """Return up to ``size`` bytes (all that is left for -1), ``b""`` at the end."""
        ...


class StreamSink(Protocol):
    """Where a backup writes its named streams (a vault writer, adapted by the services)."""

    def open_stream(self, name: str) -> AbstractContextManager[WritableStream]:
        """Open a new stream; it is complete when the context exits without error.

        Names are unique within one backup; ``/`` separates path-like parts.
        """
        ...


class StreamReader(Protocol):
    """Where a restore reads the streams of one recovery point."""

    def stream_names(self) -> list[str]:
        """Return the names of every stream in the recovery point."""
        ...

    def open_stream(self, name: str) -> AbstractContextManager[ReadableStream]:
        """Open one stream for reading without reading the others.

        Raises ``NotFoundError`` for an unknown name, ``IntegrityError`` on damaged data.
        """
        ...


@runtime_checkable
class ReadAhead(Protocol):
    """A :class:`StreamReader` that can be told which streams will be read next, in order
    and each to its end (a vault reader then fetches across their boundaries)."""

    def read_ahead(self, names: Sequence[str]) -> None:
        """Plan to read ``names`` in this order; reading anything else drops the plan."""
        ...


class PointOpener(Protocol):
    """Opens another recovery point of the same vault: its streams and its source metadata.

    What a restore of an incremental point uses to replay the earlier points of its
    chain. Raises ``NotFoundError`` for a point that is not in the vault.
    """

    def __call__(self, point_id: str, /) -> AbstractContextManager[tuple[StreamReader, JsonObject]]:
        """Open point ``point_id``: (its streams, the metadata its source's backup returned)."""
        ...


@dataclass
class SourceContext:
    """What every source operation is given besides its settings.

    ``scratch`` is a private folder the source may use for temporary files (the caller
    removes it); ``cancel`` is set when the job must stop (window closed, shutdown);
    ``progress`` receives byte counts as data flows; ``points`` (restores only, None when
    the caller has no vault) opens the other points of the vault, for chains.
    """

    scratch: Path
    cancel: threading.Event = field(default_factory=threading.Event)
    progress: Callable[[int], None] = lambda _bytes: None
    dry_run: bool = False
    points: PointOpener | None = None
    erasures: tuple[Erasure, ...] = ()
    """Open erasure requests of the resource: a restore (test) re-applies them to what it
    restored and reports each in ``RestoreReport.erasures`` (``sources/erasure.py``)."""

    def check_cancelled(self) -> None:
        """Raise ``AbortedError`` if the operation was cancelled."""
        if self.cancel.is_set():
            raise AbortedError("the operation was cancelled")


@dataclass(frozen=True)
class Description:
    """What a backup of this source would cover, and the tools it would use."""

    summary: str
    parts: list[str]
    tools: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SourceEvent:
    """Something a backup found that deserves an event of its own: a type of
    ``catalog/event_types.py`` and its details. The backup job publishes it with the
    job's end (only if the point is recorded), adding the resource, vault and point."""

    type: str
    details: JsonObject


@dataclass
class BackupResult:
    """What a backup returns: metadata to record, the parts that failed (if any), and
    events to publish with the recorded point (see :class:`SourceEvent`).

    A result with failed parts is PARTIAL: the engine keeps it only where the rule
    allows partial backups.
    """

    metadata: JsonObject
    failed_parts: dict[str, str] = field(default_factory=dict)
    events: list[SourceEvent] = field(default_factory=list)

    @property
    def partial(self) -> bool:
        """True when some parts failed."""
        return bool(self.failed_parts)


@dataclass(frozen=True)
class Check:
    """One field compared by a restore test: what was recorded and what was found."""

    name: str
    expected: Any
    actual: Any

    @property
    def ok(self) -> bool:
        """True when the restored value equals the recorded one."""
        return bool(self.expected == self.actual)


@dataclass
class RestoreReport:
    """What a restore or a restore test found, check by check."""

    target: str
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    erasures: list[ErasureEffect] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every check passed (a report with no checks proves nothing: False)."""
        return bool(self.checks) and all(check.ok for check in self.checks)

    @property
    def failures(self) -> list[Check]:
        """The checks that did not pass."""
        return [check for check in self.checks if not check.ok]


def erasure_test(
    name: str, erase: Callable[[], list[ErasureEffect]]
) -> tuple[list[Check], list[ErasureEffect]]:
    """Re-apply erasure requests in a restore test: run ``erase`` (a source's erasure on
    its scratch target) and return one check per request (nothing of the subject left)
    and the effects. An ``ErasureError`` is a failed check naming ``name``, not a raise:
    the scratch target is removed anyway, and the test's verdict says what went wrong.
    """
    try:
        effects = erase()
    except ErasureError as exc:
        return [Check(f"{name}: erasure requests re-applied", "re-applied", str(exc))], []
    checks = [
        Check(
            f"{name}: erasure request {effect.request_id} leaves nothing of the subject",
            0,
            effect.remaining or 0,
        )
        for effect in effects
    ]
    return checks, effects


@runtime_checkable
class Source(Protocol):
    """One kind of data source. Implementations live one per module in ``sources/``."""

    type_name: ClassVar[str]

    def describe(self, context: SourceContext) -> Description:
        """Tell what a backup would cover and which tool versions it would use."""
        ...

    def backup(self, context: SourceContext, sink: StreamSink) -> BackupResult:
        """Write every part as named streams into ``sink`` and return the metadata."""
        ...

    def restore(
        self,
        context: SourceContext,
        reader: StreamReader,
        metadata: JsonObject,
        target: JsonObject,
    ) -> RestoreReport:
        """Restore into ``target`` (source-specific options: a path, a database name …)."""
        ...

    def restore_test(
        self, context: SourceContext, reader: StreamReader, metadata: JsonObject
    ) -> RestoreReport:
        """Restore into a scratch target, compare with ``metadata``, remove the scratch."""
        ...


@runtime_checkable
class CheckpointingSource(Protocol):
    """A source whose next backup continues from where the last *recorded* one ended.

    It keeps a checkpoint (e.g. Kafka offsets per partition) and must advance it only once
    the backup's data is safe: the backup job calls :meth:`commit_checkpoint` after the
    vault committed the point and the catalog recorded it, never for a backup that failed,
    was aborted or was discarded. A backup that is not followed by this call leaves the
    checkpoint where it was, so the next backup reads the same data again.
    """

    def commit_checkpoint(self, metadata: JsonObject, point_id: str) -> None:
        """Advance the checkpoint to what ``metadata`` (of point ``point_id``) covered."""
        ...


def iter_stream(stream: ReadableStream, block_size: int = 1024 * 1024) -> Iterator[bytes]:
    """Yield a readable stream's bytes in blocks of up to ``block_size``."""
    while block := stream.read(block_size):
        yield block


def check_restorable(metadata: JsonObject, format_name: str, type_name: str) -> None:
    """Refuse metadata of another source or of a dry run (they describe no data to restore).

    Raises ``ConfigError`` naming the source ``type_name`` the point was expected from.
    """
    if metadata.get("format") != format_name:
        raise ConfigError(f"this recovery point was not made by the {type_name} source")
    if metadata.get("dry_run"):
        raise ConfigError("a dry-run backup holds no data to restore")
