"""The fast path that skips Alembic for an up-to-date catalog agrees with Alembic."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, inspect, text

from strongroom.catalog import migrate


def test_packaged_head_agrees_with_alembic() -> None:
    assert migrate.packaged_head() == migrate.head_revision()


def test_is_current_only_after_upgrade(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'c.db'}")
    try:
        assert not migrate.is_current(engine)
        migrate.upgrade(engine)
        assert migrate.is_current(engine)
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = 'older'"))
        assert not migrate.is_current(engine)
    finally:
        engine.dispose()


def test_a_catalog_at_0003_gains_the_settings_table_and_is_current_again(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'c.db'}")
    try:
        migrate.upgrade(engine, "0003")
        assert not migrate.is_current(engine)
        assert not inspect(engine).has_table("settings")

        migrate.upgrade(engine)

        assert migrate.is_current(engine)
        assert migrate.packaged_head() == "0011"
        assert inspect(engine).has_table("settings")
    finally:
        engine.dispose()
