"""Replaying an earlier version's chunk boundaries instead of searching for them.

FastCDC holds the GIL and is the one step of a writer that runs on a single core; in a
backup of data that mostly did not change it dominates. But FastCDC decides where a
chunk ends from that chunk's own bytes only (docs/vault-format.md §14). So when the bytes
at the current position hash to the id of the next chunk of the previous version of the
stream (keyed BLAKE3: equal ids mean equal bytes), FastCDC would cut exactly there too,
unless that chunk was the previous version's last one (its end may have been the end of
the data, not a content cut). The writer then takes the cut without running FastCDC,
and the chunk id it needs anyway is already computed.

When the data differs, the writer runs FastCDC from the point of difference and looks up
each new chunk among the next chunks of the previous version (a bounded look-ahead); the
first one found puts the replay back in step (after an insertion or a deletion).

A replay only ever predicts cuts that FastCDC would make, and every prediction is
checked by hashing the bytes, so the chunks (and the deduplication) are the same as
without it; a wrong or damaged hint costs time, never data.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from itertools import islice
from typing import Final

from strongroom.errors import StrongroomError
from strongroom.logs import get_logger

LOOKAHEAD: Final = 4096
"""Chunks of the previous version looked at to get back in step after a change."""
GIVE_UP: Final = 256
"""Consecutive new chunks after which the data is taken for unrelated: replaying stops."""
BATCH: Final = 512
_log = get_logger(__name__)


class ChunkReplay:
    """The chunk sequence of a previous version of one stream, consumed in step.

    ``chunk_ids`` yields the previous version's chunk ids in order (lazily, so a huge
    stream is never held whole); ``raw_lengths`` returns the plaintext length of the ids
    the index knows. Errors reading either end the replay quietly.
    """

    def __init__(
        self,
        chunk_ids: Iterator[bytes],
        raw_lengths: Callable[[Sequence[bytes]], Mapping[bytes, int]],
        *,
        lookahead: int = LOOKAHEAD,
    ) -> None:
        self._source = chunk_ids
        self._raw_lengths = raw_lengths
        self._lookahead = max(2, lookahead)  # two, so the last chunk is known as such
        self._ahead: deque[tuple[bytes, int]] = deque()
        self._first_at: dict[bytes, int] = {}
        self._base = 0
        self._exhausted = False
        self._misses = 0
        self.in_sync = True
        self.replayed = 0
        """Chunks whose cut was taken from the previous version."""
        self._fill()

    @property
    def active(self) -> bool:
        """False once there is nothing left to replay (the writer then just chunks)."""
        return bool(self._ahead) or not self._exhausted

    def expected(self) -> tuple[bytes, int, bool] | None:
        """Return the next chunk of the previous version if in step: (id, length, last).

        ``last``: it was the previous version's last chunk. None when out of step, at the
        end, or when the index no longer knows the chunk's length.
        """
        if not self.in_sync or not self._ahead:
            self.in_sync = False
            return None
        chunk_id, length = self._ahead[0]
        if length <= 0:  # unknown to the index (or impossible): search instead
            self.in_sync = False
            return None
        return chunk_id, length, self._exhausted and len(self._ahead) == 1

    def matched(self) -> None:
        """The expected chunk came: step past it."""
        self._pop()
        self.replayed += 1
        if len(self._ahead) <= self._lookahead // 2:
            self._fill()

    def observe(self, chunk_id: bytes) -> None:
        """A chunk was cut by FastCDC: step past it if it is the expected one, or get back
        in step after it if it is among the next chunks of the previous version."""
        if self.in_sync and self._ahead and self._ahead[0][0] == chunk_id:
            self._pop()
        else:
            position = self._first_at.get(chunk_id)
            if position is None:
                self.in_sync = False
                self._misses += 1
                if self._misses > GIVE_UP:
                    self._stop()
                return
            while self._base <= position:
                self._pop()
            self.in_sync = True
        self._misses = 0
        if len(self._ahead) <= self._lookahead // 2:
            self._fill()

    def _stop(self) -> None:
        self._exhausted = True
        self._ahead.clear()
        self._first_at.clear()
        self.in_sync = False

    def _pop(self) -> None:
        chunk_id, _ = self._ahead.popleft()
        if self._first_at.get(chunk_id) == self._base:
            del self._first_at[chunk_id]
        self._base += 1

    def _fill(self) -> None:
        while not self._exhausted and len(self._ahead) < self._lookahead:
            try:
                batch = list(islice(self._source, BATCH))
                lengths = self._raw_lengths(batch) if batch else {}
            except StrongroomError as exc:
                _log.info("cannot replay the previous chunk boundaries: %s", exc)
                self._stop()
                return
            if len(batch) < BATCH:
                self._exhausted = True
            for chunk_id in batch:
                self._first_at.setdefault(chunk_id, self._base + len(self._ahead))
                self._ahead.append((chunk_id, lengths.get(chunk_id, -1)))
