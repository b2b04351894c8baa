"""How long a test waits for something that must happen before calling it a hang.

A bound on waiting for an event (a thread entered, a job ended, a barrier filled) only
stops a test that would otherwise hang; it is never a speed check. A loaded machine (the
suite must pass with CPU hogs beside it on 2 cores) can take many seconds where a quiet
one takes milliseconds, so the bound is long, and the tests that use it end as soon as
the event comes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

PATIENCE = 600.0
"""Seconds to wait for an event before failing the test as hung."""


def wait_for(probe: Callable[[], T], *, interval: float = 0.5, patience: float = PATIENCE) -> T:
    """Call ``probe`` until it returns something truthy and return that; fail the test as
    hung after ``patience`` seconds (a bound against hangs, never a speed check)."""
    deadline = time.monotonic() + patience
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"still nothing after {patience:g}s: {value!r}")
        time.sleep(interval)
