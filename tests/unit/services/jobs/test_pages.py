"""Keyset pages of recovery points and jobs: every row once, in order, ties included."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from strongroom.catalog.models import Resource, Vault
from strongroom.catalog.points import record_recovery_point
from strongroom.errors import ConfigError
from strongroom.services.jobs.pages import PageService, decode_cursor, encode_cursor
from tests.unit.services.operations_support import Ops

START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def ops(tmp_path: Path) -> Iterator[Ops]:
    world = Ops(tmp_path)
    world.add_vault("other")
    world.files("docs", tmp_path)
    world.files("logs", tmp_path)
    yield world
    world.close()


def _points(ops: Ops) -> list[tuple[datetime, str, str]]:
    """Record points; three share one time (ties the keyset must not lose or repeat)."""
    made = []
    with ops.context.catalog.session() as session:
        vaults = {row.name: row.id for row in session.query(Vault)}
        resources = {row.name: row.id for row in session.query(Resource)}
        for number in range(11):
            created = START + timedelta(minutes=min(number, 5))
            resource = "docs" if number % 3 else "logs"
            point_id = f"{number:02d}" + "ab" * 31
            record_recovery_point(
                session,
                point_id=point_id,
                vault_id=vaults["main" if number % 2 else "other"],
                resource_id=resources[resource],
                created_at=created,
            )
            made.append((created, point_id, resource))
    return made


def test_walking_the_pages_yields_every_point_once_newest_first(ops: Ops) -> None:
    made = _points(ops)
    service = PageService(ops.context)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = service.points(cursor=cursor, limit=2)
        assert len(page.rows) <= 2
        seen += [row.id for row in page.rows]
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    expected = [point_id for _, point_id in sorted(((c, p) for c, p, _ in made), reverse=True)]
    assert seen == expected
    assert pages == 6
    docs = service.points(resource="docs", limit=100).rows
    assert {row.resource for row in docs} == {"docs"}
    assert len(docs) == sum(1 for *_, resource in made if resource == "docs")
    assert {row.vault for row in service.points(vault="other", limit=100).rows} == {"other"}


def test_a_last_full_page_has_no_next_cursor(ops: Ops) -> None:
    _points(ops)
    assert PageService(ops.context).points(limit=11).next_cursor is None
    assert PageService(ops.context).points(limit=10).next_cursor is not None


def test_job_pages_follow_the_same_rules(ops: Ops, tmp_path: Path) -> None:
    jobs = [ops.backup("docs") for _ in range(3)]
    service = PageService(ops.context)
    first = service.jobs(limit=2)
    second = service.jobs(limit=2, cursor=first.next_cursor)
    assert [job.id for job in first.rows + second.rows] == [job.id for job in reversed(jobs)]
    assert second.next_cursor is None
    events = service.job_events(jobs[0].id)
    assert events and all(event.type.startswith("backup.") for event in events)


@pytest.mark.parametrize("cursor", ["", "garbage", encode_cursor(START, "x")[:-3] + "!!!"])
def test_a_cursor_we_did_not_give_is_a_config_error(ops: Ops, cursor: str) -> None:
    with pytest.raises(ConfigError, match="cursor"):
        PageService(ops.context).points(cursor=cursor)


def test_cursors_round_trip_and_limits_are_bounded(ops: Ops) -> None:
    assert decode_cursor(encode_cursor(START, "abc|def")) == (START, "abc|def")
    with pytest.raises(ConfigError, match="1 to 500"):
        PageService(ops.context).jobs(limit=0)
