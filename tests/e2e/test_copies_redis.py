"""Issue #14's DR requirement from the CLI: a Redis server's daily rule with a copy action
to the DR vault; the copy restores into a fresh server once the source vault is gone, and
passes its restore test there (the source's metadata travelled with it)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from strongroom.sources.base import SourceContext
from strongroom.sources.redis.client import RedisServer
from strongroom.sources.redis.scratch import scratch_server
from tests.e2e.test_copies_cli import DR_PASS
from tests.integration.sources import redis_data
from tests.support.operations_flow import Cli
from tests.support.services import unique_name

pytestmark = pytest.mark.e2e

PASSWORD_VARIABLE = "STRONGROOM_TEST_REDIS_COPY_PASSWORD"


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[RedisServer, RedisServer]]:
    """The backed-up server (filled) and an empty one to restore into, one password."""
    password = unique_name("redis_copy_pw")
    with (
        scratch_server(SourceContext(scratch=tmp_path), password=password) as source,
        scratch_server(SourceContext(scratch=tmp_path), password=password) as target,
    ):
        with source.client(0) as client:
            redis_data.fill(client, "shop", expire_at_ms=4_102_444_800_000)
        yield source, target


def _config(root: Path, server: RedisServer) -> str:
    return f"""\
version: 1
vaults:
  main:
    url: {(root / "vaults" / "main").as_uri()}
    key: {{provider: passphrase, passphrase: env:VAULT_PASS}}
  dr:
    url: {(root / "vaults" / "dr").as_uri()}
    key: {{provider: passphrase, passphrase: env:DR_PASS}}
resources:
  cache:
    type: redis
    url: redis://{server.host}:{server.port}
    password: env:{PASSWORD_VARIABLE}
    mode: logical
plans:
  cache:
    rules:
      - name: daily
        schedule: cron(0 5 * * ? *)
        target_vault: main
        lifecycle: {{delete_after_days: 7}}
        copy_actions:
          - destination_vault: dr
            lifecycle: {{delete_after_days: 30}}
    selections:
      - name: cache
        names: [cache]
"""


def test_a_redis_backup_copied_to_dr_restores_from_the_copy(
    servers: tuple[RedisServer, RedisServer], tmp_path: Path
) -> None:
    source, target = servers
    config = tmp_path / "strongroom.yaml"
    config.write_text(_config(tmp_path, source))
    cli = Cli(home=tmp_path / "home", env={**DR_PASS, PASSWORD_VARIABLE: source.password or ""})
    cli("apply", "-f", str(config))
    backup = cli.json("start-backup", "cache", "--wait")
    assert backup["state"] == "COMPLETED", backup
    cli("serve", "--once")
    [copy] = cli.json("list-recovery-points", "--vault", "dr")
    assert copy["source_point_id"] == backup["result"]["point_id"]

    shutil.rmtree(tmp_path / "vaults" / "main")
    restored = cli.json(
        "restore",
        copy["id"],
        "--target",
        f"url=redis://{target.host}:{target.port}",
        "--target",
        f"password=env:{PASSWORD_VARIABLE}",
        "--wait",
    )
    assert restored["state"] == "COMPLETED", restored
    with source.client(0) as expected, target.client(0) as found:
        assert redis_data.describe(found) == redis_data.describe(expected)
    verified = cli.json("verify", copy["id"], "--read-data", "--restore-test", "--wait")
    assert verified["state"] == "COMPLETED", verified
