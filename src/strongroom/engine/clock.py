"""Time for the engine: the real clock, and a manual one that tests move by hand.

Everything in the engine that asks "what time is it" or "wait until then" goes through a
:class:`Clock`, so a test can run a week of schedules and retries in milliseconds.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol, runtime_checkable

DEFAULT_START: Final = datetime(2030, 1, 1, tzinfo=UTC)
"""Where a :class:`ManualClock` starts unless told otherwise."""


@runtime_checkable
class Clock(Protocol):
    """A source of aware UTC time that can also wait."""

    def now(self) -> datetime:
        """Return the current time, timezone-aware, in UTC."""
        ...

    def sleep(self, seconds: float) -> None:
        """Return once ``seconds`` have passed on this clock (at once if not positive)."""
        ...


class SystemClock:
    """The machine's clock."""

    def now(self) -> datetime:
        """Return the current UTC time."""
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        """Sleep for real."""
        if seconds > 0:
            time.sleep(seconds)

    def __repr__(self) -> str:
        return "SystemClock()"


class ManualClock:
    """A clock that moves only when told to, for tests.

    ``sleep`` blocks the calling thread until another thread :meth:`advance`-s the clock
    past the wake-up time, so a test can drive a background loop step by step (use
    :meth:`wait_for_sleepers` to know the loop is parked). With ``auto_advance=True``,
    ``sleep`` instead moves the clock forward itself and returns at once, which suits
    single-threaded code.
    """

    def __init__(self, start: datetime = DEFAULT_START, *, auto_advance: bool = False) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware start time")
        self._now = start.astimezone(UTC)
        self._auto_advance = auto_advance
        self._sleepers = 0
        self._changed = threading.Condition()

    def now(self) -> datetime:
        """Return the clock's current time."""
        with self._changed:
            return self._now

    def advance(self, by: float | timedelta) -> datetime:
        """Move the clock forward by seconds (or a timedelta), wake sleepers, return the new time."""
        step = by if isinstance(by, timedelta) else timedelta(seconds=by)
        if step < timedelta(0):
            raise ValueError("a clock does not go backwards")
        with self._changed:
            self._now += step
            self._changed.notify_all()
            return self._now

    def set(self, when: datetime) -> None:
        """Move the clock forward to ``when``."""
        self.advance(when.astimezone(UTC) - self.now())

    def sleep(self, seconds: float) -> None:
        """Wait until the clock reaches now + ``seconds`` (see the class docstring)."""
        if seconds <= 0:
            return
        if self._auto_advance:
            self.advance(seconds)
            return
        with self._changed:
            wake_at = self._now + timedelta(seconds=seconds)
            self._sleepers += 1
            self._changed.notify_all()
            try:
                while self._now < wake_at:
                    self._changed.wait()
            finally:
                self._sleepers -= 1
                self._changed.notify_all()

    @property
    def sleepers(self) -> int:
        """How many threads are blocked in :meth:`sleep` right now."""
        with self._changed:
            return self._sleepers

    def wait_for_sleepers(self, count: int = 1, timeout: float = 5.0) -> bool:
        """Block (real time, up to ``timeout`` seconds) until ``count`` threads sleep."""
        with self._changed:
            return self._changed.wait_for(lambda: self._sleepers >= count, timeout)

    def __repr__(self) -> str:
        return f"ManualClock({self.now().isoformat()})"
