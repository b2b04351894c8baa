"""The API harness as a fixture (see ``tests/support/api.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.api import ApiHarness, api_harness


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ApiHarness]:
    yield from api_harness(tmp_path / "home")
