"""Streaming content-defined chunking with the compiled FastCDC of the ``fastcdc`` package.

``fastcdc`` chunks one whole buffer: its last chunk ends where the buffer ends, not where
the content says. Writers therefore chunk a stream window by window and keep the last
chunk of a window back until more data (or the end of the stream) arrives
(:meth:`StreamChunker.cuts`). That gives the same cut points as chunking the whole stream
at once: FastCDC decides a cut by scanning forward from the chunk's start only, so every
cut found strictly inside the window (or at ``max_size``) is final.

The same property lets a writer *predict* cuts: a chunk whose bytes equal a chunk of an
earlier version of the stream (same keyed id) that was not that version's last chunk ends
exactly where FastCDC would end it (see :mod:`strongroom.vault.replay`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from strongroom.errors import UnsupportedError

try:
    from fastcdc.fastcdc_cy import fastcdc_cy as _fastcdc
except ImportError as exc:  # pragma: no cover - depends on the installed wheel
    raise UnsupportedError(
        "the compiled FastCDC (fastcdc.fastcdc_cy) is missing; the pure-Python fallback "
        "is far too slow for backups",
        hint="Reinstall fastcdc from a wheel for this platform.",
    ) from exc

MIN_WINDOW: Final = 4 * 1024 * 1024


def window_size(max_size: int) -> int:
    """The window writers chunk a stream in: at least two of the largest chunks."""
    return max(2 * max_size, MIN_WINDOW)


class StreamChunker:
    """FastCDC with fixed bounds, applied to windows of a stream.

    Writers keep ``window`` bytes (``max(2 * max_size, 4 MiB)``) at most per window, so a
    window always holds at least one whole chunk before the held-back one.
    """

    def __init__(self, min_size: int, avg_size: int, max_size: int) -> None:
        self.min_size = min_size
        self.avg_size = avg_size
        self.max_size = max_size
        self.window = window_size(max_size)
        self._buffer = bytearray()

    def cuts(self, view: memoryview, start: int, *, final: bool) -> list[int]:
        """Return where the chunks FastCDC cuts from ``view[start:]`` end, in order.

        Unless ``final`` (the stream ends with ``view``), the last chunk is left out: its
        end depends on data not seen yet. Offsets are relative to ``view``.
        """
        if start >= len(view):
            return []
        ends = [
            start + cut.offset + cut.length
            for cut in _fastcdc(
                view[start:],
                min_size=self.min_size,
                avg_size=self.avg_size,
                max_size=self.max_size,
            )
        ]
        if not final:
            ends.pop()
        return ends

    def feed(self, data: bytes | bytearray | memoryview) -> Iterator[bytes]:
        """Add ``data``; yield the chunks whose cut points are now final, in order.

        A convenience for callers that want chunk copies; writers use :meth:`cuts` on
        their own windows instead.
        """
        view = memoryview(data).cast("B")
        start = 0
        while start < len(view):
            room = self.window - len(self._buffer)
            self._buffer += view[start : start + room]
            start += room
            if len(self._buffer) >= self.window:
                yield from self._cut(final=False)

    def finish(self) -> Iterator[bytes]:
        """Yield the remaining chunks: the stream has ended."""
        yield from self._cut(final=True)

    def _cut(self, *, final: bool) -> Iterator[bytes]:
        buffer = self._buffer
        with memoryview(buffer) as view:
            ends = self.cuts(view, 0, final=final)
            starts = [0, *ends[:-1]] if ends else []
            chunks = [view[start:end].tobytes() for start, end in zip(starts, ends, strict=True)]
        if ends:
            del buffer[: ends[-1]]
        yield from chunks
