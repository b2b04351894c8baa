"""Redis Cluster: finding the primaries and routing keys to the node that owns their slot.

:func:`primaries` reads ``CLUSTER NODES`` from any node and returns the primaries that
serve slots (failed ones are refused: a backup of a cluster with a failed primary would
miss its keys). :class:`SlotRouter` maps a key to its primary by the key's hash slot
(CRC16 of the key or of its ``{hash tag}``, modulo 16384, as redis-py computes it), so a
restore can send every key to the node of the *target* cluster that owns it, whatever
that cluster's shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import redis
import redis.exceptions
from redis.crc import key_slot

from strongroom.errors import ServiceUnavailableError, StrongroomError
from strongroom.sources.redis.client import RedisServer, pipeline, translate

SLOTS: Final = 16384


@dataclass(frozen=True)
class ClusterNode:
    """One primary: its id, where it listens and the slot ranges it serves."""

    node_id: str
    host: str
    port: int
    slots: tuple[tuple[int, int], ...]

    @property
    def address(self) -> str:
        """``host:port``."""
        return f"{self.host}:{self.port}"


def is_cluster(client: redis.Redis, doing: str) -> bool:
    """Tell whether the server runs in cluster mode (``INFO cluster``)."""
    try:
        info: dict[str, Any] = client.info("cluster")
    except redis.exceptions.RedisError as exc:
        raise translate(exc, doing) from exc
    return bool(int(info.get("cluster_enabled", 0)))


def _slots(fields: list[str]) -> tuple[tuple[int, int], ...]:
    ranges: list[tuple[int, int]] = []
    for field in fields:
        if field.startswith("["):  # a slot being migrated or imported: owned elsewhere
            continue
        first, _, last = field.partition("-")
        ranges.append((int(first), int(last or first)))
    return tuple(ranges)


def primaries(client: redis.Redis, seed_host: str, doing: str) -> list[ClusterNode]:
    """Return the primaries serving slots, in slot order.

    A node announcing no address (``:0``) or an empty host is reached at ``seed_host``.
    Raises ``ServiceUnavailableError`` (retryable) when a primary is marked failed or
    some slots have no primary, typed errors when CLUSTER NODES is refused.
    """
    try:
        reply = pipeline(client, [["CLUSTER", "NODES"]])[0]
        if isinstance(reply, redis.exceptions.ResponseError):
            raise reply
    except redis.exceptions.RedisError as exc:
        raise translate(exc, doing) from exc
    text = reply.decode() if isinstance(reply, bytes) else str(reply)
    nodes: list[ClusterNode] = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 8:
            continue
        flags = set(parts[2].split(","))
        if "master" not in flags:
            continue
        slots = _slots(parts[8:])
        if "fail" in flags or "fail?" in flags:
            if slots:
                raise ServiceUnavailableError(
                    f"{doing}: the primary {parts[0]} ({parts[1]}) is marked failed"
                )
            continue
        if not slots:
            continue
        address = parts[1].split("@")[0].split(",")[0]
        host, _, port = address.rpartition(":")
        nodes.append(ClusterNode(parts[0], host or seed_host, int(port), slots))
    nodes.sort(key=lambda node: node.slots[0])
    covered = sum(last - first + 1 for node in nodes for first, last in node.slots)
    if covered != SLOTS:
        raise ServiceUnavailableError(
            f"{doing}: the primaries serve {covered} of {SLOTS} slots (the cluster is "
            "resharding or incomplete)"
        )
    return nodes


class SlotRouter:
    """Maps keys to the index of the primary (in ``nodes``) that owns their slot."""

    def __init__(self, nodes: list[ClusterNode]) -> None:
        self.nodes = nodes
        self._owner = [-1] * SLOTS
        for index, node in enumerate(nodes):
            for first, last in node.slots:
                for slot in range(first, last + 1):
                    self._owner[slot] = index
        if -1 in self._owner:
            raise StrongroomError("the cluster's slot map has holes")

    def __call__(self, key: bytes) -> int:
        """The index of the primary owning ``key``."""
        return self._owner[key_slot(key)]


def node_servers(server: RedisServer, nodes: list[ClusterNode]) -> list[RedisServer]:
    """The same login on every primary."""
    return [server.with_port(node.port, host=node.host) for node in nodes]
