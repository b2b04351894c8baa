"""What the vault and S3 benchmarks share: a result row, sizes for people, and the ratio of
strongroom to the faster of the tools it is compared with.

    from compare import Row, human, speed_ratio
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from measure import Measurement


@dataclass
class Row:
    """One tool's measurement of one phase, with the bytes it read and stored."""

    tool: str
    phase: str
    measurement: Measurement
    logical_bytes: int
    stored_bytes: int | None


def human(size: float) -> str:
    """``size`` bytes in binary units, one decimal."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def find(rows: Sequence[Row], tool: str, phase: str) -> Row | None:
    """The row of ``tool`` and ``phase``, if it ran."""
    return next((row for row in rows if row.tool == tool and row.phase == phase), None)


def speed_ratio(
    rows: Sequence[Row], phase: str, ours: str, others: Sequence[str], target: float
) -> list[str] | None:
    """A verdict line: how many times faster (wall time) ``ours`` ran ``phase`` than the
    fastest of ``others``, with the same ratio in CPU seconds, against ``target``. None
    when ``ours`` or all of ``others`` did not run it."""
    mine = find(rows, ours, phase)
    theirs = [row for row in (find(rows, other, phase) for other in others) if row]
    if mine is None or not theirs:
        return None
    fastest = min(theirs, key=lambda row: row.measurement.seconds)
    ratio = fastest.measurement.seconds / mine.measurement.seconds
    cpu = fastest.measurement.cpu_seconds / max(mine.measurement.cpu_seconds, 1e-9)
    return [
        f"{phase}: speed vs {fastest.tool}",
        f"{ratio:.2f}x",
        f"{cpu:.2f}x",
        f">= {target}x",
        "met" if ratio >= target else "NOT met",
    ]
