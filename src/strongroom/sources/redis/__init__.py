"""The ``redis`` source: a Redis server (or a protocol-compatible fork) as an RDB snapshot
or key by key, restored into a live server or placed for a cold start.

Modules: ``source`` (the Source), ``backup`` (snapshot and logical backups),
``replication`` (the RDB through PSYNC), ``rdb`` (RDB checks), ``logical`` (SCAN and
DUMP), ``records`` (the key stream format), ``restore`` (RESTORE pipelined),
``restoring`` (restores and restore tests), ``compare``, ``facts``, ``scratch`` (scratch
servers), ``target`` (the restore target), ``client`` (connections and errors).
"""

from __future__ import annotations

from strongroom.sources.redis.source import RedisSource
from strongroom.sources.redis.target import RedisRestoreTarget

__all__ = ["RedisRestoreTarget", "RedisSource"]
