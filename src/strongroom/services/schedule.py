"""Scheduling as users ask for it: preview when the rules of a plan fire.

:meth:`ScheduleService.preview` reads a plan's rules from the catalog and works out their next
fire times in each rule's timezone, exactly as the scheduler will (same parser, same
``rate()`` anchor). The daemon that fires them is assembled in :mod:`strongroom.daemon`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from strongroom.catalog import resources as catalog_resources
from strongroom.catalog import schedules as catalog_schedules
from strongroom.config.schedule import parse_schedule
from strongroom.errors import ConfigError, NotFoundError
from strongroom.services.context import AppContext

MAX_PREVIEW: Final = 1000


@dataclass(frozen=True)
class RulePreview:
    """When one rule fires next, in its own timezone."""

    plan: str
    rule: str
    schedule: str | None
    timezone: str
    description: str
    fire_times: tuple[datetime, ...]
    last_fired_at: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        """Return the preview as JSON, times in ISO 8601 with their offset."""
        return {
            "plan": self.plan,
            "rule": self.rule,
            "schedule": self.schedule,
            "timezone": self.timezone,
            "description": self.description,
            "fire_times": [moment.isoformat() for moment in self.fire_times],
            "last_fired_at": self.last_fired_at.isoformat() if self.last_fired_at else None,
        }


def parse_time(text: str) -> datetime:
    """Read an ISO 8601 time for ``--from``; one without an offset is taken as UTC.

    Raises ConfigError for text that is not a time.
    """
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(
            f"{text!r} is not an ISO 8601 time",
            hint="Write it like 2030-01-01T03:00:00+01:00 (or 2030-01-01, read as UTC).",
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class ScheduleService:
    """``schedule preview``: when the rules of a plan fire next, on one application context."""

    def __init__(self, context: AppContext) -> None:
        self.context = context

    def preview(
        self,
        plan: str,
        *,
        rule: str | None = None,
        count: int = 5,
        start: datetime | None = None,
    ) -> list[RulePreview]:
        """Return the next ``count`` fire times after ``start`` (default now) of each rule of
        ``plan`` (or only ``rule``), in the rule's timezone.

        Raises NotFoundError for an unknown plan or rule, ConfigError for a count outside
        0..1000 or an invalid stored schedule.
        """
        context = self.context
        if not 0 <= count <= MAX_PREVIEW:
            raise ConfigError(f"--count {count} is outside 0..{MAX_PREVIEW}")
        after = start or context.now()
        with context.catalog.session(readonly=True) as session:
            plans = {row.name: row for row in catalog_resources.list_plans(session)}
            if plan not in plans:
                raise NotFoundError(
                    f"no plan named {plan!r} in the catalog",
                    hint="Declare it in a config file and run 'strongroom apply -f FILE'.",
                )
            rules = sorted(plans[plan].rules, key=lambda row: row.name)
            if rule is not None:
                rules = [row for row in rules if row.name == rule]
                if not rules:
                    raise NotFoundError(f"plan {plan!r} has no rule named {rule!r}")
            previews = []
            for row in rules:
                state = catalog_schedules.get_schedule_state(session, row.id)
                previews.append(
                    _preview(
                        plan,
                        row.name,
                        row.schedule,
                        row.timezone,
                        after,
                        count,
                        last_fired_at=state.last_fired_at if state is not None else None,
                    )
                )
        return previews


def _preview(
    plan: str,
    rule: str,
    expression: str | None,
    timezone: str,
    after: datetime,
    count: int,
    *,
    last_fired_at: datetime | None,
) -> RulePreview:
    if not expression:
        return RulePreview(plan, rule, None, timezone, "on demand only", (), last_fired_at)
    schedule = parse_schedule(expression)
    times = schedule.next_fire_times(after, count, timezone)
    return RulePreview(
        plan, rule, expression, timezone, schedule.describe(), tuple(times), last_fired_at
    )
