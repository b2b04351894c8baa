"""Adapters layer: the data sources, one package (or module) each, in one typed, lazy registry.

Every source type has one line in :data:`REGISTRY`: its ``type`` name, where its class and
its restore-target model live (``"module:Class"``, imported on first use, so that reading
the registry imports no database driver), and the capabilities it declares. Nothing is
discovered by scanning files: a source exists when it has a line here. A resource whose
type has no line is refused by ``validate`` and ``apply`` (see
:func:`strongroom.services.declare.capabilities.capabilities`), so registering a source is all it takes
to accept its resources. How to add one: ``docs/sources/adding-a-source.md``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from strongroom.errors import UnsupportedError

if TYPE_CHECKING:
    from pydantic import BaseModel

    from strongroom.sources.base import Source


def load_attribute(path: str) -> Any:
    """Import ``"package.module:Name"`` and return ``Name``.

    Raises ``ImportError`` (or ``AttributeError``) when the line of the registry is wrong;
    the registry test loads every line, so that never reaches a user.
    """
    module, separator, name = path.partition(":")
    if not separator or not module or not name:
        raise ImportError(f"{path!r} is not of the form 'package.module:Name'")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class SourceEntry:
    """One source type: where its parts live and what it can do.

    ``source`` and ``target`` are ``"module:Class"`` paths of the source class and of its
    restore-target model (a ``ConfigModel``: unknown keys refused, every field described).
    ``keeps_cache``: the source keeps state between backups of one resource (the files
    source's unchanged-file cache) and is built with ``cache_path``, a file it owns.
    """

    type_name: str
    summary: str
    source: str
    target: str
    keeps_cache: bool = False

    def source_class(self) -> type[Any]:
        """Import and return the source class; raises ``TypeError`` if the line is wrong."""
        loaded = load_attribute(self.source)
        if not isinstance(loaded, type) or getattr(loaded, "type_name", None) != self.type_name:
            raise TypeError(f"{self.source} is not the source class of type {self.type_name!r}")
        return loaded

    def target_model(self) -> type[BaseModel]:
        """Import and return the restore-target model; raises ``TypeError`` if the line is wrong."""
        from pydantic import BaseModel

        loaded = load_attribute(self.target)
        if not (isinstance(loaded, type) and issubclass(loaded, BaseModel)):
            raise TypeError(f"{self.target} is not a pydantic model")
        return loaded

    def build(self, settings: Any, *, resource: str, cache_dir: Path) -> Source:
        """Build the source for one resource from its configuration model.

        A source that keeps a cache gets ``cache_dir/TYPE/RESOURCE.sqlite``. Raises
        ``TypeError`` when the class built is not a ``Source``.
        """
        from strongroom.sources.base import Source

        options: dict[str, Any] = {}
        if self.keeps_cache:
            options["cache_path"] = cache_dir / self.type_name / f"{resource}.sqlite"
        source = self.source_class()(settings, **options)
        if not isinstance(source, Source):
            raise TypeError(f"{self.source} does not implement the Source protocol")
        return source

    def parse_target(self, target: Mapping[str, Any]) -> BaseModel:
        """Check a restore target against this source's model; see ``targets.parse_target``."""
        from strongroom.sources.targets import parse_target

        return parse_target(self.target_model(), target, self.type_name)


REGISTRY: Final[dict[str, SourceEntry]] = {
    entry.type_name: entry
    for entry in (
        SourceEntry(
            "files",
            "folders and files on the worker's machine",
            source="strongroom.sources.files.source:FilesSource",
            target="strongroom.sources.files.target:FilesRestoreTarget",
            keeps_cache=True,
        ),
        SourceEntry(
            "kafka",
            "topics of an Apache Kafka cluster, record by record, and consumer group offsets",
            source="strongroom.sources.kafka.source:KafkaSource",
            target="strongroom.sources.kafka.target:KafkaRestoreTarget",
            keeps_cache=True,
        ),
        SourceEntry(
            "kubernetes",
            "the API objects of a Kubernetes cluster, restored in dependency order",
            source="strongroom.sources.kubernetes.source:KubernetesSource",
            target="strongroom.sources.kubernetes.target:KubernetesRestoreTarget",
        ),
        SourceEntry(
            "mysql",
            "every database of a MySQL or MariaDB server, and its accounts",
            source="strongroom.sources.mysql.source:MysqlSource",
            target="strongroom.sources.mysql.target:MysqlRestoreTarget",
        ),
        SourceEntry(
            "postgres",
            "every database of a PostgreSQL server, and its roles",
            source="strongroom.sources.postgres.source:PostgresSource",
            target="strongroom.sources.postgres.target:PostgresRestoreTarget",
        ),
        SourceEntry(
            "redis",
            "a Redis server or cluster, as an RDB snapshot or key by key",
            source="strongroom.sources.redis.source:RedisSource",
            target="strongroom.sources.redis.target:RedisRestoreTarget",
        ),
        SourceEntry(
            "sqlite",
            "one SQLite database file",
            source="strongroom.sources.sqlite:SqliteSource",
            target="strongroom.sources.sqlite:SqliteRestoreTarget",
        ),
    )
}
"""Every source type by its ``type`` name; each one is added here explicitly, never discovered."""


def source_types() -> list[str]:
    """Return the resource types that have a source, sorted."""
    return sorted(REGISTRY)


def entry_for(type_name: str, *, resource: str | None = None) -> SourceEntry:
    """Return the registry entry of a resource type.

    Raises ``UnsupportedError`` (naming ``resource`` when given) for a type with no source.
    """
    entry = REGISTRY.get(type_name)
    if entry is None:
        message = f"resource type {type_name!r} has no source yet"
        if resource:
            message = f"resource {resource!r} is of type {type_name!r}, which has no source yet"
        raise UnsupportedError(
            message,
            hint="Sources exist for: " + ", ".join(source_types()) + ".",
        )
    return entry
