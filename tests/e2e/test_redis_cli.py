"""Issue #14 "done means" from the CLI: a Redis server backed up through a plan, in
snapshot and in logical mode, restored into a fresh server, restore-tested, and a forged
point (one value altered before sealing) failing its restore test.

The steps are those of :func:`tests.e2e.test_sources_cli.run_case`. The servers are
private redis-servers (Debian's binary) the test starts with the source's scratch-server
code, so the backups hold only this test's keys.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from strongroom.sources.base import SourceContext
from strongroom.sources.redis.client import RedisServer
from strongroom.sources.redis.scratch import scratch_server
from tests.e2e.test_sources_cli import MARKER, Case, run_case
from tests.integration.sources import redis_data
from tests.support.services import unique_name

pytestmark = pytest.mark.e2e

PASSWORD_VARIABLE = "STRONGROOM_TEST_REDIS_CLI_PASSWORD"


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[RedisServer, RedisServer]]:
    """The backed-up server (filled) and an empty one to restore into, one password."""
    password = unique_name("redis_cli_pw")
    with (
        scratch_server(SourceContext(scratch=tmp_path), password=password) as source,
        scratch_server(SourceContext(scratch=tmp_path), password=password) as target,
    ):
        with source.client(0) as client:
            redis_data.fill(client, "shop", expire_at_ms=4_102_444_800_000)
            client.set(b"shop:marker", MARKER.encode())  # short: stored uncompressed
        with source.client(2) as client:
            redis_data.fill(client, "sessions")
        yield source, target


def state(server: RedisServer) -> dict[int, dict[bytes, tuple[object, ...]]]:
    result = {}
    for number in (0, 2):
        with server.client(number) as client:
            result[number] = redis_data.describe(client)
    return result


@pytest.mark.parametrize("mode", ["logical", "snapshot"])
def test_redis_through_a_plan(
    servers: tuple[RedisServer, RedisServer], tmp_path: Path, mode: str
) -> None:
    source, target = servers

    def compare() -> None:
        restored = state(target)
        assert restored == state(source)
        assert len(restored[0]) == 17 and len(restored[2]) == 15
        with target.client() as client:
            client.flushall()  # the next restore (of the next mode) starts empty

    case = Case(
        resource={
            "type": "redis",
            "url": f"redis://{source.host}:{source.port}",
            "password": f"env:{PASSWORD_VARIABLE}",
            "mode": mode,
        },
        restore_target=[
            f"url=redis://{target.host}:{target.port}",
            f"password=env:{PASSWORD_VARIABLE}",
        ],
        compare=compare,
        tampered_checks=["'shop:marker'"] if mode == "logical" else ["CRC64"],
        env={PASSWORD_VARIABLE: source.password or ""},
    )
    run_case(tmp_path, f"cache-{mode}", case)
