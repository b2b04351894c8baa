"""The data behind the report's charts: a coverage calendar and the restore-test history."""

from __future__ import annotations

from collections import Counter
from datetime import UTC
from typing import Any

from strongroom.catalog.types import PointState
from strongroom.compliance.evidence import Catalogued

_MADE = frozenset(
    {PointState.AVAILABLE, PointState.PARTIAL, PointState.EXPIRED, PointState.DELETED}
)


def coverage_calendar(data: Catalogued) -> dict[str, Any]:
    """For each resource, the number of completed backups on each day of the period
    (``null`` before the resource was declared)."""
    days = data.period.days()
    rows: dict[str, list[int | None]] = {}
    for resource in data.resources:
        counts = Counter(
            point.created_at.astimezone(UTC).date()
            for point in data.points
            if point.resource_id == resource.id
            and point.state in _MADE
            and point.completed_at is not None
        )
        declared = resource.created_at.astimezone(UTC).date()
        rows[resource.name] = [None if day <= declared else counts.get(day, 0) for day in days]
    return {"days": [day.isoformat() for day in days], "resources": rows}


def restore_test_history(data: Catalogued) -> list[dict[str, Any]]:
    """Every restore test recorded on a point (the latest per point), oldest first."""
    tests = []
    for point in data.points:
        result = point.restore_test_result
        if point.restore_tested_at is None or not result:
            continue
        tests.append(
            {
                "at": point.restore_tested_at.isoformat(),
                "resource": data.resource_name(point.resource_id),
                "point_id": point.id,
                "job_id": result.get("job_id"),
                "ok": bool(result.get("ok")),
            }
        )
    return sorted(tests, key=lambda test: str(test["at"]))
