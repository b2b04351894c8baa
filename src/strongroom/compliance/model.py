"""What a control says: a status, findings in words, and the evidence it rests on.

``no_evidence`` is never a pass: a period without backups, a resource never restore-tested
or a document nobody named reads as "no evidence" (or "fail" where the control demands
the thing), and a framework with any such control is not compliant.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """The outcome of one control (or, worst first, of a framework)."""

    FAIL = "fail"
    NO_EVIDENCE = "no_evidence"
    PASS = "pass"  # noqa: S105 (a status, not a password)
    NOT_APPLICABLE = "not_applicable"


_RANK = {Status.FAIL: 0, Status.NO_EVIDENCE: 1, Status.PASS: 2, Status.NOT_APPLICABLE: 3}


def worst(statuses: list[Status]) -> Status:
    """Return the overall status of several: fail, else no evidence, else pass (an empty
    list, or only not-applicable ones, is no evidence: nothing was shown to hold)."""
    applicable = [status for status in statuses if status is not Status.NOT_APPLICABLE]
    if not applicable:
        return Status.NO_EVIDENCE
    return min(applicable, key=_RANK.__getitem__)


@dataclass(frozen=True)
class Evidence:
    """One piece of evidence: its kind (``job``, ``point``, ``restore-test``, ``audit``,
    ``vault``, ``rule``, ``resource``, ``day``, ``erasure``), its id and a note."""

    kind: str
    ref: str
    note: str = ""

    def as_json(self) -> dict[str, str]:
        """The evidence as JSON."""
        return {"kind": self.kind, "ref": self.ref, "note": self.note}


@dataclass(frozen=True)
class ControlResult:
    """One control evaluated over one period."""

    control: str
    title: str
    status: Status
    summary: str
    findings: tuple[str, ...] = ()
    evidence: tuple[Evidence, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The result as JSON."""
        return {
            "control": self.control,
            "title": self.title,
            "status": self.status.value,
            "summary": self.summary,
            "params": self.params,
            "findings": list(self.findings),
            "evidence": [item.as_json() for item in self.evidence],
        }


@dataclass(frozen=True)
class Period:
    """``[start, end)`` in UTC; the days of the period are the whole UTC days inside it."""

    start: datetime
    end: datetime

    def days(self) -> list[date]:
        """The UTC days that lie wholly inside the period, oldest first."""
        first = self.start.astimezone(UTC).date()
        if datetime.combine(first, time(), UTC) < self.start:
            first += timedelta(days=1)
        days: list[date] = []
        day = first
        while datetime.combine(day + timedelta(days=1), time(), UTC) <= self.end:
            days.append(day)
            day += timedelta(days=1)
        return days

    def as_json(self) -> dict[str, str]:
        """The period as JSON (ISO 8601, UTC)."""
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}


def result(
    control: str,
    title: str,
    status: Status,
    summary: str,
    findings: list[str] | None = None,
    evidence: list[Evidence] | None = None,
    params: dict[str, Any] | None = None,
) -> ControlResult:
    """Build a control result (the lists become tuples, params a dict)."""
    return ControlResult(
        control, title, status, summary, tuple(findings or ()), tuple(evidence or ()), params or {}
    )
