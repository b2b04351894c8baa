"""Per-partition checkpoints of the ``kafka`` source: where the next backup starts.

One SQLite file per resource (``STRONGROOM_HOME/cache/kafka/<resource>.sqlite``, stdlib
``sqlite3``), one row per topic partition: the topic id it was read under, the offset the
next backup starts from (the end of the last recorded backup), the offset of the last
record that backup held, and the recovery point that holds it. The rows are written by
:meth:`Checkpoints.advance` only, which the backup job calls after the point was recorded
(see ``CheckpointingSource``), in one transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from strongroom.sources.base import JsonObject

_SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS checkpoints (topic TEXT NOT NULL, partition INTEGER NOT NULL,"
    " topic_id TEXT NOT NULL, next_offset INTEGER NOT NULL, last_offset INTEGER,"
    " point_id TEXT NOT NULL, PRIMARY KEY (topic, partition))"
)


@dataclass(frozen=True)
class Checkpoint:
    """Where one partition's next backup starts, and which point ended there."""

    topic_id: str
    next_offset: int
    last_offset: int | None
    point_id: str


class Checkpoints:
    """The checkpoints of one resource, in the SQLite file ``path`` (created on first use)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(self.path, timeout=30)) as connection:
            connection.execute(_SCHEMA)
            yield connection

    def load(self) -> dict[tuple[str, int], Checkpoint]:
        """Every checkpoint by (topic, partition)."""
        if not self.path.exists():
            return {}
        with self._connection() as connection:
            rows = connection.execute(
                "SELECT topic, partition, topic_id, next_offset, last_offset, point_id"
                " FROM checkpoints"
            ).fetchall()
        return {(row[0], row[1]): Checkpoint(row[2], row[3], row[4], row[5]) for row in rows}

    def advance(self, metadata: JsonObject, point_id: str) -> None:
        """Set every partition a backup read to start after it, in one transaction.

        A partition whose backup held no record keeps the last offset it had.
        """
        previous = self.load()
        rows = []
        for topic, described in metadata.get("topics", {}).items():
            for key, part in described.get("partition_data", {}).items():
                partition = int(key)
                last = part.get("last_offset")
                if last is None and (topic, partition) in previous:
                    earlier = previous[(topic, partition)]
                    if earlier.topic_id == described["topic_id"]:
                        last = earlier.last_offset
                rows.append((topic, partition, described["topic_id"], part["end"], last, point_id))
        with self._connection() as connection, connection:
            connection.executemany(
                "INSERT OR REPLACE INTO checkpoints VALUES (?, ?, ?, ?, ?, ?)", rows
            )
