"""Restoring keys into a live server or cluster, database by database.

:class:`LiveServer` is the target: a standalone server (any database number) or a Redis
Cluster (database 0 only; each key goes to the primary owning its slot on *this* cluster,
whatever the shape of the backed-up one). :func:`load_databases` restores a set of
:class:`KeySource` (one per backed-up database): without ``replace`` it first checks
every target database that holds keys for the keys to restore and refuses before writing
anything; then it loads each database and adds its checks and notes to the report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import redis

from strongroom.errors import ConfigError, ConflictError
from strongroom.sources.base import Check, RestoreReport, SourceContext
from strongroom.sources.redis import records
from strongroom.sources.redis.client import RedisServer, translating
from strongroom.sources.redis.cluster import (
    ClusterNode,
    SlotRouter,
    is_cluster,
    node_servers,
    primaries,
)
from strongroom.sources.redis.restore import (
    LoadCounts,
    Target,
    Versions,
    find_existing,
    load_records,
    refuse_existing,
    restore_functions,
    server_version,
)
from strongroom.sources.redis.target import RedisRestoreTarget


@dataclass
class KeySource:
    """The keys of one backed-up database: ``open`` starts a fresh pass over them.

    ``expected`` is the key count recorded at backup (None: nothing to check against);
    ``checks`` gives the checks of the last pass (stream digests) once it ended.
    """

    number: int
    open: Callable[[], Iterator[records.Record]]
    expected: int | None = None
    checks: Callable[[], list[Check]] = field(default=list)


class LiveServer:
    """A live restore target: a standalone server or the primaries of a cluster."""

    def __init__(self, server: RedisServer) -> None:
        self.server = server
        doing = f"reading {server.address}"
        with server.client() as client, translating(doing):
            self.version = server_version(client)
            self.cluster = is_cluster(client, doing)
            self.nodes: list[ClusterNode] = (
                primaries(client, server.host, doing) if self.cluster else []
            )

    @property
    def address(self) -> str:
        """The address the target was given as."""
        kind = "cluster at " if self.cluster else ""
        return f"{kind}{self.server.address}"

    def check_database(self, number: int) -> None:
        """Refuse a database number a cluster does not have (``ConfigError``)."""
        if self.cluster and number != 0:
            raise ConfigError(
                f"a cluster has database 0 only; database {number} was asked for",
                hint="Map the database to 0 (database_map: {N: 0}) and restore one at a time.",
            )

    @contextmanager
    def target(self, number: int) -> Iterator[Target]:
        """Clients for database ``number`` (every primary, routed by slot, for a cluster)."""
        self.check_database(number)
        with ExitStack() as stack:
            if not self.cluster:
                yield Target([stack.enter_context(self.server.client(number))])
                return
            clients = [
                stack.enter_context(node.client()) for node in node_servers(self.server, self.nodes)
            ]
            yield Target(clients, SlotRouter(self.nodes))

    def holds_keys(self, number: int) -> bool:
        """Tell whether database ``number`` holds any key (on any primary)."""
        with self.target(number) as target, translating(f"reading {self.address}"):
            return any(client.dbsize() for client in target.clients)

    def primary_clients(self) -> list[redis.Redis]:
        """A client per primary (or the one server) for database 0; the caller closes them."""
        if not self.cluster:
            return [self.server.client()]
        return [node.client() for node in node_servers(self.server, self.nodes)]


def library_names(client: redis.Redis, doing: str) -> set[str]:
    """The names of the function libraries a server holds."""
    with translating(doing):
        listed: list[Any] = client.function_list()
    names: set[str] = set()
    for entry in listed:
        fields = (
            entry if isinstance(entry, dict) else dict(zip(entry[::2], entry[1::2], strict=True))
        )
        value = fields.get(b"library_name", fields.get("library_name", b""))
        names.add(value.decode() if isinstance(value, bytes) else str(value))
    return names


def load_functions(
    live: LiveServer, payload: bytes, names: list[str], *, replace: bool, versions: Versions
) -> None:
    """FUNCTION RESTORE on the server (every primary of a cluster)."""
    for client in live.primary_clients():
        with client:
            restore_functions(
                client,
                payload,
                replace=replace,
                versions=versions,
                doing=f"restoring functions {', '.join(names)} on {live.address}",
            )


def refuse_taken_libraries(live: LiveServer, names: list[str]) -> None:
    """Refuse (``ConflictError``) when the target already has one of the libraries."""
    for client in live.primary_clients():
        with client:
            taken = library_names(client, f"listing functions on {live.address}") & set(names)
        if taken:
            raise ConflictError(
                f"{live.address} already has the function libraries "
                f"{', '.join(sorted(taken))}; nothing was written",
                hint="Set replace: true to replace them, or functions: false.",
            )


def load_databases(
    sources: list[KeySource],
    options: RedisRestoreTarget,
    live: LiveServer,
    context: SourceContext,
    report: RestoreReport,
    versions: Versions,
    *,
    before_load: Callable[[], None] = lambda: None,
) -> dict[int, LoadCounts]:
    """Restore every key source into its target database; return the counts per source.

    ``before_load`` runs after the conflict checks, before the first key is written (the
    function libraries go there). Raises ``ConflictError`` before writing anything when
    ``replace`` is off and the target holds keys to restore.
    """
    keep = options.key_matcher()
    for source in sources:
        live.check_database(options.target_database(source.number))
    if not options.replace:
        for source in sources:
            number = options.target_database(source.number)
            if not live.holds_keys(number):
                continue
            where = f"database {number} of {live.address}"
            with live.target(number) as target:
                found, shown = find_existing(
                    target,
                    (record for record in source.open() if keep(record.key)),
                    f"checking {where}",
                    context,
                )
            refuse_existing(found, shown, where)
    before_load()
    restored: dict[int, LoadCounts] = {}
    for source in sources:
        number = options.target_database(source.number)
        with live.target(number) as target:
            counts = load_records(
                target,
                source.open(),
                context,
                replace=options.replace,
                versions=versions,
                doing=f"restoring database {source.number} into {number} of {live.address}",
                keep=keep,
            )
        report.checks.extend(source.checks())
        if options.key_pattern is None and source.expected is not None:
            report.checks.append(
                Check(
                    f"db {source.number} keys restored or expired",
                    source.expected,
                    counts.restored + counts.expired,
                )
            )
        report.notes.append(
            f"db {source.number} -> {number}: {counts.restored} keys restored, "
            f"{counts.expired} skipped as expired"
        )
        restored[source.number] = counts
    return restored
