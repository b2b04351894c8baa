"""The concurrency limits ``apply`` stores in the catalog: the stored form and damage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from strongroom.catalog import open_catalog
from strongroom.catalog.models import Setting
from strongroom.catalog.settings import (
    CONCURRENCY,
    ConcurrencyLimits,
    read_concurrency_limits,
    write_concurrency_limits,
)
from strongroom.errors import ConfigError
from tests.support.catalog import T0, later


def test_limits_are_stored_replaced_and_read_back(tmp_path: Path) -> None:
    limits = ConcurrencyLimits(
        max_running=3,
        per_vault={"main": 2},
        per_vault_default=1,
        per_resource_type={"postgres": 1},
    )
    with open_catalog(None, tmp_path) as catalog:
        with catalog.session(readonly=True) as session:
            assert read_concurrency_limits(session) is None
        with catalog.session() as session:
            write_concurrency_limits(session, limits, at=T0)
        with catalog.session(readonly=True) as session:
            assert read_concurrency_limits(session) == limits
        with catalog.session() as session:
            write_concurrency_limits(session, ConcurrencyLimits(max_running=1), at=later(1))
        with catalog.session(readonly=True) as session:
            assert read_concurrency_limits(session) == ConcurrencyLimits(max_running=1)
            assert session.get(Setting, CONCURRENCY).updated_at == later(1)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "value",
    [
        {"max_running": "four"},
        {"max_running": 0},
        {"per_resource_type": ["postgres"]},
        {"per_vault": {"main": True}},
    ],
)
def test_damaged_limits_are_a_config_error_with_a_hint(tmp_path: Path, value: Any) -> None:
    with open_catalog(None, tmp_path) as catalog:
        with catalog.session() as session:
            session.add(Setting(name=CONCURRENCY, value=value, updated_at=T0))
        with (
            catalog.session(readonly=True) as session,
            pytest.raises(ConfigError, match="concurrency limits are damaged") as raised,
        ):
            read_concurrency_limits(session)
    assert "strongroom apply" in raised.value.hint
