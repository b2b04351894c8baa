"""Audit suite: the hash chain, what ``check_chain`` finds, filters, concurrent appenders."""

from __future__ import annotations

import multiprocessing
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, update

from strongroom.catalog import Catalog, open_catalog
from strongroom.catalog.audit import (
    GENESIS_HASH,
    EntryFilter,
    NewEntry,
    append_entry,
    check_chain,
    hash_of,
    list_entries,
)
from strongroom.catalog.models import AuditEntry
from tests.support.catalog import T0, CatalogFixtures, later

APPENDS_PER_PROCESS = 25


def entry(number: int, *, actor: str = "ana@host", action: str = "backup.start") -> NewEntry:
    return NewEntry(
        at=later(number),
        actor=actor,
        origin="cli on host pid 1",
        action=action,
        subject=f"job-{number}",
        outcome="succeeded",
        details={"number": number, "note": "ünïcode"},
    )


def append(catalog: Catalog, count: int, **fields: str) -> None:
    for number in range(1, count + 1):
        with catalog.session() as session:
            append_entry(session, entry(number, **fields))


def append_from_another_process(url: str, home: str, worker: int, count: int, start: Any) -> None:
    """Run in a child process: open the catalog itself, wait for the other process at
    ``start`` (a barrier), then append ``count`` entries."""
    catalog = open_catalog(url, Path(home))
    start.wait()
    try:
        for number in range(count):
            with catalog.session() as session:
                append_entry(session, entry(number, actor=f"worker-{worker}@host"))
    finally:
        catalog.close()


def problems(catalog: Catalog) -> list[tuple[str, int]]:
    with catalog.session(readonly=True) as session:
        return [(problem.kind, problem.seq) for problem in check_chain(session).problems]


class AuditSuite(CatalogFixtures):
    def test_entries_are_numbered_and_chained_from_the_genesis_hash(self, catalog: Catalog) -> None:
        append(catalog, 3)
        with catalog.session(readonly=True) as session:
            rows = list_entries(session)
            assert [row.seq for row in rows] == [1, 2, 3]
            assert rows[0].previous_hash == GENESIS_HASH
            assert rows[1].previous_hash == rows[0].entry_hash
            assert rows[2].previous_hash == rows[1].entry_hash
            assert all(hash_of(row) == row.entry_hash for row in rows)
            assert rows[0].details == {"number": 1, "note": "ünïcode"}
            check = check_chain(session)
        assert check.intact
        assert (check.entries, check.head_seq, check.head_hash) == (3, 3, rows[2].entry_hash)

    def test_an_empty_trail_is_intact(self, catalog: Catalog) -> None:
        with catalog.session(readonly=True) as session:
            check = check_chain(session)
        assert check.intact and check.entries == 0 and check.head_seq is None

    def test_an_edited_entry_is_named(self, catalog: Catalog) -> None:
        append(catalog, 5)
        with catalog.session() as session:
            session.execute(
                update(AuditEntry).where(AuditEntry.seq == 3).values(actor="mallory@host")
            )
        assert problems(catalog) == [("edited", 3)]

    def test_an_edited_entry_with_a_recomputed_hash_breaks_the_next_link(
        self, catalog: Catalog
    ) -> None:
        append(catalog, 5)
        with catalog.session() as session:
            row = session.get(AuditEntry, 3)
            assert row is not None
            row.outcome = "refused"
            row.entry_hash = hash_of(row)
        assert problems(catalog) == [("broken-link", 4)]

    def test_a_deleted_entry_is_named(self, catalog: Catalog) -> None:
        append(catalog, 5)
        with catalog.session() as session:
            session.execute(delete(AuditEntry).where(AuditEntry.seq == 3))
        with catalog.session(readonly=True) as session:
            check = check_chain(session)
        assert [(p.kind, p.seq, p.last_seq) for p in check.problems] == [("deleted", 3, 3)]
        assert "entry 3 is missing" in check.problems[0].message

    def test_a_deletion_hidden_by_renumbering_still_breaks_the_chain(
        self, catalog: Catalog
    ) -> None:
        append(catalog, 4)
        with catalog.session() as session:
            session.execute(delete(AuditEntry).where(AuditEntry.seq == 2))
            for seq in (3, 4):
                session.execute(update(AuditEntry).where(AuditEntry.seq == seq).values(seq=seq - 1))
        assert problems(catalog) == [("broken-link", 2)]

    def test_reordered_entries_are_named(self, catalog: Catalog) -> None:
        append(catalog, 5)
        with catalog.session() as session:
            session.execute(update(AuditEntry).where(AuditEntry.seq == 3).values(seq=-3))
            session.execute(update(AuditEntry).where(AuditEntry.seq == 4).values(seq=3))
            session.execute(update(AuditEntry).where(AuditEntry.seq == -3).values(seq=4))
        found = problems(catalog)
        assert found == [("out-of-order", 3), ("out-of-order", 4), ("out-of-order", 5)]

    def test_filters_select_by_time_actor_action_subject_and_outcome(
        self, catalog: Catalog
    ) -> None:
        append(catalog, 3, actor="ana@host", action="backup.start")
        with catalog.session() as session:
            append_entry(session, entry(10, actor="bo@host", action="vault.key.rotate"))
        with catalog.session(readonly=True) as session:

            def seqs(**fields: object) -> list[int]:
                return [row.seq for row in list_entries(session, EntryFilter(**fields))]  # type: ignore[arg-type]

            assert seqs(actor="bo@host") == [4]
            assert seqs(action="vault.*") == [4]
            assert seqs(action="backup.start") == [1, 2, 3]
            assert seqs(since=later(2), until=later(3)) == [2]
            assert seqs(subject="job-3") == [3]
            assert seqs(outcome="refused") == []
            assert seqs(since=T0 + timedelta(days=1)) == []

    def test_two_processes_appending_at_once_never_fork_the_chain(
        self, catalog: Catalog, catalog_url: str, tmp_path: Path
    ) -> None:
        spawn = multiprocessing.get_context("spawn")
        start = spawn.Barrier(2)
        workers = [
            spawn.Process(
                target=append_from_another_process,
                args=(catalog_url, str(tmp_path), worker, APPENDS_PER_PROCESS, start),
            )
            for worker in (1, 2)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=300)
        assert [worker.exitcode for worker in workers] == [0, 0]
        with catalog.session(readonly=True) as session:
            rows = list_entries(session)
            check = check_chain(session)
        assert [row.seq for row in rows] == list(range(1, 2 * APPENDS_PER_PROCESS + 1))
        assert {row.actor for row in rows} == {"worker-1@host", "worker-2@host"}
        assert check.intact, check.problems
