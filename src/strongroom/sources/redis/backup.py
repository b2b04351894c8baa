"""The two backups of one Redis server: an RDB snapshot, or every key logically.

Streams written:

* snapshot: ``dump.rdb``, the RDB as the server sent it (checked before the stream is
  closed, so a damaged RDB never completes a backup);
* logical: ``db/<n>.keys`` per database (see :mod:`strongroom.sources.redis.records`) and,
  when the server holds function libraries, ``functions.dump`` (``FUNCTION DUMP``).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any, Final

import redis
import redis.exceptions

from strongroom.config.resources import RedisResource
from strongroom.sources.base import JsonObject, SourceContext, StreamSink
from strongroom.sources.redis import facts
from strongroom.sources.redis.client import RedisServer, translate
from strongroom.sources.redis.cluster import node_servers, primaries
from strongroom.sources.redis.logical import DatabaseCounts, dump_database
from strongroom.sources.redis.rdb import RdbCheck
from strongroom.sources.redis.replication import ReplicaLink

FORMAT: Final = "strongroom-redis"
VERSION: Final = 1
RDB_STREAM: Final = "dump.rdb"
FUNCTIONS_STREAM: Final = "functions.dump"
FUNCTIONS_FROM: Final = (7, 0)
EXPIRETIME_FROM: Final = (7, 0)


def database_stream(number: int) -> str:
    """The stream name of one database's keys."""
    return f"db/{number}.keys"


def cluster_stream(node_id: str) -> str:
    """The stream name of one cluster primary's keys."""
    return f"cluster/{node_id}.keys"


def now() -> str:
    """The current time, ISO 8601 in UTC."""
    return datetime.now(UTC).isoformat()


def version_tuple(version: str) -> tuple[int, ...]:
    """``"7.0.15"`` -> ``(7, 0, 15)``; parts that are not numbers end it."""
    numbers: list[int] = []
    for part in version.split("."):
        if not part.isdigit():
            break
        numbers.append(int(part))
    return tuple(numbers)


def base_metadata(server: RedisServer, server_facts: JsonObject, mode: str) -> JsonObject:
    """The fields every Redis recovery point records."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "mode": mode,
        "started_at": now(),
        "server": {"address": server.address, **server_facts},
    }


def snapshot(server: RedisServer, context: SourceContext, sink: StreamSink) -> JsonObject:
    """Stream an RDB into ``dump.rdb``, checked; return the metadata.

    Raises ``SnapshotRefusedError`` when the server refuses PSYNC (nothing is written),
    ``IntegrityError`` for an RDB failing its checks (the stream is not completed),
    typed network and login errors.
    """
    doing = f"reading {server.address}"
    with server.client() as client:
        before = facts.server_facts(client, doing)
    metadata = base_metadata(server, before, "snapshot")
    if context.dry_run:
        return {**metadata, "dry_run": True}
    check = RdbCheck(name=f"the RDB from {server.address}")
    digest = hashlib.sha256()
    with ReplicaLink(server) as link:
        resync = link.start()
        with sink.open_stream(RDB_STREAM) as stream:
            for block in link.payload():
                context.check_cancelled()
                check.feed(block)
                digest.update(block)
                stream.write(block)
                context.progress(len(block))
            rdb = check.finish()
    with server.client() as client:
        after = facts.read_keyspace(client, doing)
    metadata["rdb"] = {
        "stream": RDB_STREAM,
        "version": rdb.version,
        "size": rdb.size,
        "sha256": digest.hexdigest(),
        "crc64": rdb.crc64,
        "aux": rdb.aux,
    }
    metadata["replication"] = {"id": resync.replication_id, "offset": resync.offset}
    metadata["keyspace_before"] = before["keyspace"]
    metadata["keyspace_after"] = after
    metadata["finished_at"] = now()
    return metadata


def logical(
    settings: RedisResource, server: RedisServer, context: SourceContext, sink: StreamSink
) -> JsonObject:
    """Write every selected database key by key (and the functions); return the metadata."""
    doing = f"reading {server.address}"
    with server.client() as client:
        server_facts = facts.server_facts(client, doing)
        version = version_tuple(server_facts["version"])
        numbers = settings.databases or [int(number) for number in server_facts["keyspace"]]
        metadata = base_metadata(server, server_facts, "logical")
        metadata["key_pattern"] = settings.key_pattern
        if context.dry_run:
            return {**metadata, "dry_run": True, "databases": {str(n): {} for n in numbers}}
        metadata["functions"] = (
            _functions(client, context, sink, doing) if version >= FUNCTIONS_FROM else None
        )
    databases: dict[str, JsonObject] = {}
    payload_versions: set[int] = set()
    for number in numbers:
        name = database_stream(number)
        with server.client(number) as client, sink.open_stream(name) as stream:
            counts = dump_database(
                client,
                stream,
                context,
                pattern=settings.key_pattern,
                count=settings.scan_count,
                expiretime=version >= EXPIRETIME_FROM,
                doing=f"dumping database {number} of {server.address}",
            )
        databases[str(number)] = counts.as_metadata(name)
        payload_versions |= counts.rdb_versions
    metadata["databases"] = databases
    metadata["keys"] = sum(entry["keys"] for entry in databases.values())
    metadata["payload_rdb_versions"] = sorted(payload_versions)
    metadata["finished_at"] = now()
    return metadata


def cluster(
    settings: RedisResource, server: RedisServer, context: SourceContext, sink: StreamSink
) -> JsonObject:
    """Write the keys of every primary of a cluster (one stream each); return the metadata.

    Raises ``ServiceUnavailableError`` when a primary is failed or slots are unserved, and
    what :func:`logical` raises.
    """
    doing = f"reading the cluster at {server.address}"
    with server.client() as client:
        server_facts = facts.server_facts(client, doing)
        nodes = primaries(client, server.host, doing)
    metadata = base_metadata(server, server_facts, "cluster")
    metadata["key_pattern"] = settings.key_pattern
    metadata["nodes"] = [
        {"id": node.node_id, "address": node.address, "slots": [list(r) for r in node.slots]}
        for node in nodes
    ]
    if context.dry_run:
        return {**metadata, "dry_run": True, "databases": {"0": {}}}
    version = version_tuple(server_facts["version"])
    parts: list[JsonObject] = []
    total = DatabaseCounts()
    for node, node_server in zip(nodes, node_servers(server, nodes), strict=True):
        name = cluster_stream(node.node_id)
        with node_server.client() as client, sink.open_stream(name) as stream:
            counts = dump_database(
                client,
                stream,
                context,
                pattern=settings.key_pattern,
                count=settings.scan_count,
                expiretime=version >= EXPIRETIME_FROM,
                doing=f"dumping the keys of {node.address}",
            )
        parts.append({"node": node.node_id, **counts.as_metadata(name)})
        total.keys += counts.keys
        total.types.update(counts.types)
        total.expiring += counts.expiring
        total.vanished += counts.vanished
        total.rdb_versions |= counts.rdb_versions
    metadata["databases"] = {
        "0": {
            "parts": parts,
            "keys": total.keys,
            "types": dict(sorted(total.types.items())),
            "expiring": total.expiring,
            "vanished": total.vanished,
        }
    }
    metadata["functions"] = None
    metadata["keys"] = total.keys
    metadata["payload_rdb_versions"] = sorted(total.rdb_versions)
    metadata["finished_at"] = now()
    return metadata


def stream_parts(entry: JsonObject) -> list[JsonObject]:
    """The streams of one database entry (one per primary for a cluster point)."""
    parts: list[JsonObject] = entry.get("parts") or [entry]
    return parts


def _functions(
    client: redis.Redis, context: SourceContext, sink: StreamSink, doing: str
) -> JsonObject | None:
    """Write ``FUNCTION DUMP`` when the server holds libraries; return what was written."""
    try:
        libraries: list[Any] = client.function_list()
        if not libraries:
            return None
        payload = bytes(client.function_dump())
    except redis.exceptions.RedisError as exc:
        raise translate(exc, f"{doing} (functions)") from exc
    names = sorted(_library_name(library) for library in libraries)
    with sink.open_stream(FUNCTIONS_STREAM) as stream:
        stream.write(payload)
    context.progress(len(payload))
    return {
        "stream": FUNCTIONS_STREAM,
        "libraries": names,
        "size": len(payload),
        "sha256": hashlib.sha256(payload).hexdigest(),
    }


def _library_name(library: Any) -> str:
    """The name in one entry of ``FUNCTION LIST`` (a flat list of field, value pairs)."""
    if isinstance(library, dict):
        value = library.get(b"library_name", library.get("library_name", b""))
    else:
        fields = list(library)
        value = fields[fields.index(b"library_name") + 1]
    return value.decode() if isinstance(value, bytes) else str(value)
