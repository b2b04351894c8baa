"""``apply`` records what it wrote, or that it was refused; a dry run records nothing."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from strongroom.catalog.audit import EntryFilter
from strongroom.errors import PolicyError
from strongroom.services.audit.service import AuditService
from strongroom.services.context import AppContext
from strongroom.services.declare.apply import ApplyService
from strongroom.services.declare.checks import PendingApply
from tests.unit.services.apply_support import config_text, loaded, new_context


@pytest.fixture
def context(tmp_path: Path) -> Iterator[AppContext]:
    context = new_context(tmp_path / "home")
    yield context
    context.close()


def applies(context: AppContext) -> list[dict[str, object]]:
    return AuditService(context).list(EntryFilter(action="config.apply"), limit=None)


def test_apply_records_its_changes_and_a_dry_run_nothing(
    context: AppContext, tmp_path: Path
) -> None:
    ApplyService(context).apply(loaded(config_text(tmp_path)), dry_run=True)
    assert applies(context) == []
    ApplyService(context).apply(loaded(config_text(tmp_path)))

    [entry] = applies(context)
    assert entry["outcome"] == "succeeded"
    assert entry["actor"] == context.actor.name
    written = {(c["action"], c["kind"], c["name"]) for c in entry["details"]["changes"]}  # type: ignore[index]
    assert ("create", "vault", "prod") in written


def test_a_refused_apply_is_recorded_as_refused(context: AppContext, tmp_path: Path) -> None:
    def refuse(pending: PendingApply) -> Sequence[str]:
        return ["not on a Friday"]

    with pytest.raises(PolicyError):
        ApplyService(context, checks=[refuse]).apply(loaded(config_text(tmp_path)))

    [entry] = applies(context)
    assert entry["outcome"] == "refused"
    assert "not on a Friday" in entry["details"]["error"]  # type: ignore[index]
