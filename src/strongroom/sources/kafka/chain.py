"""The chain of an incremental Kafka point: the earlier points a restore replays first.

A point's metadata names the points it continues (``continues``, one per partition that
continued from a checkpoint); each of those names its own. :func:`earlier_points` walks
these links through the vault (a :class:`~strongroom.sources.base.PointOpener`) and
returns every earlier point of the chain, oldest first, so that a restore of the newest
point writes the records of the whole chain in order. A link to a point that is no
longer in the vault breaks the chain: ``NotFoundError`` naming it.
"""

from __future__ import annotations

from dataclasses import dataclass

from strongroom.errors import NotFoundError
from strongroom.sources.base import JsonObject, PointOpener, check_restorable
from strongroom.sources.kafka.backup import FORMAT


@dataclass(frozen=True)
class EarlierPoint:
    """One earlier point of a chain: its id and the metadata its backup recorded."""

    point_id: str
    metadata: JsonObject


def earlier_points(metadata: JsonObject, points: PointOpener) -> list[EarlierPoint]:
    """Return every point the chain of ``metadata``'s point continues, oldest first.

    Points are ordered by the time their backup started (a later point of a chain always
    started after the points it continues). Raises ``NotFoundError`` naming the missing
    point and the point that continues it when a link is broken; ``ConfigError`` when a
    linked point was not made by the kafka source.
    """
    continued_by = dict.fromkeys(metadata.get("continues") or [], "the restored point")
    pending = sorted(continued_by)
    found: dict[str, JsonObject] = {}
    while pending:
        point_id = pending.pop()
        if point_id in found:
            continue
        try:
            with points(point_id) as (_streams, earlier):
                check_restorable(earlier, FORMAT, "kafka")
        except NotFoundError as exc:
            raise NotFoundError(
                f"the chain of incremental points is broken: point {point_id}, which "
                f"{continued_by[point_id]} continues, is not in the vault",
                hint="Restore only the newest point (chain: false) into a target that holds "
                "the earlier records, or restore an older point whose chain is whole.",
            ) from exc
        found[point_id] = earlier
        for older in earlier.get("continues") or []:
            continued_by.setdefault(older, f"point {point_id}")
            pending.append(older)
    return [
        EarlierPoint(point_id, found[point_id])
        for point_id in sorted(found, key=lambda key: (str(found[key].get("started_at")), key))
    ]
