"""Escalation through PagerDuty Events API v2: trigger and resolve by a stable dedup key.

https://developer.pagerduty.com/docs/events-api-v2/trigger-events/: one ``trigger``
per incident (PagerDuty also folds triggers with the same ``dedup_key`` into one
incident), ``resolve`` with the same key when the component succeeds again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal

from strongroom.notify.http import post_json

PAGERDUTY_SEVERITY: Final = {"info": "info", "warning": "warning", "critical": "critical"}


def page(
    events_url: str,
    routing_key: str,
    *,
    action: Literal["trigger", "resolve"],
    dedup_key: str,
    summary: str = "",
    severity: str = "critical",
    source: str = "strongroom",
    details: Mapping[str, Any] | None = None,
) -> None:
    """Send one Events v2 message; raises as :func:`~strongroom.notify.http.post_json`."""
    document: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": dedup_key,
    }
    if action == "trigger":
        document["payload"] = {
            "summary": summary[:1024],
            "source": source,
            "severity": PAGERDUTY_SEVERITY.get(severity, "error"),
            "component": str((details or {}).get("component") or ""),
            "custom_details": dict(details or {}),
        }
    post_json(events_url, document)
