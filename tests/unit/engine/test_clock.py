"""The clocks: system time is aware UTC; the manual clock moves only when told."""

from __future__ import annotations

import threading
from datetime import UTC, timedelta

import pytest

from strongroom.engine.clock import Clock, ManualClock, SystemClock
from tests.support.catalog import T0
from tests.support.waiting import PATIENCE


def test_the_system_clock_tells_aware_utc_time() -> None:
    now = SystemClock().now()
    assert now.tzinfo is UTC
    assert isinstance(SystemClock(), Clock)
    assert isinstance(ManualClock(), Clock)


def test_a_manual_clock_moves_forward_only_when_told() -> None:
    clock = ManualClock(T0)
    assert clock.now() == T0
    assert clock.advance(90) == T0 + timedelta(seconds=90)
    clock.set(T0 + timedelta(hours=1))
    assert clock.now() == T0 + timedelta(hours=1)
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1)


def test_a_manual_sleep_returns_when_another_thread_advances_past_it() -> None:
    clock = ManualClock(T0)
    woke = threading.Event()

    def sleeper() -> None:
        clock.sleep(300)
        woke.set()

    thread = threading.Thread(target=sleeper)
    thread.start()
    assert clock.wait_for_sleepers(1, timeout=PATIENCE)
    clock.advance(299)
    assert not woke.wait(0.05)
    clock.advance(1)
    thread.join(timeout=PATIENCE)
    assert woke.is_set()
    assert clock.sleepers == 0


def test_an_auto_advancing_manual_clock_moves_itself_on_sleep() -> None:
    clock = ManualClock(T0, auto_advance=True)
    clock.sleep(60)
    clock.sleep(0)
    assert clock.now() == T0 + timedelta(seconds=60)


def test_a_manual_clock_needs_an_aware_start() -> None:
    with pytest.raises(ValueError, match="aware"):
        ManualClock(T0.replace(tzinfo=None))
