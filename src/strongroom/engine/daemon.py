"""The long-running daemon: leadership, the scheduler tick loop, the executor, a lifecycle hook.

:class:`Daemon` puts the engine's parts together for ``strongroom serve``:

* **Start.** Takes the scheduler lease (:mod:`strongroom.engine.leader`). If another
  daemon holds it, it refuses with a ConflictError naming the holder, or — as a
  *standby* — runs jobs and tries for the lease at every tick, taking over when the
  leader stops renewing. Then the executor starts; its first pass recovers jobs left
  RUNNING by a crashed daemon once their leases expire (retried or failed per policy).
  Unless the daemon is given ``limits``, its executor keeps the concurrency limits
  ``apply`` stored in the catalog, read afresh at every claim (so a new ``apply`` needs
  no restart).
* **Tick** (every ``tick_seconds`` of real time): renew the lease; as leader, run one
  scheduler tick and, every ``lifecycle_interval`` of clock time, the lifecycle hook.
* **Stop** (:meth:`stop`, called from a signal handler): take no new work; let running
  jobs finish for up to ``shutdown_timeout`` seconds; then cancel them (they end
  ABORTED, and their vault writers abort, so no partial recovery point appears); a
  handler that ignores the cancellation for ``abort_grace`` seconds is ended ABORTED in
  the catalog anyway (its late result loses against the lease guard). Finally release
  the lease. A second :meth:`stop` skips the wait for running jobs.

Timestamps come from the clock; waits (tick, shutdown timeout) are real seconds, as the
executor's polling is, so tests drive :meth:`tick` by hand with a manual clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from strongroom.catalog import jobs as catalog_jobs
from strongroom.catalog.jobs import ConcurrencyLimits, JobGuard
from strongroom.catalog.types import JobKind, JobState
from strongroom.engine.context import Handler
from strongroom.engine.executor import DEFAULT_LEASE_SECONDS, ThreadPoolJobExecutor
from strongroom.engine.leader import DEFAULT_LEADER_LEASE_SECONDS, Leadership
from strongroom.engine.outcomes import abort
from strongroom.engine.run_summary import finish_ended_runs
from strongroom.engine.scheduler import RunHook, Scheduler, TickReport
from strongroom.engine.states import JobStateMachine
from strongroom.engine.views import job_view
from strongroom.errors import BusyError, ConflictError, StrongroomError
from strongroom.logs import get_logger

SHUTDOWN_REASON: Final = "the daemon is shutting down"
_POLL_SECONDS: Final = 0.05
_logger = get_logger(__name__)

LifecycleHook = Callable[[], object]
"""Runs the lifecycle (cold-tier moves, deletions) once; returns a report to log."""

OutboxHook = Callable[[bool], object]
"""Runs one pass of event delivery (``engine/outbox.py``); given whether this daemon leads
(only the leader routes new events, any daemon delivers). Returns a report to log."""


@dataclass(frozen=True)
class DaemonSettings:
    """How the daemon runs. Seconds are real time; ``lifecycle_interval`` is clock time."""

    tick_seconds: float = 15.0
    workers: int = 4
    shutdown_timeout: float = 60.0
    abort_grace: float = 10.0
    standby: bool = False
    leader_lease_seconds: float = DEFAULT_LEADER_LEASE_SECONDS
    job_lease_seconds: float = DEFAULT_LEASE_SECONDS
    poll_interval: float = 1.0
    lifecycle_interval: timedelta = timedelta(hours=1)
    outbox_seconds: float = 5.0

    def __post_init__(self) -> None:
        if self.tick_seconds <= 0:
            raise ValueError("the tick must be a positive number of seconds")
        if self.workers < 1:
            raise ValueError("the daemon needs at least one worker")
        if self.shutdown_timeout < 0 or self.abort_grace < 0:
            raise ValueError("shutdown timeouts cannot be negative")
        if self.leader_lease_seconds <= 2 * self.tick_seconds:
            raise ValueError(
                f"the leadership lease ({self.leader_lease_seconds}s) must outlast two ticks "
                f"({self.tick_seconds}s each), or the leader loses it between renewals"
            )


@dataclass(frozen=True)
class DaemonTick:
    """One tick: whether this daemon leads, the scheduler's report, the lifecycle's."""

    leading: bool
    report: TickReport | None = None
    lifecycle: object | None = None


@dataclass(frozen=True)
class ShutdownReport:
    """What stopping did to the jobs running here."""

    finished: tuple[str, ...] = ()
    aborted: tuple[str, ...] = ()
    unresponsive: tuple[str, ...] = ()


class Daemon:
    """Scheduler, executor, leadership and lifecycle hook in one loop (see module docs)."""

    def __init__(
        self,
        machine: JobStateMachine,
        handlers: Mapping[JobKind, Handler],
        settings: DaemonSettings | None = None,
        *,
        lifecycle: LifecycleHook | None = None,
        outbox: OutboxHook | None = None,
        leadership: Leadership | None = None,
        limits: ConcurrencyLimits | None = None,
        on_run_started: RunHook | None = None,
    ) -> None:
        self.machine = machine
        self.settings = settings or DaemonSettings()
        self.lifecycle = lifecycle
        self.outbox = outbox
        self._leading = False
        self._outbox_thread: threading.Thread | None = None
        self.executor = ThreadPoolJobExecutor(
            machine,
            handlers,
            limits=limits,
            max_workers=self.settings.workers,
            lease_seconds=self.settings.job_lease_seconds,
            poll_interval=self.settings.poll_interval,
        )
        self.scheduler = Scheduler(machine, executor=self.executor, on_run_started=on_run_started)
        self.leadership = leadership or Leadership(
            machine.catalog, machine.clock, lease_seconds=self.settings.leader_lease_seconds
        )
        self._stop = threading.Event()
        self._stop_now = threading.Event()
        self._next_lifecycle_at: datetime | None = None

    # --- control ------------------------------------------------------------------------

    def start(self, *, background: bool = True) -> bool:
        """Take the lease (or, as a standby, note who has it); start the executor.

        Returns True if this daemon leads. Raises BusyError (not retryable) when
        another daemon leads and this one is not a standby.
        """
        leading = self.leadership.acquire()
        if not leading and not self.settings.standby:
            # Held by another daemon, but not worth a retry: a second daemon must not
            # wait to take over scheduling unless it was started as a standby.
            raise BusyError(
                f"another daemon schedules this catalog: {self.leadership.describe_other()}; "
                "two would fire every rule twice",
                hint="Stop the other daemon, or start this one with --standby to run jobs "
                "and take over scheduling when the other stops.",
                retryable=False,
            )
        if not leading:
            _logger.warning("standing by: %s", self.leadership.describe_other())
        self._leading = leading
        if background:
            self.executor.start()
            if self.outbox is not None:
                self._outbox_thread = threading.Thread(
                    target=self._outbox_loop, name="strongroom-outbox", daemon=True
                )
                self._outbox_thread.start()
        return leading

    def stop(self) -> None:
        """Ask the daemon to stop (safe from a signal handler); a second call stops waiting
        for running jobs and aborts them at once."""
        if self._stop.is_set():
            self._stop_now.set()
        self._stop.set()

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` was called."""
        return self._stop.is_set()

    def tick(self) -> DaemonTick:
        """Renew the lease; as leader, run the scheduler and (when due) the lifecycle hook."""
        self._leading = self.leadership.acquire()
        if not self._leading:
            return DaemonTick(leading=False)
        report = self.scheduler.tick()
        return DaemonTick(leading=True, report=report, lifecycle=self._lifecycle_if_due())

    def run(self, *, once: bool = False) -> ShutdownReport:
        """Run until :meth:`stop` (or, with ``once``, for one tick and the jobs it made
        runnable), then shut down cleanly and return what happened to running jobs.

        Raises ConflictError from :meth:`start` when another daemon leads.
        """
        self.start(background=not once)
        try:
            if once:
                self._run_once()
            else:
                self._loop()
        finally:
            report = self.shutdown()
        return report

    def shutdown(self) -> ShutdownReport:
        """Stop taking work, let running jobs finish (up to the timeout), abort the rest,
        release the lease. Safe to call more than once."""
        self.executor.stop_claiming()
        before = set(self.executor.running_job_ids())
        if before:
            _logger.warning(
                "waiting up to %ss for %d running job(s)",
                self.settings.shutdown_timeout,
                len(before),
            )
        self._wait_for_jobs(self.settings.shutdown_timeout, interruptible=True)
        remaining = self.executor.running_job_ids()
        for job_id in remaining:
            self.executor.cancel_running(job_id, SHUTDOWN_REASON)
        self._wait_for_jobs(self.settings.abort_grace, interruptible=False)
        unresponsive = tuple(self.executor.running_job_ids())
        forced = self._abort_leftovers()
        if self._outbox_thread is not None:
            self._outbox_thread.join(timeout=self.settings.shutdown_timeout)
        self.executor.shutdown(wait=not unresponsive, cancel=True)
        try:
            self.leadership.release()
        except StrongroomError as error:
            _logger.error("could not release the scheduler lease: %s", error)
        aborted = tuple(sorted(set(remaining) | set(forced)))
        return ShutdownReport(
            finished=tuple(sorted(before - set(aborted))),
            aborted=aborted,
            unresponsive=unresponsive,
        )

    # --- internals ----------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except StrongroomError as error:
                # The catalog is unreachable or busy: try again at the next tick.
                _logger.error("scheduler tick failed: %s", error)
            except Exception:
                _logger.exception("scheduler tick hit an unexpected error")
            self._stop.wait(self.settings.tick_seconds)

    def _run_once(self) -> None:
        self.tick()
        worker = threading.Thread(
            target=self.executor.run_until_idle, name="strongroom-once", daemon=True
        )
        worker.start()
        while worker.is_alive() and not self._stop.is_set():
            worker.join(_POLL_SECONDS)
        if not self._stop.is_set():
            finish_ended_runs(self.machine)
            self.deliver_events()

    def deliver_events(self) -> object | None:
        """Run one pass of event delivery now (routing only as leader); log, never raise."""
        if self.outbox is None:
            return None
        try:
            return self.outbox(self._leading)
        except Exception:
            _logger.exception("event delivery failed; it runs again at the next pass")
            return None

    def _outbox_loop(self) -> None:
        while not self._stop.is_set():
            self.deliver_events()
            self._stop.wait(self.settings.outbox_seconds)

    def _lifecycle_if_due(self) -> object | None:
        if self.lifecycle is None:
            return None
        now = self.machine.clock.now()
        if self._next_lifecycle_at is not None and now < self._next_lifecycle_at:
            return None
        self._next_lifecycle_at = now + self.settings.lifecycle_interval
        try:
            report = self.lifecycle()
        except Exception:
            _logger.exception(
                "the lifecycle runner failed; it runs again in %s", self.settings.lifecycle_interval
            )
            return None
        _logger.info("lifecycle ran", extra={"report": repr(report)})
        return report

    def _wait_for_jobs(self, seconds: float, *, interruptible: bool) -> None:
        deadline = time.monotonic() + seconds
        while self.executor.running_job_ids() and time.monotonic() < deadline:
            if interruptible and self._stop_now.is_set():
                return
            time.sleep(_POLL_SECONDS)

    def _abort_leftovers(self) -> list[str]:
        """End ABORTED every job still RUNNING under this daemon's worker id."""
        owner = self.executor.worker_id
        with self.machine.catalog.session(readonly=True) as session:
            mine = [
                job_view(job)
                for job in catalog_jobs.list_jobs(session, states=[JobState.RUNNING])
                if job.lease_owner == owner
            ]
        aborted: list[str] = []
        for job in mine:
            try:
                with self.machine.work() as work:
                    abort(
                        work,
                        job,
                        reason=f"{SHUTDOWN_REASON}; the job's handler did not stop in time",
                        guard=JobGuard(attempt=job.attempt, lease_owner=owner),
                    )
            except ConflictError:
                continue  # it ended meanwhile
            _logger.error("aborted job %s whose handler did not stop", job.id)
            aborted.append(job.id)
        return aborted
