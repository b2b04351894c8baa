"""What a job handler is given and what it returns.

A handler is a plain function ``(JobContext) -> JobResult`` registered for a job kind.
It should call ``ctx.cancel.raise_if_cancelled()`` between steps (and may sleep on
``ctx.cancel.wait``): a cancelled job ends ABORTED (also when its completion window
closed) as soon as the handler raises the resulting AbortedError. It reports progress
through ``ctx.progress``; the executor keeps the latest value and stores it with each
lease renewal.

A handler signals failure by raising: a StrongroomError is retried or failed per the
job's retry policy; any other exception is a bug, fails the job at once and is logged
with its traceback.

What a job leaves in the catalog (a backup's recovery point) is not written by the
handler: it returns it as ``JobResult.record``, and the executor runs that in the
transaction that ends the job, after the transition that checks the job's lease. A
worker that lost its lease therefore records nothing, and the retry that took the job
over records the only row.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from strongroom.catalog.types import JobState
from strongroom.engine.clock import Clock
from strongroom.engine.views import JobView
from strongroom.errors import AbortedError

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.orm import Session


class CancellationToken:
    """A thread-safe "please stop" flag, with the reason and the state to end in."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._reason: str | None = None
        self._state = JobState.ABORTED

    def cancel(self, reason: str, *, state: JobState = JobState.ABORTED) -> None:
        """Ask the job to stop; the first request's reason and state win."""
        with self._lock:
            if self._event.is_set():
                return
            self._reason = reason
            self._state = state
            self._event.set()

    @property
    def cancelled(self) -> bool:
        """True once :meth:`cancel` was called."""
        return self._event.is_set()

    @property
    def reason(self) -> str | None:
        """Why the job was asked to stop, or ``None``."""
        with self._lock:
            return self._reason

    @property
    def state(self) -> JobState:
        """The state the job ends in when it stops for this request."""
        with self._lock:
            return self._state

    def raise_if_cancelled(self) -> None:
        """Raise AbortedError if the job was asked to stop."""
        if self._event.is_set():
            raise AbortedError(self.reason or "cancelled")

    def wait(self, timeout: float | None = None) -> bool:
        """Block up to ``timeout`` real seconds; return True if cancelled."""
        return self._event.wait(timeout)


@dataclass(frozen=True)
class Progress:
    """How far a job got: ``done`` of ``total`` units (bytes, tables, …), and a note."""

    done: float
    total: float | None = None
    message: str = ""

    def as_json(self) -> dict[str, Any]:
        """Return the progress as stored on the job row."""
        return {"done": self.done, "total": self.total, "message": self.message}


ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True)
class JobContext:
    """Everything a handler gets: the job, a cancellation token, progress, clock, logger."""

    job: JobView
    cancel: CancellationToken
    clock: Clock
    logger: logging.LoggerAdapter[logging.Logger]
    report_progress: ProgressCallback = field(repr=False)

    def progress(self, done: float, total: float | None = None, message: str = "") -> None:
        """Report progress (cheap: call it as often as is natural)."""
        self.report_progress(Progress(done, total, message))


Recorder = Callable[["Session"], None]
"""Writes what a finished job leaves in the catalog, in the session that ends the job."""

FollowUps = Callable[["Session", "datetime"], Sequence[JobView]]
"""Returns the jobs a finished job queues (PENDING, attempt 1), read in the session that
ends the job at its time: a backup's copy actions."""


@dataclass(frozen=True)
class JobResult:
    """What a handler returns: JSON details to keep on the job, and whether it is partial.

    ``partial=True`` ends the job PARTIAL when the job allows it, FAILED otherwise.
    ``record`` (if any) runs in the transaction that moves the job to COMPLETED or
    PARTIAL, after that transition's lease check, so the rows it writes commit together
    with the job's end or not at all. It never runs for a job that fails instead. If it
    raises, nothing of the end is written and the attempt fails with that error.
    ``discard`` (if any) runs when that transition was refused because this worker no
    longer holds the job (its lease was recovered by another worker): nothing was
    recorded, and it removes what the handler left outside the catalog (a backup's
    manifest in its vault), so the job's retry leaves the only recovery point.
    ``follow_ups`` (if any) runs before ``record`` in the same transaction and returns
    jobs to queue with the job's end (a backup's copy actions): they exist if and only if
    the job's end committed. ``events`` (type, subject, payload) are published in that
    transaction too (a backup's gap found by its source): they exist if and only if the
    job's end committed.
    """

    data: Mapping[str, Any] = field(default_factory=dict)
    partial: bool = False
    message: str = ""
    record: Recorder | None = field(default=None, repr=False, compare=False)
    discard: Callable[[], None] | None = field(default=None, repr=False, compare=False)
    follow_ups: FollowUps | None = field(default=None, repr=False, compare=False)
    events: Sequence[tuple[str, str, Mapping[str, Any]]] = ()


Handler = Callable[[JobContext], JobResult]
"""The work function of one job kind."""
