"""A context with its own embedded catalog, for the API's real-HTTP tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from strongroom.services.context import AppContext


@pytest.fixture
def context(tmp_path: Path) -> Iterator[AppContext]:
    context = AppContext(home=tmp_path / "home")
    yield context
    context.close()
