"""Every operation of the services leaves one audit entry: who, what, outcome, details."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from strongroom.catalog.audit import EntryFilter
from strongroom.errors import ConflictError, NotFoundError
from strongroom.services.audit.service import AuditService
from strongroom.services.context import Actor
from strongroom.services.jobs.operations import OperationsService
from strongroom.services.retention.legal_hold import LegalHoldService
from strongroom.services.vaults.keyref import KeyOptions
from tests.support.data import make_tree
from tests.unit.services.operations_support import Ops


@pytest.fixture
def ops(tmp_path: Path) -> Iterator[Ops]:
    ops = Ops(tmp_path)
    try:
        yield ops
    finally:
        ops.close()


def entries(ops: Ops, **where: Any) -> list[dict[str, Any]]:
    return AuditService(ops.context).list(EntryFilter(**where), limit=None)


def test_start_and_cancel_record_the_job_and_the_actor(ops: Ops, tmp_path: Path) -> None:
    ops.files("docs", make_tree(tmp_path / "data"))
    job = ops.service.start_backup("docs", "main")
    ops.service.cancel_job(job.id, "wrong window")

    started, cancelled = entries(ops, action="backup.*")
    assert (started["action"], started["subject"], started["outcome"]) == (
        "backup.start",
        job.id,
        "succeeded",
    )
    assert started["details"]["resource"] == "docs"
    assert started["details"]["vault"] == "main"
    assert started["actor"] == ops.context.actor.name
    assert (cancelled["action"], cancelled["reason"], cancelled["details"]["state"]) == (
        "backup.cancel",
        "wrong window",
        "ABORTED",
    )


def test_a_refused_start_is_recorded_as_refused(ops: Ops, tmp_path: Path) -> None:
    ops.files("docs", tmp_path)
    first = ops.service.start_backup("docs", "main")
    with pytest.raises(ConflictError):
        ops.service.start_backup("docs", "main")
    with pytest.raises(NotFoundError):
        ops.service.start_backup("nothing", "main")

    recorded = [(e["subject"], e["outcome"]) for e in entries(ops, action="backup.start")]
    assert recorded == [(first.id, "succeeded"), ("docs", "failed"), ("nothing", "refused")]
    assert "BusyError" in entries(ops, outcome="failed")[0]["details"]["error"]


def test_an_explicit_actor_is_recorded_for_an_api_principal(ops: Ops, tmp_path: Path) -> None:
    ops.files("docs", tmp_path)
    principal = Actor(name="token:ci-pipeline", origin="api from 10.0.0.7")
    OperationsService(ops.context.acting_as(principal)).start_backup("docs", "main")

    [entry] = entries(ops, action="backup.start")
    assert (entry["actor"], entry["origin"]) == ("token:ci-pipeline", "api from 10.0.0.7")


def test_key_operations_and_legal_holds_are_recorded(ops: Ops, tmp_path: Path) -> None:
    ops.files("docs", make_tree(tmp_path / "data"))
    point_id = ops.backup("docs").result["point_id"]  # type: ignore[index]
    generation = ops.vaults.rotate_data_key("main")
    key_id = ops.vaults.add_key("main", KeyOptions(key_file=tmp_path / "second.key"))
    ops.vaults.remove_key("main", key_id)
    LegalHoldService(ops.context).add(point_id, reason="case 7", actor="ana@desk")

    recorded = [
        (e["action"], e["subject"], e["outcome"])
        for e in entries(ops)
        if e["action"] not in {"backup.start"}
    ]
    assert recorded == [
        ("vault.key.rotate", "main", "succeeded"),
        ("vault.key.add", "main", "succeeded"),
        ("vault.key.remove", "main", "succeeded"),
        ("recovery_point.legal_hold.added", point_id, "succeeded"),
    ]
    assert entries(ops, action="vault.key.rotate")[0]["details"] == {"generation": generation}
    [hold] = entries(ops, actor="ana@desk")
    assert hold["reason"] == "case 7"
    assert AuditService(ops.context).verify().intact
