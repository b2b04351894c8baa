"""What a notification says, in strongroom's words: one :class:`Message` per event.

Built from the event in its JSON shape (docs/events.md) and, for a run, the run's
summary. A job message carries the component, its status, sizes, duration, vault,
recovery point and verification status; a failure also the error, its hint, the
attempts, where to read the job's log and the next steps. A run message carries one row
per resource and the totals. Rendered as HTML and plain text by Jinja2 templates
(``templates/``), autoescaped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import jinja2

from strongroom import errors

_ENVIRONMENT: Final = jinja2.Environment(
    loader=jinja2.PackageLoader("strongroom.notify", "templates"),
    autoescape=jinja2.select_autoescape(["html", "html.j2"], default_for_string=False),
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=jinja2.StrictUndefined,
)
_FAILED_STATES: Final = frozenset({"FAILED", "ABORTED", "EXPIRED", "PARTIAL"})


@dataclass(frozen=True)
class Message:
    """A rendered notification: title, plain text, HTML, and the facts they show."""

    title: str
    text: str
    html: str
    severity: str
    facts: Mapping[str, Any] = field(default_factory=dict)


def component_of(job: Mapping[str, Any]) -> str:
    """Return a job's component as failure records name it: ``kind/resource[/plan/rule]``."""
    parts = (job["kind"], job.get("resource") or job.get("vault") or "-", job.get("rule"))
    return "/".join(part for part in parts if part)


def _hint_of(code: str | None) -> str:
    """Return the hint strongroom's error tree gives for an error code ("" when none)."""
    pending: list[type[errors.StrongroomError]] = [errors.StrongroomError]
    while pending:
        cls = pending.pop()
        if cls.code == code:
            return cls.default_hint
        pending.extend(cls.__subclasses__())
    return ""


def size(value: Any) -> str:
    """Return a byte count for people (``1.5 MiB``); ``-`` when unknown."""
    if not isinstance(value, int | float):
        return "-"
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if amount < 1024 or unit == "TiB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return "-"


def seconds(value: Any) -> str:
    """Return a duration for people (``2m 5s``); ``-`` when unknown."""
    if not isinstance(value, int | float):
        return "-"
    whole = round(value)
    minutes, rest = divmod(whole, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {rest}s" if minutes else f"{value:.1f}s"


def _job_facts(event: Mapping[str, Any]) -> dict[str, Any]:
    payload = event["payload"]
    job = payload["job"]
    result = job.get("result") or {}
    error = job.get("error")
    component = payload.get("component") or component_of(job)
    failed = job["state"] in _FAILED_STATES or event["type"] == "backup.escalation"
    facts: dict[str, Any] = {
        "component": component,
        "status": job["state"],
        "kind": job["kind"],
        "resource": job.get("resource"),
        "resource_type": job.get("resource_type"),
        "vault": job.get("vault"),
        "rule": job.get("rule"),
        "job_id": job["id"],
        "point_id": result.get("point_id") or job["params"].get("point_id"),
        "logical_size": size(result.get("logical_size")),
        "stored_size": size(result.get("stored_size")),
        "new_stored_size": size(result.get("new_stored_size")),
        "duration": seconds(job.get("duration_seconds")),
        "verification": _verification(job),
        "failed": failed,
        "attempts": f"{job['attempt']} of {job['max_attempts']}",
        "log": f"strongroom describe-job {job['id']}",
    }
    if failed:
        code = error["code"] if error else None
        facts |= {
            "error_code": code or "-",
            "error": (error or {}).get("message") or payload.get("reason") or "-",
            "hint": _hint_of(code),
            "retryable": bool(error and error.get("retryable")),
            "next_steps": _next_steps(job, code),
        }
    return facts


def _verification(job: Mapping[str, Any]) -> str:
    if job["kind"] != "verify":
        return "not verified by this job"
    if job["state"] != "COMPLETED":
        return "failed"
    what = "restore test passed" if job["params"].get("restore_test") else "verified"
    return what + (", every byte read" if job["params"].get("read_data") else "")


def _next_steps(job: Mapping[str, Any], code: str | None) -> list[str]:
    steps = [f"Read the job's history: strongroom describe-job {job['id']}"]
    if code in {"ThrottlingException", "ServiceUnavailableException", "NetworkError"}:
        steps.append("The error is transient: the next scheduled run retries on its own.")
    if job["kind"] == "backup" and job.get("resource"):
        steps.append(f"Run it again once fixed: strongroom start-backup {job['resource']} --wait")
    steps.append("Check the daemon's log around the job's finish time.")
    return steps


def _run_facts(event: Mapping[str, Any], details: Mapping[str, Any]) -> dict[str, Any]:
    payload = event["payload"]
    summary = details.get("run_summary") or payload
    rows = [
        {
            "resource": entry.get("resource") or "-",
            "state": entry.get("state") or "-",
            "attempts": entry.get("attempts"),
            "duration": seconds(entry.get("duration_seconds")),
            "logical_size": size(entry.get("logical_size")),
            "stored_size": size(entry.get("stored_size")),
            "point_id": entry.get("recovery_point") or "-",
            "error": (entry.get("error") or {}).get("message") or "",
        }
        for entry in summary.get("resources", payload.get("problems", []))
    ]
    return {
        "run_id": payload.get("run_id") or event["subject"],
        "plan": payload.get("plan"),
        "rule": payload.get("rule"),
        "vault": payload.get("vault"),
        "status": payload.get("state"),
        "counts": payload.get("counts") or {},
        "logical_size": size(payload.get("logical_size")),
        "stored_size": size(payload.get("stored_size")),
        "duration": seconds(payload.get("duration_seconds")),
        "rows": rows,
        "failed": payload.get("state") != "COMPLETED",
    }


def build_message(
    event: Mapping[str, Any], *, severity: str, details: Mapping[str, Any] | None = None
) -> Message:
    """Render ``event`` (its JSON document) as a :class:`Message`."""
    details = details or {}
    payload = event["payload"]
    if isinstance(payload.get("job"), Mapping):
        template, facts = "job", _job_facts(event)
        title = f"{facts['status']}: {facts['component']}"
    elif event["type"] == "backup.run.completed":
        template, facts = "run", _run_facts(event, details)
        title = f"run {facts['status']}: {facts['plan']}/{facts['rule']}"
    else:
        template = "generic"
        facts = {"fields": dict(payload)}
        title = f"{event['type']}: {event['subject']}"
        if event["type"] == "monitor.resolved":
            title = f"resolved: {payload.get('check')} {event['subject']}"
        elif event["type"].startswith("monitor.") and isinstance(payload.get("message"), str):
            title = f"{event['type']}: {payload['message']}"
    context = {"event": event, "facts": facts, "severity": severity, "title": title}
    text = _ENVIRONMENT.get_template(f"{template}.txt.j2").render(context)
    html = _ENVIRONMENT.get_template(f"{template}.html.j2").render(context)
    return Message(title=title, text=text, html=html, severity=severity, facts=facts)
