"""What a Redis server says about itself (``INFO``), as recorded in a recovery point."""

from __future__ import annotations

from collections import Counter
from typing import Any

import redis
import redis.exceptions

from strongroom.sources.base import JsonObject
from strongroom.sources.redis.client import pipeline, translate


def server_facts(client: redis.Redis, doing: str) -> JsonObject:
    """Return version, mode, role, memory used and the key count of every database.

    Raises typed errors (``AccessDeniedError`` naming INFO when the user may not run it).
    """
    try:
        info: dict[str, Any] = client.info("everything")
    except redis.exceptions.RedisError as exc:
        raise translate(exc, doing) from exc
    return {
        "version": str(info.get("redis_version", "unknown")),
        "mode": str(info.get("redis_mode", "standalone")),
        "role": str(info.get("role", "unknown")),
        "used_memory": int(info.get("used_memory", 0)),
        "keyspace": keyspace(info),
    }


def keyspace(info: dict[str, Any]) -> dict[str, int]:
    """The key count of every database holding keys, from a parsed ``INFO``, by number."""
    counts: dict[str, int] = {}
    for name, value in info.items():
        if name.startswith("db") and name[2:].isdigit() and isinstance(value, dict):
            counts[name[2:]] = int(value.get("keys", 0))
    return dict(sorted(counts.items(), key=lambda item: int(item[0])))


def read_keyspace(client: redis.Redis, doing: str) -> dict[str, int]:
    """The key count of every database holding keys, now."""
    try:
        return keyspace(client.info("keyspace"))
    except redis.exceptions.RedisError as exc:
        raise translate(exc, doing) from exc


def count_types(client: redis.Redis, doing: str, batch: int = 1000) -> Counter[str]:
    """Count the keys of the client's database by type (SCAN, then TYPE pipelined)."""
    counts: Counter[str] = Counter()
    cursor: Any = b"0"
    try:
        while True:
            cursor, keys = client.scan(cursor=cursor, count=batch)
            if keys:
                for reply in pipeline(client, [["TYPE", key] for key in keys]):
                    if isinstance(reply, redis.exceptions.ResponseError):
                        raise reply
                    counts[reply.decode() if isinstance(reply, bytes) else str(reply)] += 1
            if int(cursor) == 0:
                return counts
    except redis.exceptions.RedisError as exc:
        raise translate(exc, doing) from exc
