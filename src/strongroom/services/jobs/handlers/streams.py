"""Adapters between a source's stream interfaces and the vault's reader and writer.

A ``VaultWriter`` already is a ``StreamSink`` (its streams are context managers that
record the stream only when the block ends without error). A ``VaultReader`` needs a
``stream_names`` method to be a ``StreamReader``; :class:`PointStreams` adds it.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager

from strongroom.sources.base import ReadableStream
from strongroom.vault import VaultReader


class PointStreams:
    """The streams of one recovery point, as a source's restore reads them."""

    def __init__(self, reader: VaultReader) -> None:
        self._reader = reader

    def stream_names(self) -> list[str]:
        """Every stream name of the point, in commit order."""
        return [record.name for record in self._reader.streams()]

    def open_stream(self, name: str) -> AbstractContextManager[ReadableStream]:
        """Open one stream; every chunk is checked as it is read (``IntegrityError``)."""
        return self._reader.open_stream(name)

    def read_ahead(self, names: Sequence[str]) -> None:
        """Fetch ahead across these streams, read next in this order (a plan only)."""
        self._reader.read_ahead(names)
