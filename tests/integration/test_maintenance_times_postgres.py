"""Two processes recording different vaults' GC times at once on PostgreSQL: neither waits
for the other nor loses the other's time (each vault's time is a row of its own)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

from strongroom.catalog import open_catalog
from strongroom.catalog.maintenance import read_times, record_gc, record_lifecycle_run

from .test_catalog_postgres import _Databases, databases  # noqa: F401  (the fixture)


def test_two_vaults_collected_at_once_touch_separate_rows(
    databases: _Databases,  # noqa: F811
    tmp_path: Path,
) -> None:
    url = databases.create()
    first = open_catalog(url, tmp_path / "one")
    second = open_catalog(url, tmp_path / "two")
    early = datetime(2026, 1, 1, tzinfo=UTC)
    late = datetime(2026, 1, 2, tzinfo=UTC)
    with first.session() as session:
        record_gc(session, "primary", at=early)
        record_gc(session, "long-term", at=early)
        record_lifecycle_run(session, at=early)

    # A second process records its vault's time and has not committed yet; recording the
    # other vault's time must not wait for it (one shared row would: the lock timeout
    # turns that wait into an error instead of a hang).
    with second.session() as two:
        record_gc(two, "long-term", at=late)
        with first.session() as one:
            one.execute(text("SET LOCAL lock_timeout = '5s'"))
            record_gc(one, "primary", at=late)

    with first.session(readonly=True) as session:
        times = read_times(session)
    assert times.gc_at == {"primary": late, "long-term": late}
    assert times.lifecycle_run_at == early


def test_a_vault_name_too_long_for_the_key_is_still_recorded(
    databases: _Databases,  # noqa: F811
    tmp_path: Path,
) -> None:
    catalog = open_catalog(databases.create(), tmp_path)
    name = "v" * 150
    at = datetime(2026, 1, 3, tzinfo=UTC)
    with catalog.session() as session:
        record_gc(session, name, at=at)
    with catalog.session(readonly=True) as session:
        assert read_times(session).gc_at == {name: at}
