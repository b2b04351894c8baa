"""Adapters layer: one module per data source behind one small Source protocol, registered in one dict."""

from __future__ import annotations

from typing import Final

from strongroom.sources.files import FilesSource
from strongroom.sources.mysql import MysqlSource
from strongroom.sources.postgres import PostgresSource
from strongroom.sources.sqlite import SqliteSource

SOURCES: Final[dict[str, type]] = {
    FilesSource.type_name: FilesSource,
    MysqlSource.type_name: MysqlSource,
    PostgresSource.type_name: PostgresSource,
    SqliteSource.type_name: SqliteSource,
}
"""Every source type by its ``type`` name; each one is added here explicitly, never discovered."""
