"""The scheduler: each tick fires the rules that are due, finishes runs, enforces windows.

A tick (:meth:`Scheduler.tick`), given the clock's *now*:

1. reads every rule with a schedule and its fire state (``rule_schedules``: next and last
   fire time), creating the state of a rule seen for the first time (its next fire time
   counts from when the rule was created) and starting over from *now* when a rule's
   schedule or timezone changed;
2. decides, per due rule, which firing runs (:func:`decide`): only the **latest** due
   firing can run, so a scheduler that was down for a week starts at most one run per
   rule, never a burst. Whether that one runs follows the rule's ``missed_run_policy``:
   ``run-once-in-window`` runs it if its start window is still open; ``skip`` runs it
   only if it is at most ``misfire_grace`` late (an ordinary tick). Everything else is
   recorded as missed (``missed_firings`` and a ``backup.run.skipped`` event);
3. merges rules of one plan firing at the same instant into one run
   (:func:`strongroom.engine.runs.merge_firings`) and starts each run: the rules' fire
   state advances with a conditional update, in the same transaction as the run and its
   jobs, so two schedulers sharing a catalog never fire one instant twice;
4. finishes runs whose jobs all ended (summary and ``backup.run.completed``);
5. asks RUNNING jobs whose completion window closed to stop (they end ABORTED).

All times come from the machine's clock, so tests drive a week of ticks in milliseconds.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from strongroom.catalog import jobs as catalog_jobs
from strongroom.catalog import schedules as catalog_schedules
from strongroom.catalog.schedules import ScheduleHead
from strongroom.config.plans import Selection
from strongroom.config.schedule import Schedule, parse_schedule
from strongroom.engine.executor import Executor
from strongroom.engine.retry import RetryPolicy
from strongroom.engine.run_summary import RunView, finish_ended_runs
from strongroom.engine.runs import (
    RUN_SKIPPED,
    Firing,
    ScheduledRule,
    StartedRun,
    merge_firings,
    run_header,
    scheduled_rule,
    start_failed_run,
    start_run,
)
from strongroom.engine.selection import ResourceIndex, ResourceRef, plan_selections
from strongroom.engine.states import JobStateMachine, Work
from strongroom.errors import ConfigError, StrongroomError
from strongroom.logs import get_logger

DEFAULT_MISFIRE_GRACE: Final = timedelta(minutes=5)
"""How late a firing may be noticed and still count as on time (``skip`` policy)."""
SKIP: Final = "skip"
_MAX_DUE_STEPS: Final = 20_000
_logger = get_logger(__name__)


@dataclass(frozen=True)
class Decision:
    """What a tick does about one due rule.

    ``fire_at`` is the firing to run (``None``: none runs); ``missed`` counts the due
    firings that will not run, from ``first_missed`` to ``last_missed``.
    """

    rule: ScheduledRule
    expected_next: datetime
    next_fire_at: datetime | None
    fire_at: datetime | None
    missed: int = 0
    first_missed: datetime | None = None
    last_missed: datetime | None = None
    reason: str = ""


@dataclass(frozen=True)
class SkippedFiring:
    """Firings of one rule a tick recorded as missed instead of running them."""

    rule: str
    count: int
    first: datetime
    last: datetime
    reason: str


@dataclass(frozen=True)
class TickReport:
    """What one tick did."""

    at: datetime
    started: tuple[StartedRun, ...] = ()
    skipped: tuple[SkippedFiring, ...] = ()
    finished: tuple[RunView, ...] = ()
    cancelled: tuple[str, ...] = ()


@functools.lru_cache(maxsize=1024)
def _parse(expression: str) -> Schedule:
    return parse_schedule(expression)


def decide(
    rule: ScheduledRule,
    schedule: Schedule,
    next_fire_at: datetime,
    now: datetime,
    *,
    misfire_grace: timedelta = DEFAULT_MISFIRE_GRACE,
) -> Decision | None:
    """Decide what to do about ``rule`` whose stored next fire time is ``next_fire_at``.

    Returns ``None`` when the rule is not due. Otherwise the latest due firing runs if
    the missed-run policy allows it (see the module docstring) and every other due
    firing is missed; the next fire time is the first one after ``now``.
    """
    if next_fire_at > now:
        return None
    count, previous, latest = _due_firings(schedule, rule.timezone, next_fire_at, now)
    if rule.missed_run_policy == SKIP:
        runs = now - latest <= misfire_grace
        reason = f"more than {misfire_grace} late and the rule's missed-run policy is skip"
    else:
        window = rule.start_window_minutes
        runs = not window or now < latest + timedelta(minutes=window)
        reason = "its start window closed before the scheduler could fire it"
    missed = count - 1 + (0 if runs else 1)
    return Decision(
        rule=rule,
        expected_next=next_fire_at,
        next_fire_at=_utc(schedule.next_after(now, rule.timezone)),
        fire_at=latest if runs else None,
        missed=missed,
        first_missed=next_fire_at if missed else None,
        last_missed=(previous if runs else latest) if missed else None,
        reason=reason if missed else "",
    )


RunHook = Callable[[Work, StartedRun], None]
"""Called in the transaction that starts a run, after its jobs were queued (the daemon
records them in the audit trail with it)."""


class Scheduler:
    """Fires due rules into runs and jobs in the catalog (see the module docstring).

    ``executor`` (optional) is woken for new jobs and told at once when a job running in
    this process must stop; other processes learn it at their next lease renewal.
    ``on_run_started`` (optional) runs as the last step of the transaction that starts a
    run: what it writes commits (or fails) with the run and its jobs.
    """

    def __init__(
        self,
        machine: JobStateMachine,
        *,
        executor: Executor | None = None,
        misfire_grace: timedelta = DEFAULT_MISFIRE_GRACE,
        default_retry_policy: RetryPolicy | None = None,
        on_run_started: RunHook | None = None,
    ) -> None:
        self.machine = machine
        self.executor = executor
        self.misfire_grace = misfire_grace
        self.default_retry_policy = default_retry_policy
        self.on_run_started = on_run_started
        self._broken: set[tuple[int, str]] = set()

    def tick(self) -> TickReport:
        """Fire what is due, finish ended runs, stop overdue jobs; return what happened."""
        now = self.machine.clock.now()
        decisions = self.due(now)
        started, skipped = self._apply(decisions)
        finished = finish_ended_runs(self.machine)
        cancelled = self.enforce_completion_windows()
        return TickReport(now, tuple(started), tuple(skipped), tuple(finished), tuple(cancelled))

    def due(self, now: datetime) -> list[Decision]:
        """Return a decision for every rule due at ``now`` (setting up new rules' state).

        Only the rules' schedules and fire states are read for every rule; the rules that
        are due are then read in full.
        """
        with self.machine.catalog.session(readonly=True) as session:
            heads = catalog_schedules.list_schedule_heads(session)
        due: dict[int, tuple[Schedule, datetime]] = {}
        fresh: list[tuple[ScheduleHead, Schedule]] = []
        for head in heads:
            schedule = self._schedule(head)
            if schedule is None:
                continue
            if (head.state_schedule, head.state_timezone) != (head.schedule, head.timezone):
                fresh.append((head, schedule))
            elif head.next_fire_at is not None and head.next_fire_at <= now:
                due[head.rule_id] = (schedule, head.next_fire_at)
        for head, schedule, next_fire_at in self._set_up(fresh, now):
            if next_fire_at <= now:
                due[head.rule_id] = (schedule, next_fire_at)
        if not due:
            return []
        with self.machine.catalog.session(readonly=True) as session:
            rules = [scheduled_rule(row) for row in catalog_schedules.load_rules(session, due)]
        decisions = (
            decide(rule, *due[rule.id], now, misfire_grace=self.misfire_grace) for rule in rules
        )
        return [decision for decision in decisions if decision is not None]

    def enforce_completion_windows(self) -> list[str]:
        """Ask RUNNING jobs whose completion window closed to stop; return their ids.

        Each then ends ABORTED when its handler sees the request: in this process at once
        (through the executor), in another at its next lease renewal.
        """
        now = self.machine.clock.now()
        with self.machine.catalog.session(readonly=True) as session:
            overdue = [
                (job.id, job.complete_by)
                for job in catalog_jobs.list_overdue_running(session, now=now)
            ]
        if not overdue:
            return []
        reasons: dict[str, str] = {}
        with self.machine.catalog.session() as session:
            for job_id, complete_by in overdue:
                when = complete_by.isoformat() if complete_by is not None else "?"
                reasons[job_id] = f"completion window closed at {when}"
                catalog_jobs.request_cancel(session, job_id, at=now, reason=reasons[job_id])
        for job_id, reason in reasons.items():
            _logger.warning("stopping a job past its completion window", extra={"job_id": job_id})
            if self.executor is not None:
                self.executor.cancel_running(job_id, reason)
        return list(reasons)

    # --- deciding ----------------------------------------------------------------------

    def _schedule(self, head: ScheduleHead) -> Schedule | None:
        try:
            return _parse(head.schedule)
        except ConfigError as error:
            if (head.rule_id, head.schedule) not in self._broken:
                self._broken.add((head.rule_id, head.schedule))
                _logger.error(
                    "rule %s/%s has an invalid schedule and never fires: %s",
                    head.plan,
                    head.rule,
                    error,
                )
            return None

    def _set_up(
        self, fresh: Sequence[tuple[ScheduleHead, Schedule]], now: datetime
    ) -> list[tuple[ScheduleHead, Schedule, datetime]]:
        """Create (or, after a schedule change, restart) the fire state of ``fresh`` rules;
        return each with its next fire time (rules that never fire again are left out)."""
        ready: list[tuple[ScheduleHead, Schedule, datetime]] = []
        if not fresh:
            return ready
        with self.machine.catalog.session() as session:
            for head, schedule in fresh:
                if head.state_schedule is None:
                    next_fire_at = _utc(schedule.next_after(head.created_at, head.timezone))
                    written = catalog_schedules.insert_schedule_state(
                        session,
                        rule_id=head.rule_id,
                        schedule=head.schedule,
                        timezone=head.timezone,
                        next_fire_at=next_fire_at,
                        at=now,
                    )
                else:
                    # A changed schedule starts from now: the new one has no past to catch up.
                    next_fire_at = _utc(schedule.next_after(now, head.timezone))
                    written = catalog_schedules.advance_schedule_state(
                        session,
                        rule_id=head.rule_id,
                        expected_next=head.next_fire_at,
                        schedule=head.schedule,
                        timezone=head.timezone,
                        next_fire_at=next_fire_at,
                        at=now,
                    )
                if written and next_fire_at is not None:
                    ready.append((head, schedule, next_fire_at))
        return ready

    # --- firing ------------------------------------------------------------------------

    def _apply(self, decisions: Sequence[Decision]) -> tuple[list[StartedRun], list[SkippedFiring]]:
        started: list[StartedRun] = []
        skipped: list[SkippedFiring] = []
        by_rule = {decision.rule.id: decision for decision in decisions}
        for decision in decisions:
            if decision.fire_at is None:
                with self.machine.work() as work:
                    if self._advance(work, decision, run_id=None):
                        skipped.extend(self._record_missed(work, [decision]))
        firings = merge_firings(
            (decision.rule, decision.fire_at) for decision in decisions if decision.fire_at
        )
        if not firings:
            return started, skipped
        resources = self._resources()
        selections: dict[int, list[Selection] | ConfigError] = {}
        for firing in firings:
            outcome = self._fire(firing, by_rule, resources, selections)
            if outcome is not None:
                run, missed = outcome
                started.append(run)
                skipped.extend(missed)
        return started, skipped

    def _fire(
        self,
        firing: Firing,
        by_rule: dict[int, Decision],
        resources: ResourceIndex,
        selections: dict[int, list[Selection] | ConfigError],
    ) -> tuple[StartedRun, list[SkippedFiring]] | None:
        lead = firing.lead
        if lead.plan_id not in selections:
            try:
                selections[lead.plan_id] = plan_selections(lead.plan, lead.selections)
            except ConfigError as error:
                selections[lead.plan_id] = error
        chosen = selections[lead.plan_id]
        run_id = str(uuid.uuid4())
        try:
            with self.machine.work() as work:
                kept = self._claim(work, firing, by_rule, run_id)
                if kept is None:
                    return None
                if isinstance(chosen, ConfigError):
                    raise chosen
                run = start_run(
                    work,
                    kept,
                    chosen,
                    resources,
                    run_id=run_id,
                    default_retry_policy=self.default_retry_policy,
                )
                missed = self._record_missed(work, [by_rule[rule.id] for rule in kept.rules])
                if self.on_run_started is not None:
                    self.on_run_started(work, run)
        except StrongroomError as error:
            if error.retryable:
                raise  # the catalog is unreachable or busy: the next tick tries again
            _logger.error("rule %s could not fire: %s", lead.qualified_name, error)
            with self.machine.work() as work:
                kept = self._claim(work, firing, by_rule, run_id)
                if kept is not None:
                    start_failed_run(work, kept, error, run_id=run_id)
                    self._record_missed(work, [by_rule[rule.id] for rule in kept.rules])
            return None
        _logger.info(
            "rule fired",
            extra={
                "rule": lead.qualified_name,
                "run_id": run.run_id,
                "jobs": len(run.job_ids),
                "fired_at": firing.fired_at.isoformat(),
            },
        )
        if self.executor is not None:
            for job_id in run.job_ids:
                self.executor.submit(job_id)
        return run, missed

    def _claim(
        self, work: Work, firing: Firing, by_rule: dict[int, Decision], run_id: str
    ) -> Firing | None:
        """Advance each rule's fire state; keep the rules this scheduler won."""
        kept = tuple(
            rule for rule in firing.rules if self._advance(work, by_rule[rule.id], run_id=run_id)
        )
        return Firing(kept, firing.fired_at) if kept else None

    def _advance(self, work: Work, decision: Decision, *, run_id: str | None) -> bool:
        return catalog_schedules.advance_schedule_state(
            work.session,
            rule_id=decision.rule.id,
            expected_next=decision.expected_next,
            schedule=decision.rule.schedule,
            timezone=decision.rule.timezone,
            next_fire_at=decision.next_fire_at,
            at=work.now,
            fired_at=decision.fire_at,
            run_id=run_id,
            missed=decision.missed,
        )

    def _record_missed(self, work: Work, decisions: Iterable[Decision]) -> list[SkippedFiring]:
        recorded: list[SkippedFiring] = []
        for decision in decisions:
            if not decision.missed or decision.first_missed is None:
                continue
            last = decision.last_missed or decision.first_missed
            skipped = SkippedFiring(
                decision.rule.qualified_name,
                decision.missed,
                decision.first_missed,
                last,
                decision.reason,
            )
            work.publish(
                RUN_SKIPPED,
                decision.rule.qualified_name,
                run_header(Firing((decision.rule,), last))
                | {
                    "count": skipped.count,
                    "first": skipped.first.isoformat(),
                    "last": skipped.last.isoformat(),
                    "policy": decision.rule.missed_run_policy,
                    "reason": skipped.reason,
                },
            )
            _logger.warning(
                "missed firings of rule %s: %d (%s)",
                skipped.rule,
                skipped.count,
                skipped.reason,
            )
            recorded.append(skipped)
        return recorded

    def _resources(self) -> ResourceIndex:
        with self.machine.catalog.session(readonly=True) as session:
            rows = catalog_schedules.list_resource_tags(session)
        return ResourceIndex(ResourceRef(*row) for row in rows)


def _utc(moment: datetime | None) -> datetime | None:
    return moment.astimezone(UTC) if moment is not None else None


def _due_firings(
    schedule: Schedule, timezone: str, first: datetime, now: datetime
) -> tuple[int, datetime | None, datetime]:
    """Count the fire times from ``first`` (one, due) to ``now``; return the count, the
    one before the latest, and the latest. Past a bound the count is a lower bound and
    the walk jumps to shortly before ``now``."""
    count, previous, latest = 1, None, first
    jumped = False
    moment: Any = schedule.next_after(first, timezone)
    while moment is not None and moment <= now:
        count += 1
        previous, latest = latest, moment.astimezone(UTC)
        if count >= _MAX_DUE_STEPS and not jumped:
            jumped = True
            moment = schedule.next_after(max(latest, now - timedelta(days=1)), timezone)
        else:
            moment = schedule.next_after(moment, timezone)
    return count, previous, latest
