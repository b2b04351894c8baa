"""Opening the catalog: the default SQLite file, URL forms, and errors that say what is wrong."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from strongroom.catalog import jobs, open_catalog
from strongroom.catalog.database import catalog_url
from strongroom.catalog.types import JobKind
from strongroom.errors import ConfigError, ConflictError, ServiceUnavailableError
from tests.support.catalog import T0
from tests.support.waiting import PATIENCE


def test_the_default_catalog_is_a_wal_sqlite_file_in_the_home_folder(tmp_path: Path) -> None:
    home = tmp_path / "home" / ".strongroom"

    with open_catalog(None, home) as catalog, catalog.engine.connect() as connection:
        journal = connection.execute(text("PRAGMA journal_mode")).scalar()
        foreign_keys = connection.execute(text("PRAGMA foreign_keys")).scalar()
        busy_timeout = connection.execute(text("PRAGMA busy_timeout")).scalar()

    assert (home / "catalog.db").is_file()
    assert (journal, foreign_keys, busy_timeout) == ("wal", 1, 30000)


def test_foreign_keys_are_enforced_on_sqlite(tmp_path: Path) -> None:
    with (
        open_catalog(None, tmp_path) as catalog,
        pytest.raises(ConflictError, match="refused"),
        catalog.session() as session,
    ):
        jobs.create_job(
            session,
            job_id="j",
            kind=JobKind.BACKUP,
            at=T0,
            max_attempts=1,
            retry_interval_seconds=0,
            retry_backoff_rate=1,
            resource_id=999,
        )


def test_a_readonly_session_does_not_block_a_writer(tmp_path: Path) -> None:
    with open_catalog(None, tmp_path) as catalog, catalog.session(readonly=True) as reader:
        reader.execute(text("SELECT count(*) FROM jobs")).scalar()
        done = threading.Event()

        def write() -> None:
            with catalog.session() as writer:
                writer.execute(text("DELETE FROM events"))
            done.set()

        thread = threading.Thread(target=write)
        thread.start()
        thread.join(timeout=PATIENCE)
        assert done.is_set()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:p@db.example:5433/cat", "postgresql+psycopg://u:***@db.example:5433/cat"),
        ("postgres://u@db.example/cat", "postgresql+psycopg://u@db.example/cat"),
        ("postgresql+psycopg://u@db.example/cat", "postgresql+psycopg://u@db.example/cat"),
        ("sqlite:////var/lib/strongroom/catalog.db", "sqlite:////var/lib/strongroom/catalog.db"),
    ],
)
def test_catalog_urls_are_normalised_to_the_drivers_strongroom_uses(
    given: str, expected: str, tmp_path: Path
) -> None:
    assert catalog_url(given, tmp_path).render_as_string(hide_password=True) == expected


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("not a url", "not a database URL"),
        ("mysql://u:hunter2-secret@db/cat", "unsupported database"),
        ("postgresql+psycopg2://u@db/cat", "unsupported database"),
        ("sqlite://", "in-memory"),
        ("sqlite:///:memory:", "in-memory"),
        ("postgresql:///cat", "names no host"),
    ],
)
def test_bad_catalog_urls_are_config_errors_without_the_password(
    given: str, message: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        catalog_url(given, tmp_path)
    assert "hunter2-secret" not in str(raised.value)


def test_a_sqlite_file_in_a_missing_folder_is_a_config_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'missing' / 'catalog.db'}"
    with pytest.raises(ConfigError, match="cannot open the catalog file"):
        open_catalog(url, tmp_path)


def test_a_postgresql_url_that_does_not_answer_is_unavailable_naming_the_host(
    tmp_path: Path,
) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nobody listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql://strongroom:s3cret-never-shown@127.0.0.1:{port}/catalog"

    with pytest.raises(ServiceUnavailableError) as raised:
        open_catalog(url, tmp_path)

    assert raised.value.retryable
    assert f"127.0.0.1:{port}" in str(raised.value)
    assert "s3cret-never-shown" not in str(raised.value)
