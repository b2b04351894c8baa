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
from tests.support.operations_flow import Cli
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


def test_restore_maps_databases_and_filters_keys_given_on_the_command_line(
    servers: tuple[RedisServer, RedisServer], tmp_path: Path
) -> None:
    source, target = servers
    env = {PASSWORD_VARIABLE: source.password or ""}
    cli = Cli(home=tmp_path / "home", env=env)
    config = tmp_path / "strongroom.yaml"
    config.write_text(f"""\
vaults:
  v: {{url: {(tmp_path / "vault").as_uri()}, key: {{provider: passphrase, passphrase: env:VAULT_PASS}}}}
resources:
  cache:
    type: redis
    url: redis://{source.host}:{source.port}
    password: env:{PASSWORD_VARIABLE}
    mode: logical
""")
    cli("apply", "-f", str(config))
    point_id = cli.json("start-backup", "cache", "--vault", "v", "--wait")["result"]["point_id"]
    into = [
        "--target",
        f"url=redis://{target.host}:{target.port}",
        "--target",
        f"password=env:{PASSWORD_VARIABLE}",
    ]

    for bad, named in (
        ("database_map=0-5", "'0-5' is not a FROM:TO pair"),
        ("database_map=0:5,x:6", "'x' is not a database number"),
        ("database_map=0:5,2:5", "two databases to one target database"),
        ("databases=0,,2", "empty item"),
    ):
        refused = cli("restore", point_id, *into, "--target", bad, "--wait", expect=2)
        assert named in refused.stderr.decode(), refused.stderr.decode()
    with target.client() as client:
        assert client.info("keyspace") == {}  # nothing was written by a refused restore

    restored = cli.json(
        "restore",
        point_id,
        *into,
        "--target",
        "database_map=0:5,2:6",
        "--target",
        "key_pattern=shop:*",
        "--wait",
    )
    assert restored["state"] == "COMPLETED", restored
    expected = state(source)[0]
    with target.client(5) as client:
        assert redis_data.describe(client) == expected
    with target.client(6) as client:
        assert client.dbsize() == 0  # database 2 holds only sessions:* keys
    with target.client(0) as client:
        assert client.dbsize() == 0
