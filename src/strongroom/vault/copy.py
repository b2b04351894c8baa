"""Copying one recovery point into another vault (docs/copies.md).

The copy is a recovery point of the destination vault like any backup: every stream of
the source point is read through :class:`~strongroom.vault.reader.VaultReader` (each
chunk authenticated with the source's keys, each stream's size and keyed hash checked at
its end) and written through the destination's
:class:`~strongroom.vault.writer.VaultWriter`, so it is chunked, keyed and encrypted with
the destination's keys and deduplicated against the destination's index, under the
writer's shared vault lease and its pack-presence check. The destination manifest is put
last, only after every stream was read whole and checked; any error before that aborts
the writer, so a failed or interrupted copy leaves only unreferenced packs that garbage
collection removes, never a point. The source vault is only read.

Memory stays bounded: the reader's read-ahead and the writer's in-flight chunks are both
bounded, and one stream is copied at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from strongroom.errors import ConfigError, IntegrityError
from strongroom.vault.manifest import PointStats, RecoveryPoint, RecoveryPointId
from strongroom.vault.vault import Vault

COPY_OF_KEY: Final = "copy_of"
"""The metadata key under which a copy names the point it was copied from."""


@dataclass(frozen=True, slots=True)
class CopyOutcome:
    """What a copy made: the destination point, the source point, the bytes read."""

    point: RecoveryPoint
    source: RecoveryPoint
    bytes_copied: int

    @property
    def stats(self) -> PointStats:
        """Sizes and counts of the destination point (new bytes: what the copy stored)."""
        return self.point.stats


def copy_point(
    source: Vault,
    point_id: str,
    destination: Vault,
    *,
    tags: Mapping[str, str],
    link: Mapping[str, Any],
    check: Callable[[], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> CopyOutcome:
    """Copy recovery point ``point_id`` of ``source`` into ``destination``.

    The copy keeps the source point's metadata and adds ``link`` under
    :data:`COPY_OF_KEY` (with the source point's id and vault id, which this function
    sets); its tags are ``tags`` (the caller chooses which of the source's to keep).
    ``check`` is called between pieces (a job's cancellation raises there); ``progress``
    gets the byte count of each piece copied.

    Returns the outcome. Raises ``ConfigError`` when both are the same vault,
    ``NotFoundError`` for a missing source point, ``IntegrityError`` naming the stream
    and chunk or pack when source data is missing or damaged, store and lease errors of
    the destination; in every case nothing is committed in ``destination``.
    """
    if source.vault_id == destination.vault_id:
        raise ConfigError(
            f"the source and destination are the same vault ({source.vault_id})",
            hint="Copy a recovery point to another vault.",
        )
    point = source.point(point_id)
    metadata = dict(point.metadata)
    metadata[COPY_OF_KEY] = {
        **dict(link),
        "point_id": point.id,
        "vault_id": source.vault_id,
        "created": point.manifest.created,
    }
    copied = 0
    with source.reader(point.id) as reader, destination.writer() as writer:
        for record in reader.streams():
            with writer.open_stream(record.name) as stream:
                for piece in reader.iter_views(record.name):
                    if check is not None:
                        check()
                    stream.write(piece)
                    copied += len(piece)
                    if progress is not None:
                        progress(len(piece))
            written = writer.stream_record(record.name)
            if written is None or written.size != record.size:
                raise IntegrityError(
                    f"recovery point {point.id} stream {record.name!r}: the copy holds "
                    f"{written.size if written else 0} bytes, the source {record.size}"
                )
        if check is not None:
            check()
        new_id: RecoveryPointId = writer.commit(metadata=metadata, tags=dict(tags))
    return CopyOutcome(point=destination.point(new_id), source=point, bytes_copied=copied)
