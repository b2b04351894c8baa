"""Schema suite: the migrations build exactly the models' tables; times stay aware UTC."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, MetaData, String, exc, select

from strongroom.catalog import Catalog, open_catalog
from strongroom.catalog.migrate import current_revision, head_revision
from strongroom.catalog.models import Base, Resource
from tests.support.catalog import T0, CatalogFixtures, NewCatalogUrl


def schema_differences(catalog: Catalog, metadata: MetaData) -> list[object]:
    with catalog.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))


class SchemaSuite(CatalogFixtures):
    def test_the_migrations_build_exactly_the_models(self, catalog: Catalog) -> None:
        assert schema_differences(catalog, Base.metadata) == []

    def test_the_comparison_notices_a_column_the_migrations_lack(self, catalog: Catalog) -> None:
        # Proves the test above can fail: the same models plus one column differ.
        metadata = MetaData(naming_convention=Base.metadata.naming_convention)
        for table in Base.metadata.sorted_tables:
            table.to_metadata(metadata)
        metadata.tables["jobs"].append_column(Column("priority", String(8), nullable=True))

        differences = schema_differences(catalog, metadata)

        assert [(d[0], d[3].name) for d in differences] == [("add_column", "priority")]  # type: ignore[index]

    def test_opening_again_keeps_the_database_at_the_head_revision(
        self, catalog: Catalog, catalog_url: str, tmp_path: Path
    ) -> None:
        with open_catalog(catalog_url, tmp_path) as again:
            assert current_revision(again.engine) == head_revision()

    def test_processes_opening_a_new_database_at_once_migrate_it_once(
        self, new_catalog_url: NewCatalogUrl, tmp_path: Path
    ) -> None:
        url = new_catalog_url()

        def open_and_close(_: int) -> str | None:
            with open_catalog(url, tmp_path) as catalog:
                return current_revision(catalog.engine)

        with ThreadPoolExecutor(4) as pool:
            revisions = list(pool.map(open_and_close, range(4)))

        assert revisions == [head_revision()] * 4

    def test_timestamps_are_stored_as_instants_and_read_back_in_utc(self, catalog: Catalog) -> None:
        tokyo = timezone(timedelta(hours=9))
        at = T0.astimezone(tokyo)
        with catalog.session() as session:
            session.add(Resource(name="r", type="files", created_at=at, updated_at=at))
        with catalog.session(readonly=True) as session:
            stored = session.scalars(select(Resource.created_at)).one()
            earlier = session.scalars(
                select(Resource.name).where(Resource.created_at < T0 + timedelta(microseconds=1))
            ).all()

        assert stored == T0
        assert stored.tzinfo is not None
        assert stored.utcoffset() == timedelta(0)
        assert earlier == ["r"]

    def test_naive_timestamps_are_refused(self, catalog: Catalog) -> None:
        naive = datetime(2030, 1, 1, 12, 0)  # noqa: DTZ001 (the point of the test)
        with (
            pytest.raises(exc.StatementError, match="naive datetime"),
            catalog.session() as session,
        ):
            session.add(Resource(name="r", type="files", created_at=naive, updated_at=naive))
