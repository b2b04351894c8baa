"""Executors run PENDING jobs from the catalog with the handler registered for their kind.

:class:`ThreadPoolJobExecutor` claims jobs with a lease (see ``catalog.jobs``), runs each
handler on a thread of its pool, renews the leases from a heartbeat thread, and ends
each job through the state machine: COMPLETED / PARTIAL, a retry or FAILED per the retry
policy, ABORTED on cancellation. Concurrency limits (global, per vault, per
resource type) and "one backup of a resource at a time" are checked by the claim in the
catalog, so they hold across every process sharing it; ``max_workers`` only bounds this
process. Unless an executor is given limits, each claim uses the limits ``apply`` stored
in the catalog (the configuration's ``concurrency`` section), read afresh every time.

Use it either in the background (:meth:`start`, :meth:`submit`, :meth:`shutdown`) or
synchronously (:meth:`run_until_idle`, for tests and one-shot CLI commands).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for_futures
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Final, Protocol

from sqlalchemy.orm import Session

from strongroom.catalog import jobs as catalog_jobs
from strongroom.catalog.jobs import ConcurrencyLimits, JobGuard
from strongroom.catalog.types import JobKind, JobState
from strongroom.engine.context import CancellationToken, Handler, JobContext, JobResult, Progress
from strongroom.engine.events import PROGRESS, Event, job_event_type
from strongroom.engine.outcomes import abort, complete
from strongroom.engine.recovery import expire_missed_starts, recover_expired_leases
from strongroom.engine.retry import handle_failure
from strongroom.engine.states import JobStateMachine
from strongroom.engine.views import JobView, job_event_payload
from strongroom.errors import AbortedError, ConflictError, StrongroomError, TimeoutError_
from strongroom.logs import get_logger

__all__ = ["ConcurrencyLimits", "Executor", "ThreadPoolJobExecutor"]

DEFAULT_LEASE_SECONDS: Final = 300.0
_logger = get_logger(__name__)
_job_log = get_logger("strongroom.engine.job")


class Executor(Protocol):
    """Runs jobs that are PENDING in the catalog."""

    def submit(self, job_id: str) -> None:
        """Tell the executor a job is waiting (it is claimed when limits allow)."""
        ...

    def cancel_running(
        self, job_id: str, reason: str, *, state: JobState = JobState.ABORTED
    ) -> bool:
        """Ask a job running in this process to stop; True if it runs here."""
        ...

    def run_until_idle(self, timeout: float | None = None) -> None:
        """Run jobs until none is runnable now and none is running."""
        ...

    def wait(self, job_id: str, timeout: float | None = None) -> JobView:
        """Block until the job reaches a terminal state; return it."""
        ...

    def shutdown(self, *, wait: bool = True, cancel: bool = False) -> None:
        """Stop claiming; optionally cancel running jobs; optionally wait for them."""
        ...


@dataclass
class _Running:
    job: JobView
    guard: JobGuard
    token: CancellationToken = field(default_factory=CancellationToken)
    future: Future[None] | None = None
    progress: Progress | None = None
    progress_sent: Progress | None = None


class ThreadPoolJobExecutor:
    """Claims and runs jobs on a thread pool; safe to run in several processes at once.

    ``handlers`` maps each job kind this executor runs to its handler; jobs of other
    kinds are left for other executors. ``limits`` replaces the limits stored in the
    catalog (``None``, the default: use the stored ones, or none if ``apply`` stored none).
    ``only`` restricts the executor to these job ids (the CLI's ``--wait`` runs its own job
    and leaves older queued ones to the daemon); the limits still apply to them.
    ``lease_seconds`` is how long a claim holds without renewal (renewed every
    ``heartbeat_interval`` real seconds, default a third of it). ``poll_interval`` is how
    often (real seconds) the background loop and :meth:`wait` look at the catalog when
    nothing woke them.
    """

    def __init__(
        self,
        machine: JobStateMachine,
        handlers: Mapping[JobKind, Handler],
        *,
        limits: ConcurrencyLimits | None = None,
        only: Collection[str] | None = None,
        max_workers: int = 4,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        heartbeat_interval: float | None = None,
        poll_interval: float = 1.0,
        worker_id: str | None = None,
    ) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        self.machine = machine
        self.handlers = dict(handlers)
        self.limits = limits
        self.only = None if only is None else frozenset(only)
        self.max_workers = max_workers
        self.lease_seconds = lease_seconds
        self.heartbeat_interval = heartbeat_interval or lease_seconds / 3
        self.poll_interval = poll_interval
        self.worker_id = worker_id or f"worker-{uuid.uuid4().hex[:12]}"
        self._pool = ThreadPoolExecutor(max_workers, thread_name_prefix="strongroom-job")
        self._running: dict[str, _Running] = {}
        self._lock = threading.Lock()
        self._finished = threading.Condition(self._lock)
        self._wakeup = threading.Event()
        self._stopping = threading.Event()
        self._claiming = threading.Event()
        self._claiming.set()
        self._threads: list[threading.Thread] = []
        self._heartbeat: threading.Thread | None = None

    # --- public API -------------------------------------------------------------------

    def submit(self, job_id: str) -> None:
        """Wake the background loop: a job is waiting (it must be PENDING in the catalog)."""
        self._wakeup.set()

    def start(self) -> None:
        """Start claiming in the background until :meth:`shutdown`."""
        if self._threads:
            return
        thread = threading.Thread(
            target=self._dispatch_loop, name="strongroom-dispatch", daemon=True
        )
        self._threads.append(thread)
        thread.start()
        self._ensure_heartbeat()

    def run_once(self) -> int:
        """Recover lost jobs, expire missed starts, claim what may run; return how many."""
        recover_expired_leases(self.machine)
        expire_missed_starts(self.machine)
        claimed = 0
        while self._claiming.is_set() and not self._stopping.is_set():
            with self._lock:
                if len(self._running) >= self.max_workers:
                    break
            running = self._claim()
            if running is None:
                break
            claimed += 1
            self._launch(running)
        return claimed

    def run_until_idle(self, timeout: float | None = None) -> None:
        """Run jobs until none is runnable now and none is running here.

        Jobs waiting for a later ``next_attempt_at`` do not count: advance the clock and
        call again. Raises TimeoutError_ when ``timeout`` real seconds pass first.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            claimed = self.run_once()
            with self._lock:
                futures = [r.future for r in self._running.values() if r.future is not None]
            if not futures:
                if claimed == 0:
                    return
                continue
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            wait_for_futures(futures, timeout=remaining, return_when=FIRST_COMPLETED)
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError_(f"jobs still running after {timeout}s")

    def wait(self, job_id: str, timeout: float | None = None) -> JobView:
        """Block until the job is terminal (whoever runs it); return it.

        Raises TimeoutError_ after ``timeout`` real seconds, NotFoundError.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.machine.get(job_id)
            if job.is_terminal:
                return job
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise TimeoutError_(f"job {job_id} is still {job.state} after {timeout}s")
            pause = self.poll_interval if remaining is None else min(remaining, self.poll_interval)
            with self._finished:
                self._finished.wait(pause)

    def cancel_running(
        self, job_id: str, reason: str, *, state: JobState = JobState.ABORTED
    ) -> bool:
        """Set the cancellation token of a job running here; True if it runs here."""
        with self._lock:
            running = self._running.get(job_id)
        if running is None:
            return False
        running.token.cancel(reason, state=state)
        return True

    def stop_claiming(self) -> None:
        """Take no new jobs; those running here go on (with their heartbeats) until they end.

        The first step of a graceful shutdown: follow with :meth:`running_job_ids` to
        wait, then :meth:`shutdown`.
        """
        self._claiming.clear()

    def running_job_ids(self) -> list[str]:
        """Return the ids of the jobs running in this process now."""
        with self._lock:
            return list(self._running)

    def heartbeat_once(self) -> None:
        """Renew the leases of the jobs running here and pass on cancel requests."""
        with self._lock:
            snapshot = list(self._running.values())
        for running in snapshot:
            self._renew(running)

    def shutdown(self, *, wait: bool = True, cancel: bool = False) -> None:
        """Stop claiming; with ``cancel``, ask running jobs to stop; with ``wait``, wait."""
        self._stopping.set()
        self._wakeup.set()
        if cancel:
            with self._lock:
                tokens = [r.token for r in self._running.values()]
            for token in tokens:
                token.cancel("the executor is shutting down")
        self._pool.shutdown(wait=wait)
        if wait:
            for thread in [*self._threads, *([self._heartbeat] if self._heartbeat else [])]:
                thread.join()

    def __enter__(self) -> ThreadPoolJobExecutor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown(wait=True, cancel=True)

    # --- claiming and running -----------------------------------------------------------

    def _claim(self) -> _Running | None:
        with self.machine.work() as work:
            row = work.claim(
                owner=self.worker_id,
                kinds=list(self.handlers),
                lease_seconds=self.lease_seconds,
                limits=self.limits,
                only=self.only,
            )
            if row is None:
                return None
            job = work.view(row)
        return _Running(job, JobGuard(attempt=job.attempt, lease_owner=self.worker_id))

    def _launch(self, running: _Running) -> None:
        with self._lock:
            self._running[running.job.id] = running
            running.future = self._pool.submit(self._execute, running)
        self._ensure_heartbeat()

    def _execute(self, running: _Running) -> None:
        job = running.job
        logger = logging.LoggerAdapter(
            _job_log, {"job_id": job.id, "kind": job.kind.value, "attempt": job.attempt}
        )
        context = JobContext(
            job=job,
            cancel=running.token,
            clock=self.machine.clock,
            logger=logger,
            report_progress=lambda progress: setattr(running, "progress", progress),
        )
        logger.info("job started", extra={"resource": job.resource, "vault": job.vault})
        try:
            try:
                running.token.raise_if_cancelled()
                result = self.handlers[job.kind](context)
                if not isinstance(result, JobResult):
                    raise TypeError(f"handler returned {type(result).__name__}, not JobResult")
            except AbortedError as error:
                self._end_aborted(running, error)
            except StrongroomError as error:
                logger.warning("job attempt failed: %s", error, extra={"code": error.code})
                self._end_failed(running, error)
            except Exception as error:
                logger.exception("job handler raised an unexpected error")
                self._end_failed(running, error)
            else:
                self._end_completed(running, result, logger)
        except ConflictError as error:
            logger.warning("job was taken from this worker before it ended: %s", error)
        except StrongroomError as error:
            # The catalog is unreachable: the lease will run out and another worker (or
            # this one, later) recovers the job as a lost attempt.
            logger.error("could not record the end of the job: %s", error)
        finally:
            with self._finished:
                self._running.pop(job.id, None)
                self._finished.notify_all()
            self._wakeup.set()

    def _end_completed(
        self,
        running: _Running,
        result: JobResult,
        logger: logging.LoggerAdapter[logging.Logger],
    ) -> None:
        """End the job COMPLETED or PARTIAL with what it records, in one transaction.

        The transition's lease guard runs first: a worker that lost its lease records
        nothing (ConflictError, handled by the caller). When the job's own ``record``
        fails, the transaction rolls back and the attempt fails with that error. In both
        cases nothing was committed, and the result's ``discard`` removes what the attempt
        left outside the catalog.
        """
        record = result.record
        failed: list[BaseException] = []

        def record_or_remember(session: Session) -> None:
            try:
                if record is not None:
                    record(session)
            except BaseException as error:
                failed.append(error)
                raise

        follow_ups = result.follow_ups

        def follow_ups_or_remember(session: Session, now: datetime) -> Sequence[JobView]:
            try:
                return follow_ups(session, now) if follow_ups is not None else ()
            except BaseException as error:
                failed.append(error)
                raise

        try:
            with self.machine.work() as work:
                ended = complete(
                    work,
                    running.job,
                    result=result.data,
                    partial=result.partial,
                    message=result.message,
                    guard=running.guard,
                    record=record_or_remember if record is not None else None,
                    follow_ups=follow_ups_or_remember if follow_ups is not None else None,
                    events=result.events,
                )
        except Exception as error:
            if not failed:
                if isinstance(error, ConflictError):
                    # The lease check refused the end before anything was committed: the
                    # job is another worker's now. Remove what this attempt left behind.
                    self._discard(result, logger)
                raise
            if isinstance(error, StrongroomError):
                logger.warning(
                    "job attempt failed recording its result: %s", error, extra={"code": error.code}
                )
            else:
                logger.exception("recording the job's result raised an unexpected error")
            self._discard(result, logger)  # raised inside the transaction: nothing committed
            self._end_failed(running, error)
            return
        logger.info("job ended", extra={"state": ended.state.value})

    @staticmethod
    def _discard(result: JobResult, logger: logging.LoggerAdapter[logging.Logger]) -> None:
        if result.discard is None:
            return
        try:
            result.discard()
        except Exception:
            logger.exception("could not remove what the attempt that lost its job left behind")

    def _end_aborted(self, running: _Running, error: AbortedError) -> None:
        token = running.token
        reason = token.reason if token.cancelled and token.reason else error.message
        state = token.state if token.cancelled else JobState.ABORTED
        with self.machine.work() as work:
            abort(work, running.job, reason=reason, state=state, guard=running.guard)

    def _end_failed(self, running: _Running, error: BaseException) -> None:
        with self.machine.work() as work:
            handle_failure(work, running.job, error, guard=running.guard)

    # --- background loops -----------------------------------------------------------------

    def _dispatch_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self.run_once()
            except StrongroomError as error:
                _logger.error("claiming jobs failed: %s", error)
            except Exception:
                _logger.exception("the dispatch loop hit an unexpected error")
            self._wakeup.wait(self.poll_interval)
            self._wakeup.clear()

    def _ensure_heartbeat(self) -> None:
        with self._lock:
            if self._heartbeat is not None:
                return
            self._heartbeat = threading.Thread(
                target=self._heartbeat_loop, name="strongroom-heartbeat", daemon=True
            )
            self._heartbeat.start()

    def _heartbeat_loop(self) -> None:
        while not self._stopping.wait(self.heartbeat_interval):
            try:
                self.heartbeat_once()
            except Exception:
                _logger.exception("the lease heartbeat hit an unexpected error")

    def _renew(self, running: _Running) -> None:
        job = running.job
        progress = running.progress
        try:
            with self.machine.catalog.session() as session:
                status = catalog_jobs.renew_lease(
                    session,
                    job.id,
                    owner=self.worker_id,
                    attempt=job.attempt,
                    now=self.machine.clock.now(),
                    lease_seconds=self.lease_seconds,
                    progress=progress.as_json() if progress is not None else None,
                )
        except StrongroomError as error:
            _logger.warning("could not renew the lease on job %s: %s", job.id, error)
            return
        if not status.renewed:
            running.token.cancel(f"worker {self.worker_id} lost its lease on job {job.id}")
        elif status.cancel_requested:
            running.token.cancel(status.cancel_reason or "cancelled")
        elif status.complete_by is not None and self.machine.clock.now() >= status.complete_by:
            running.token.cancel(f"completion window closed at {status.complete_by.isoformat()}")
        if progress is not None and progress != running.progress_sent:
            running.progress_sent = progress
            self.machine.bus.dispatch(
                Event(
                    type=job_event_type(job.kind, PROGRESS),
                    subject=job.id,
                    at=self.machine.clock.now(),
                    payload=job_event_payload(replace(job, progress=progress.as_json())),
                )
            )
