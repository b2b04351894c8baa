"""Test data for the ``redis`` source, and an independent reader to compare servers with.

:func:`fill` writes every module-free type (strings, hashes, lists, sets, sorted sets,
streams with consumer groups and pending entries), binary keys and values, keys with
and without expiry, small and large encodings. :func:`describe` reads a database with
plain commands (never DUMP), so a restore is judged by what a client sees.
"""

from __future__ import annotations

from typing import Any

import redis

BINARY = bytes(range(256))


def fill(client: redis.Redis, prefix: str, *, expire_at_ms: int | None = None) -> int:
    """Write one key of every type (and some variants) under ``prefix``; return the count.

    ``expire_at_ms`` (absolute, ms) is given to some keys; others have none.
    """
    p = prefix.encode()
    pipe = client.pipeline(transaction=False)
    pipe.set(p + b":string", b"hello")
    pipe.set(p + b":int", 12345)
    pipe.set(p + b":binary-value", BINARY)
    pipe.set(p + b":\x00\xff\x10binary-key", b"binary key's value")
    pipe.set(p + b":big-string", b"x" * 100_000)
    pipe.hset(p + b":hash", mapping={b"a": b"1", b"b": BINARY, b"c": b"3"})
    pipe.hset(p + b":big-hash", mapping={f"f{i}".encode(): f"v{i}".encode() for i in range(600)})
    pipe.rpush(p + b":list", b"one", b"two", BINARY, b"three")
    pipe.rpush(p + b":big-list", *(f"item{i}".encode() for i in range(2000)))
    pipe.sadd(p + b":set", b"a", b"b", BINARY)
    pipe.sadd(p + b":intset", 1, 2, 3, 40000)
    pipe.sadd(p + b":big-set", *(f"m{i}".encode() for i in range(1000)))
    pipe.zadd(p + b":zset", {b"a": 1.5, b"b": -2, BINARY: 3e10})
    pipe.zadd(p + b":big-zset", {f"z{i}".encode(): i * 0.5 for i in range(500)})
    pipe.execute()
    stream = p + b":stream"
    for index in range(20):
        client.xadd(stream, {b"n": str(index).encode(), b"blob": BINARY[: index + 1]})
    client.xgroup_create(stream, "workers", id="0")
    client.xgroup_create(stream, "audit", id="$")
    client.xreadgroup("workers", "alice", {stream: ">"}, count=5)
    client.xreadgroup("workers", "bob", {stream: ">"}, count=3)
    entries = client.xrange(stream, count=2)
    client.xack(stream, "workers", entries[0][0])
    written = 15
    if expire_at_ms is not None:
        for name in (b":string", b":hash", b":list", b":stream"):
            client.pexpireat(p + name, expire_at_ms)
        client.set(p + b":ttl-only", b"v", pxat=expire_at_ms)
        written += 1
    return written


def _value(client: redis.Redis, key: bytes, kind: str) -> Any:
    if kind == "string":
        return client.get(key)
    if kind == "hash":
        return sorted(client.hgetall(key).items())
    if kind == "list":
        return client.lrange(key, 0, -1)
    if kind == "set":
        return sorted(client.smembers(key))
    if kind == "zset":
        return client.zrange(key, 0, -1, withscores=True)
    if kind == "stream":
        groups = [
            (
                group["name"],
                group["last-delivered-id"],
                group["pending"],
                sorted(
                    (consumer["name"], consumer["pending"])
                    for consumer in client.xinfo_consumers(key, group["name"])
                ),
            )
            for group in client.xinfo_groups(key)
        ]
        return (client.xrange(key), sorted(groups))
    raise AssertionError(f"unexpected type {kind}")


def describe(client: redis.Redis, match: str | bytes = "*") -> dict[bytes, tuple[Any, ...]]:
    """Every key (matching ``match``) of the client's database: type, value, expiry (ms)."""
    state: dict[bytes, tuple[Any, ...]] = {}
    for key in client.scan_iter(match=match, count=1000):
        kind = client.type(key).decode()
        expire = client.pexpiretime(key)
        state[key] = (kind, _value(client, key, kind), expire)
    return state
