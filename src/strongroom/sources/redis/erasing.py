"""Erasure requests re-applied to a Redis server a restore (test) just wrote.

Every key matching a request's patterns is removed from every database holding keys on
the server (``sources/erasure.py``). A cluster target is refused: its keys live on
several primaries, and a scan of one node would miss the rest.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import ExitStack

from strongroom.errors import ErasureError
from strongroom.sources.erasure import Erasure, ErasureEffect, KeyStore, apply_keys
from strongroom.sources.redis import facts
from strongroom.sources.redis.client import RedisServer, translating
from strongroom.sources.redis.live import LiveServer


def erase(server: RedisServer, erasures: Iterable[Erasure], target: str) -> list[ErasureEffect]:
    """Remove the keys of every ``keys`` request from ``server``; return one effect each.

    Raises ``ErasureError`` for a cluster target or a key still there after the removal,
    the translated errors of redis-py otherwise.
    """
    keyed = [erasure for erasure in erasures if erasure.kind == "keys"]
    if not keyed:
        return []
    doing = f"erasing in {target}"
    if LiveServer(server).cluster:
        raise ErasureError(
            f"erasure requests {', '.join(item.request_id for item in keyed)} cannot be "
            f"re-applied to the cluster at {server.address}",
            hint="Restore into a standalone server (url) to have the requests re-applied.",
        )
    with server.client() as client:
        numbers = sorted(int(number) for number in facts.read_keyspace(client, doing))
    with ExitStack() as stack, translating(doing):
        databases: dict[int, KeyStore] = {
            number: stack.enter_context(server.client(number)) for number in numbers
        }
        return apply_keys(databases, keyed, target=target)
