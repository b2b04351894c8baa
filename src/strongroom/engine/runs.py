"""Runs: one firing of a rule over every resource its plan selects, one backup job each.

A *firing* is one rule (or several rules of one plan merged, see :func:`merge_firings`)
at one scheduled instant. Starting it creates one ``runs`` row (RUNNING) and, in the same
transaction, one PENDING backup job per selected resource, with:

* windows counted from the **scheduled** instant, as AWS Backup counts them: the job
  must start by ``fired_at + start window`` (else EXPIRED) and finish by ``fired_at +
  completion window`` (else it is cancelled and ends ABORTED);
* the rule's retry policy and partial setting, and params carrying what the backup
  handler needs from the rule: ``lifecycle``, ``recovery_point_tags``, ``copy_actions``,
  ``rules`` (every merged rule) and ``fired_at``.

No pile-up: a resource that still has a waiting or running backup job of the firing's
rule (for a merged firing: of its lead rule, which the new job would carry) gets no second
one; the run records it as skipped, with that job's id.
How a run ends and what its summary holds is :mod:`strongroom.engine.run_summary`.
"""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from strongroom.catalog import runs as catalog_runs
from strongroom.catalog.models import MISSED_RUN_ONCE, Rule
from strongroom.catalog.types import JobKind, JobState
from strongroom.config.plans import Selection
from strongroom.engine.retry import RetryPolicy
from strongroom.engine.selection import ResourceIndex
from strongroom.engine.states import Work
from strongroom.engine.views import JobView

RUN_STARTED: Final = "backup.run.started"
"""A rule fired: a run and its jobs exist (payload: run, plan, rules, resources)."""
RUN_SKIPPED: Final = "backup.run.skipped"
"""Firings of a rule were skipped (missed while the scheduler was down, by policy)."""
RUN_COMPLETED: Final = "backup.run.completed"
"""A run ended, whatever its outcome: the payload is its summary (``state`` says how)."""


@dataclass(frozen=True)
class ScheduledRule:
    """A rule as the scheduler reads it: schedule, windows, target, lifecycle, policies."""

    id: int
    plan_id: int
    plan: str
    name: str
    schedule: str
    timezone: str
    vault_id: int
    vault: str
    start_window_minutes: int | None = None
    completion_window_minutes: int | None = None
    lifecycle: Mapping[str, Any] = field(default_factory=dict)
    recovery_point_tags: Mapping[str, str] = field(default_factory=dict)
    copy_actions: Sequence[Mapping[str, Any]] = ()
    retry_policy: Mapping[str, Any] = field(default_factory=dict)
    allow_partial: bool = False
    missed_run_policy: str = MISSED_RUN_ONCE
    selections: Any = None
    created_at: datetime | None = None

    @property
    def qualified_name(self) -> str:
        """``plan/rule``, as jobs and events name a rule."""
        return f"{self.plan}/{self.name}"

    def retention_key(self) -> tuple[float, float]:
        """How long this rule keeps a recovery point: (delete after, move to cold after),
        in days, unset meaning forever. Larger keeps longer."""
        delete = self.lifecycle.get("delete_after_days")
        cold = self.lifecycle.get("move_to_cold_after_days")
        return (
            math.inf if delete is None else float(delete),
            math.inf if cold is None else float(cold),
        )


def scheduled_rule(row: Rule) -> ScheduledRule:
    """Snapshot a rule row (its plan and vault loaded) for the scheduler."""
    return ScheduledRule(
        id=row.id,
        plan_id=row.plan_id,
        plan=row.plan.name,
        name=row.name,
        schedule=row.schedule or "",
        timezone=row.timezone,
        vault_id=row.vault_id,
        vault=row.vault.name,
        start_window_minutes=row.start_window_minutes,
        completion_window_minutes=row.completion_window_minutes,
        lifecycle=dict(row.lifecycle),
        recovery_point_tags=dict(row.recovery_point_tags),
        copy_actions=[dict(action) for action in row.copy_actions],
        retry_policy=dict(row.retry_policy),
        allow_partial=row.allow_partial,
        missed_run_policy=row.missed_run_policy,
        selections=row.plan.selections,
        created_at=row.created_at,
    )


@dataclass(frozen=True)
class Firing:
    """Rules of one plan and one vault that fire at the same instant: one run, one job
    per resource. ``rules[0]`` keeps recovery points longest and leads the merge."""

    rules: tuple[ScheduledRule, ...]
    fired_at: datetime

    @property
    def lead(self) -> ScheduledRule:
        """The rule with the longest retention: its lifecycle, retry policy and partial
        setting apply to the merged jobs."""
        return self.rules[0]

    @property
    def start_by(self) -> datetime | None:
        """The end of the longest start window of the merged rules, or ``None``."""
        return self._window_end([rule.start_window_minutes for rule in self.rules])

    @property
    def complete_by(self) -> datetime | None:
        """The end of the longest completion window of the merged rules, or ``None``."""
        return self._window_end([rule.completion_window_minutes for rule in self.rules])

    def recovery_point_tags(self) -> dict[str, str]:
        """The union of the rules' tags; on a clash the lead rule's value wins."""
        tags: dict[str, str] = {}
        for rule in reversed(self.rules):
            tags.update(rule.recovery_point_tags)
        return tags

    def copy_actions(self) -> list[dict[str, Any]]:
        """Every rule's copy actions, each distinct one once."""
        actions: list[dict[str, Any]] = []
        for rule in self.rules:
            for action in rule.copy_actions:
                if dict(action) not in actions:
                    actions.append(dict(action))
        return actions

    def params(self) -> dict[str, Any]:
        """The params every backup job of this firing carries."""
        return {
            "fired_at": self.fired_at.isoformat(),
            "rules": [rule.qualified_name for rule in self.rules],
            "lifecycle": dict(self.lead.lifecycle),
            "recovery_point_tags": self.recovery_point_tags(),
            "copy_actions": self.copy_actions(),
        }

    def _window_end(self, minutes: list[int | None]) -> datetime | None:
        given = [value for value in minutes if value]
        return self.fired_at + timedelta(minutes=max(given)) if given else None


def merge_firings(due: Iterable[tuple[ScheduledRule, datetime]]) -> list[Firing]:
    """Group rules that fire at the same instant for the same plan and vault.

    A resource is then backed up once, kept as long as the longest-keeping rule wants
    (AWS Backup's rule for overlapping rules of a plan), with every rule's tags. Rules
    writing to different vaults are not merged: each vault gets its recovery point.
    """
    groups: dict[tuple[int, datetime, int], list[ScheduledRule]] = defaultdict(list)
    for rule, fired_at in due:
        groups[(rule.plan_id, fired_at, rule.vault_id)].append(rule)
    firings = [
        Firing(
            tuple(
                sorted(
                    rules,
                    key=lambda rule: (
                        tuple(-part for part in rule.retention_key()),
                        rule.name,
                    ),
                )
            ),
            fired_at,
        )
        for (_, fired_at, _), rules in groups.items()
    ]
    return sorted(firings, key=lambda firing: (firing.fired_at, firing.lead.qualified_name))


@dataclass(frozen=True)
class StartedRun:
    """A run just started: its id, the jobs it queued and the resources it skipped."""

    run_id: str
    firing: Firing
    job_ids: tuple[str, ...]
    skipped: tuple[Mapping[str, Any], ...]


def start_run(
    work: Work,
    firing: Firing,
    selections: Sequence[Selection],
    resources: ResourceIndex,
    *,
    run_id: str | None = None,
    default_retry_policy: RetryPolicy | None = None,
) -> StartedRun:
    """Create the run of ``firing`` and one PENDING backup job per selected resource.

    Runs inside ``work`` (the caller's transaction, which also advanced the rules' fire
    state), so the run exists exactly when the firing was recorded. Raises ConfigError
    for an invalid stored retry policy.
    """
    lead = firing.lead
    policy = RetryPolicy.from_mapping(lead.retry_policy, default_retry_policy)
    selected = resources.select(selections)
    busy = catalog_runs.active_backups(work.session, [lead.id])
    run_id = run_id or str(uuid.uuid4())
    run = catalog_runs.create_run(
        work.session,
        run_id=run_id,
        plan_id=lead.plan_id,
        rule_id=lead.id,
        fired_at=firing.fired_at,
        summary={},
    )
    params = firing.params()
    jobs: list[JobView] = []
    skipped: list[dict[str, Any]] = []
    for resource in selected:
        if resource.id in busy:
            skipped.append(
                {
                    "resource": resource.name,
                    "job_id": busy[resource.id],
                    "reason": "a backup of this rule for the resource is still queued or running",
                }
            )
            continue
        jobs.append(
            JobView(
                id=str(uuid.uuid4()),
                kind=JobKind.BACKUP,
                state=JobState.PENDING,
                resource=resource.name,
                resource_type=resource.type,
                vault=lead.vault,
                rule=lead.qualified_name,
                run_id=run_id,
                attempt=1,
                max_attempts=policy.max_attempts,
                retry_interval_seconds=policy.interval_seconds,
                retry_backoff_rate=policy.backoff_rate,
                allow_partial=lead.allow_partial,
                created_at=work.now,
                updated_at=work.now,
                params=params,
                start_by=firing.start_by,
                complete_by=firing.complete_by,
                resource_id=resource.id,
                vault_id=lead.vault_id,
                rule_id=lead.id,
            )
        )
    work.create_pending(jobs, reason=f"queued by run {run_id}")
    job_ids = [job.id for job in jobs]
    run.summary = run_header(firing) | {"selected": len(selected), "skipped": skipped}
    work.publish(
        RUN_STARTED,
        run_id,
        run_header(firing) | {"run_id": run_id, "jobs": len(job_ids), "skipped": len(skipped)},
    )
    return StartedRun(run_id, firing, tuple(job_ids), tuple(skipped))


def start_failed_run(
    work: Work, firing: Firing, error: Exception, *, run_id: str | None = None
) -> str:
    """Record a firing that could not start (e.g. invalid stored selections) as a FAILED
    run, so that the failure is seen rather than retried every tick; return its id."""
    run_id = run_id or str(uuid.uuid4())
    catalog_runs.create_run(
        work.session,
        run_id=run_id,
        plan_id=firing.lead.plan_id,
        rule_id=firing.lead.id,
        fired_at=firing.fired_at,
        summary={},
    )
    summary = run_header(firing) | {
        "selected": 0,
        "skipped": [],
        "error": {"code": getattr(error, "code", type(error).__name__), "message": str(error)},
    }
    catalog_runs.finish_run(
        work.session, run_id, state=JobState.FAILED, at=work.now, summary=summary
    )
    work.publish(RUN_COMPLETED, run_id, summary | {"run_id": run_id, "state": "FAILED"})
    return run_id


def run_header(firing: Firing) -> dict[str, Any]:
    """What every run's summary and events say about its firing."""
    return {
        "plan": firing.lead.plan,
        "rule": firing.lead.name,
        "rules": [rule.name for rule in firing.rules],
        "vault": firing.lead.vault,
        "fired_at": firing.fired_at.isoformat(),
        "allow_partial": firing.lead.allow_partial,
    }
