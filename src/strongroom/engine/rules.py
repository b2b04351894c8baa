"""Event rules: which stored events go to which targets (the EventBridge analogue).

A rule's pattern (``config/notifications.py``) holds conditions on the event's type
(shell-style patterns), its resource's type and tags, its state and its vault; every
condition given must hold. :func:`event_facts` reads those from an event's payload (a job
event carries the job; a run event its state and vault; a monitor alert its resource),
and :func:`matching_targets` lists the ``(rule, target key)`` pairs an event owes a
delivery to, leaving out channels whose minimum severity the event does not reach (except for the
resolution of an escalation or of a monitor alert, which must reach the channel that was
alerted; a channel that was not is sent nothing, ``notify/channels.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from strongroom.catalog.event_types import default_severity
from strongroom.config.notifications import EventRule, NotificationsConfig, Severity, severity_rank
from strongroom.engine.events import ESCALATION_RESOLVED, Event

NEVER_ROUTED = frozenset({"*.job.progress"})
"""Types no rule receives, whatever its pattern (progress is never stored)."""
RESOLUTIONS = frozenset({ESCALATION_RESOLVED, "monitor.resolved"})
"""Reach a channel whatever its minimum severity: they close an incident the channel has."""


@dataclass(frozen=True)
class EventFacts:
    """What a pattern can test about an event besides its type."""

    resource: str | None = None
    resource_type: str | None = None
    state: str | None = None
    vault: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)


def event_facts(event: Event, tags_of: Callable[[str], Mapping[str, str]]) -> EventFacts:
    """Return the facts of ``event``; ``tags_of`` gives a resource's tags by name."""
    payload: Mapping[str, Any] = event.payload
    job = payload.get("job")
    source: Mapping[str, Any] = job if isinstance(job, Mapping) else payload
    resource = _text(source.get("resource"))
    return EventFacts(
        resource=resource,
        resource_type=_text(source.get("resource_type")),
        state=_text(source.get("state")),
        vault=_text(source.get("vault")),
        tags=tags_of(resource) if resource else {},
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


_TROUBLE = frozenset({"FAILED", "PARTIAL", "ABORTED", "EXPIRED"})


def severity_of(rule: EventRule, event: Event) -> Severity:
    """Return the severity an event has under ``rule``: the rule's override, else the
    type's default, raised to ``warning`` when the job or run it reports did not complete
    (a failed run's summary reaches a channel that only wants warnings)."""
    if rule.severity is not None:
        return rule.severity
    severity: Severity = default_severity(event.type)
    job = event.payload.get("job")
    state = (job if isinstance(job, Mapping) else event.payload).get("state")
    if state in _TROUBLE and severity == "info":
        return "warning"
    return severity


def rule_matches(rule: EventRule, event: Event, facts: EventFacts) -> bool:
    """Tell whether every condition of ``rule``'s pattern holds for ``event``."""
    if any(fnmatchcase(event.type, pattern) for pattern in NEVER_ROUTED):
        return False
    pattern = rule.pattern
    if not any(fnmatchcase(event.type, wanted) for wanted in pattern.types):
        return False
    checks = (
        (pattern.resource_types, facts.resource_type),
        (pattern.states, facts.state),
        (pattern.vaults, facts.vault),
    )
    for wanted, actual in checks:
        if wanted and actual not in wanted:
            return False
    return all(facts.tags.get(key) == value for key, value in pattern.tags.items())


def matching_targets(
    config: NotificationsConfig, event: Event, facts: EventFacts
) -> list[tuple[str, str]]:
    """Return ``(rule name, target key)`` for every target ``event`` goes to."""
    owed: list[tuple[str, str]] = []
    for rule in config.rules:
        if not rule_matches(rule, event, facts):
            continue
        severity = severity_of(rule, event)
        for index, target in enumerate(rule.targets):
            if target.channel is not None and event.type not in RESOLUTIONS:
                channel = config.channels[target.channel]
                if severity_rank(severity) < severity_rank(channel.min_severity):
                    continue
            owed.append((rule.name, target.key(index)))
    return owed
