"""Streaming content-defined chunking with the compiled FastCDC of the ``fastcdc`` package.

``fastcdc`` chunks one whole buffer: its last chunk ends where the buffer ends, not where
the content says. :class:`StreamChunker` feeds it a bounded window and keeps that last
chunk back until more data (or the end of the stream) arrives. That gives the same cut
points as chunking the whole stream at once: FastCDC decides a cut by scanning forward from
the chunk's start only, so every cut found strictly inside the window (or at ``max_size``)
is final.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

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


class StreamChunker:
    """Cut a stream written in pieces of any size into content-defined chunks.

    Memory: at most ``window`` bytes (``max(2 * max_size, 4 MiB)``) are held.
    """

    def __init__(self, min_size: int, avg_size: int, max_size: int) -> None:
        self._min_size = min_size
        self._avg_size = avg_size
        self._max_size = max_size
        self._window = max(2 * max_size, MIN_WINDOW)
        self._buffer = bytearray()

    @property
    def window(self) -> int:
        """How many bytes the chunker buffers at most before cutting."""
        return self._window

    def feed(self, data: bytes | bytearray | memoryview) -> Iterator[bytes]:
        """Add ``data``; yield the chunks whose cut points are now final, in order."""
        view = memoryview(data).cast("B")
        start = 0
        while start < len(view):
            room = self._window - len(self._buffer)
            self._buffer += view[start : start + room]
            start += room
            if len(self._buffer) >= self._window:
                yield from self._cut(final=False)

    def finish(self) -> Iterator[bytes]:
        """Yield the remaining chunks: the stream has ended."""
        yield from self._cut(final=True)

    def _cut(self, *, final: bool) -> Iterator[bytes]:
        buffer = self._buffer
        if not buffer:
            return
        cuts: list[Any] = list(
            _fastcdc(
                buffer,
                min_size=self._min_size,
                avg_size=self._avg_size,
                max_size=self._max_size,
            )
        )
        if not final:
            cuts.pop()
        consumed = 0
        with memoryview(buffer) as view:
            for cut in cuts:
                consumed = cut.offset + cut.length
                yield view[cut.offset : consumed].tobytes()
        del buffer[:consumed]
