"""The ``redis`` source against real Redis servers (Debian's redis-server).

Backups and restores that need whole databases run against private servers this module
starts with the source's own scratch-server code (a real redis-server on a free port), so
they can use several databases without touching what other test runs keep on the shared
server of dev/services. The shared server is used for logins and ACL users (each test
makes its own, with a unique name, and deletes it) and for a backup filtered to the keys
a test wrote. Fidelity is judged by :func:`redis_data.describe`, which reads with plain
commands, never DUMP.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import anycrc
import pytest
import redis

from strongroom.config.resources import RedisResource
from strongroom.errors import (
    AccessDeniedError,
    ConfigError,
    ConflictError,
    IntegrityError,
    NetworkError,
    SnapshotRefusedError,
    UnsupportedError,
)
from strongroom.sources.base import Source, SourceContext
from strongroom.sources.redis import RedisSource, records
from strongroom.sources.redis.client import RedisServer
from strongroom.sources.redis.scratch import free_port, scratch_server
from tests.integration.sources import redis_data
from tests.support.services import RedisService, unique_name
from tests.support.source_fakes import MemoryReader, MemorySink

pytestmark = pytest.mark.integration

PASSWORD_VARIABLE = "STRONGROOM_TEST_SOURCE_REDIS_PASSWORD"
FAR_FUTURE_MS = 4_102_444_800_000  # 2100-01-01: never expires during a test


@pytest.fixture
def context(tmp_path: Path) -> SourceContext:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    return SourceContext(scratch=scratch)


@pytest.fixture
def private(tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server (all databases free for this test)."""
    folder = tmp_path / "private-a"
    folder.mkdir()
    with scratch_server(SourceContext(scratch=folder)) as server:
        yield server


@pytest.fixture
def other(tmp_path: Path) -> Iterator[RedisServer]:
    """A second private redis-server, the target of restores into a fresh server."""
    folder = tmp_path / "private-b"
    folder.mkdir()
    with scratch_server(SourceContext(scratch=folder)) as server:
        yield server


def resource(
    server: RedisServer, monkeypatch: pytest.MonkeyPatch, **settings: object
) -> RedisResource:
    monkeypatch.setenv(PASSWORD_VARIABLE, server.password or "")
    return RedisResource.model_validate(
        {
            "type": "redis",
            "url": f"redis://{server.host}:{server.port}",
            "username": server.username,
            "password": f"env:{PASSWORD_VARIABLE}" if server.password else None,
            **settings,
        }
    )


def target_of(
    server: RedisServer, monkeypatch: pytest.MonkeyPatch, **options: object
) -> dict[str, object]:
    variable = f"{PASSWORD_VARIABLE}_TARGET"
    monkeypatch.setenv(variable, server.password or "")
    return {"url": f"redis://{server.host}:{server.port}", "password": f"env:{variable}", **options}


def fill_databases(server: RedisServer) -> None:
    with server.client(0) as client:
        redis_data.fill(client, "zero")
        client.function_load(
            "#!lua name=srlib\nredis.register_function('sr_answer', function() return 42 end)"
        )
    with server.client(3) as client:
        redis_data.fill(client, "three", expire_at_ms=FAR_FUTURE_MS)
        redis_data.fill(client, "more")


def state(server: RedisServer, database: int, match: str = "*") -> dict[bytes, tuple[object, ...]]:
    with server.client(database) as client:
        return redis_data.describe(client, match)


def backup(source: RedisSource, context: SourceContext) -> tuple[dict[str, object], MemoryReader]:
    sink = MemorySink()
    result = source.backup(context, sink)
    assert not result.partial
    return result.metadata, MemoryReader(sink.streams)


# -- logical mode ------------------------------------------------------------------------


def test_logical_backup_restores_every_type_into_a_fresh_server(
    private: RedisServer,
    other: RedisServer,
    context: SourceContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fill_databases(private)
    source = RedisSource(resource(private, monkeypatch, mode="logical"))
    assert isinstance(source, Source)

    metadata, reader = backup(source, context)

    assert sorted(reader.streams) == ["db/0.keys", "db/3.keys", "functions.dump"]
    assert metadata["mode"] == "logical"
    databases = metadata["databases"]
    assert databases["0"]["keys"] == 15
    assert databases["3"]["keys"] == 31
    assert databases["3"]["expiring"] == 5
    assert databases["0"]["types"] == {
        "hash": 2,
        "list": 2,
        "set": 3,
        "stream": 1,
        "string": 5,
        "zset": 2,
    }
    assert metadata["server"]["version"].startswith("7.")
    assert metadata["functions"]["libraries"] == ["srlib"]

    report = source.restore(context, reader, metadata, target_of(other, monkeypatch))

    assert report.ok, report.failures
    assert state(other, 0) == state(private, 0)
    assert state(other, 3) == state(private, 3)
    with other.client() as client:
        assert client.fcall("sr_answer", 0) == 42


def test_restore_maps_databases_and_filters_keys(
    private: RedisServer,
    other: RedisServer,
    context: SourceContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fill_databases(private)
    source = RedisSource(resource(private, monkeypatch, mode="logical"))
    metadata, reader = backup(source, context)

    report = source.restore(
        context,
        reader,
        metadata,
        target_of(
            other,
            monkeypatch,
            databases=[3],
            database_map={3: 5},
            key_pattern="three:*",
            functions=False,
        ),
    )

    assert report.ok, report.failures
    assert state(other, 5) == state(private, 3, "three:*")
    assert state(other, 3) == {}
    assert state(other, 0) == {}


def test_restore_refuses_a_target_holding_the_keys_unless_replace(
    private: RedisServer, context: SourceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill_databases(private)
    source = RedisSource(resource(private, monkeypatch, mode="logical"))
    metadata, reader = backup(source, context)
    before = state(private, 3)
    with private.client(3) as client:
        client.delete(b"three:hash")
        client.set(b"three:string", b"changed since the backup")

    with pytest.raises(ConflictError, match="already holds 30 of the keys") as refused:
        source.restore(context, reader, metadata, {"databases": [3], "functions": False})
    assert "nothing was written" in str(refused.value)
    with private.client(3) as client:
        assert client.exists(b"three:hash") == 0
        assert client.get(b"three:string") == b"changed since the backup"

    report = source.restore(context, reader, metadata, {"replace": True})

    assert report.ok, report.failures
    assert state(private, 3) == before


def test_restore_test_passes_and_names_the_key_of_a_damaged_payload(
    private: RedisServer, context: SourceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill_databases(private)
    source = RedisSource(resource(private, monkeypatch, mode="logical"))
    metadata, reader = backup(source, context)

    good = source.restore_test(context, reader, metadata)

    assert good.ok, good.failures
    assert "scratch redis-server" in good.target
    names = [check.name for check in good.checks]
    assert "db 3 keys by type" in names

    stream = bytearray(reader.streams["db/0.keys"])
    marker = stream.find(b"hello")  # the value of zero:string, inside its DUMP payload
    stream[marker] ^= 0x01
    damaged = MemoryReader({**reader.streams, "db/0.keys": bytes(stream)})

    bad = source.restore_test(context, damaged, metadata)

    assert not bad.ok
    assert any("'zero:string'" in check.name for check in bad.failures), bad.failures


def test_restore_test_fails_on_counts_that_do_not_match(
    private: RedisServer, context: SourceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill_databases(private)
    source = RedisSource(resource(private, monkeypatch, mode="logical"))
    metadata, reader = backup(source, context)
    metadata["databases"]["3"]["types"]["hash"] += 1  # type: ignore[index]
    metadata["databases"]["3"]["keys"] += 1  # type: ignore[index]

    report = source.restore_test(context, reader, metadata)

    assert not report.ok
    assert {check.name for check in report.failures} == {
        "db 3 keys restored or expired",
        "db 3 keys by type",
    }


def test_a_payload_from_a_newer_redis_is_refused_naming_both_versions(
    private: RedisServer,
    other: RedisServer,
    context: SourceContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with private.client() as client:
        client.set(b"versioned", b"value")
        payload = bytearray(client.dump(b"versioned"))
    # As a future Redis would write it: RDB version 99, with a correct CRC64.
    struct.pack_into("<H", payload, len(payload) - 10, 99)
    crc = anycrc.Model("CRC64-REDIS").calc(bytes(payload[:-8]))
    struct.pack_into("<Q", payload, len(payload) - 8, crc)
    stream = records.MAGIC + records.encode(b"versioned", records.NO_EXPIRY, bytes(payload))
    import hashlib

    metadata = {
        "format": "strongroom-redis",
        "version": 1,
        "mode": "logical",
        "server": {"address": "future", "version": "99.0.0"},
        "functions": None,
        "databases": {
            "0": {"stream": "db/0.keys", "keys": 1, "sha256": hashlib.sha256(stream).hexdigest()}
        },
    }
    source = RedisSource(resource(private, monkeypatch, mode="logical"))

    with pytest.raises(UnsupportedError) as refused:
        source.restore(
            context, MemoryReader({"db/0.keys": stream}), metadata, target_of(other, monkeypatch)
        )

    message = str(refused.value)
    assert "Redis 99.0.0" in message
    assert "Redis 7." in message
    assert "'versioned'" in message


def test_keys_expired_since_the_backup_are_skipped(
    private: RedisServer,
    other: RedisServer,
    context: SourceContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with private.client() as client:
        client.set(b"stays", b"1")
        client.set(b"lapses", b"2")
        payloads = {key: client.dump(key) for key in (b"stays", b"lapses")}
    stream = (
        records.MAGIC
        + records.encode(b"stays", records.NO_EXPIRY, payloads[b"stays"])
        + records.encode(b"lapses", 1_000, payloads[b"lapses"])  # 1970: long past
    )
    import hashlib

    metadata = {
        "format": "strongroom-redis",
        "version": 1,
        "mode": "logical",
        "server": {"address": "x", "version": "7.0.0"},
        "functions": None,
        "databases": {
            "0": {"stream": "db/0.keys", "keys": 2, "sha256": hashlib.sha256(stream).hexdigest()}
        },
    }
    source = RedisSource(resource(private, monkeypatch, mode="logical"))

    report = source.restore(
        context, MemoryReader({"db/0.keys": stream}), metadata, target_of(other, monkeypatch)
    )

    assert report.ok, report.failures
    assert "1 keys restored, 1 skipped as expired" in " ".join(report.notes)
    with other.client() as client:
        assert client.keys() == [b"stays"]
        assert client.pexpiretime(b"stays") == -1


# -- snapshot mode -----------------------------------------------------------------------


def test_snapshot_is_checked_recorded_and_restore_tested(
    private: RedisServer, context: SourceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill_databases(private)
    source = RedisSource(resource(private, monkeypatch))

    metadata, reader = backup(source, context)

    assert list(reader.streams) == ["dump.rdb"]
    assert reader.streams["dump.rdb"].startswith(b"REDIS")
    rdb = metadata["rdb"]
    assert rdb["version"] >= 10
    assert len(rdb["crc64"]) == 16
    assert rdb["aux"]["redis-ver"] == metadata["server"]["version"]
    assert metadata["replication"]["offset"] >= 0
    assert metadata["keyspace_before"] == {"0": 15, "3": 31}

    report = source.restore_test(context, reader, metadata)

    assert report.ok, report.failures
    assert {check.name for check in report.checks} >= {"rdb crc64", "db 0 keys", "db 3 keys"}


def test_snapshot_placed_for_a_cold_start_and_restored_into_a_live_server(
    private: RedisServer,
    other: RedisServer,
    context: SourceContext,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    fill_databases(private)
    source = RedisSource(resource(private, monkeypatch))
    metadata, reader = backup(source, context)
    folder = tmp_path / "cold"

    placed = source.restore(context, reader, metadata, {"path": str(folder)})

    assert placed.ok, placed.failures
    with pytest.raises(ConflictError, match="exists"):
        source.restore(context, reader, metadata, {"path": str(folder)})
    start = tmp_path / "start"
    start.mkdir()
    with scratch_server(SourceContext(scratch=start), rdb=folder / "dump.rdb") as started:
        assert state(started, 0) == state(private, 0)
        assert state(started, 3) == state(private, 3)

    live = source.restore(
        context, reader, metadata, target_of(other, monkeypatch, database_map={3: 4})
    )

    assert live.ok, live.failures
    assert state(other, 4) == state(private, 3)
    assert state(other, 0) == state(private, 0)


def test_a_damaged_rdb_is_never_placed(
    private: RedisServer, context: SourceContext, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fill_databases(private)
    source = RedisSource(resource(private, monkeypatch))
    metadata, reader = backup(source, context)
    rdb = bytearray(reader.streams["dump.rdb"])
    rdb[len(rdb) // 2] ^= 0xFF
    folder = tmp_path / "cold"

    with pytest.raises(IntegrityError, match="CRC64"):
        source.restore(
            context, MemoryReader({"dump.rdb": bytes(rdb)}), metadata, {"path": str(folder)}
        )

    assert list(folder.iterdir()) == []


# -- bad input, on the shared server -----------------------------------------------------


@pytest.fixture
def acl_user(redis_service: RedisService) -> Iterator[tuple[str, str]]:
    """Make ACL users on the shared server (unique names); delete them afterwards."""
    made: list[str] = []

    def make(*rules: str) -> tuple[str, str]:
        name = unique_name("sr_redis_user")
        password = unique_name("pw")
        with redis_service.connect() as client:
            client.acl_setuser(name, enabled=True, passwords=[f"+{password}"], reset=True)
            client.execute_command("ACL", "SETUSER", name, "~*", "&*", *rules)
        made.append(name)
        return name, password

    yield make  # type: ignore[misc]
    with redis_service.connect() as client:
        for name in made:
            client.acl_deluser(name)


def shared(
    redis_service: RedisService,
    monkeypatch: pytest.MonkeyPatch,
    user: str,
    password: str,
    **settings: object,
) -> RedisSource:
    server = RedisServer(
        host=redis_service.host, port=redis_service.port, username=user, password=password
    )
    return RedisSource(resource(server, monkeypatch, **settings))


def test_wrong_password_is_access_denied(
    redis_service: RedisService, context: SourceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    for mode in ("logical", "snapshot"):
        source = shared(
            redis_service, monkeypatch, redis_service.user, "not-the-password", mode=mode
        )
        with pytest.raises(AccessDeniedError, match="refused the login"):
            source.backup(context, MemorySink())


def test_an_acl_user_without_dump_gets_the_command_named(
    redis_service: RedisService,
    acl_user: object,
    context: SourceContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    prefix = unique_name("sr_redis_acl")
    with redis_service.connect() as client:
        client.set(f"{prefix}:a", "1")
    try:
        user, password = acl_user("+@all", "-dump")  # type: ignore[operator]
        source = shared(
            redis_service, monkeypatch, user, password, mode="logical", key_pattern=f"{prefix}:*"
        )
        sink = MemorySink()
        with pytest.raises(AccessDeniedError, match="DUMP command") as denied:
            source.backup(context, sink)
        assert "+dump" in denied.value.hint
    finally:
        with redis_service.connect() as client:
            client.delete(f"{prefix}:a")


def test_a_managed_service_stand_in_refuses_snapshots_and_falls_back_to_logical(
    redis_service: RedisService,
    acl_user: object,
    context: SourceContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # How a managed service looks to a client: SYNC, PSYNC, CONFIG and BGSAVE are not allowed.
    user, password = acl_user("+@all", "-sync", "-psync", "-config", "-bgsave")  # type: ignore[operator]
    source = shared(redis_service, monkeypatch, user, password)

    with pytest.raises(SnapshotRefusedError, match="PSYNC command") as refused:
        source.backup(context, MemorySink())
    assert "mode: logical" in refused.value.hint

    prefix = unique_name("sr_redis_managed")
    with redis_service.connect() as client:
        redis_data.fill(client, prefix)
    try:
        monkeypatch.setenv(PASSWORD_VARIABLE, password)
        fallback = RedisSource(
            RedisResource(
                type="redis",
                url=f"redis://{redis_service.host}:{redis_service.port}",
                username=user,
                password=f"env:{PASSWORD_VARIABLE}",
                fallback_to_logical=True,
            )
        )
        result = fallback.backup(context, MemorySink())
        assert result.metadata["mode"] == "logical"
        assert "PSYNC" in result.metadata["fallback_reason"]
    finally:
        with redis_service.connect() as client:
            client.delete(*client.keys(f"{prefix}:*"))


def test_logical_backup_of_the_shared_server_filtered_to_a_prefix(
    redis_service: RedisService,
    other: RedisServer,
    context: SourceContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    prefix = unique_name("sr_redis_shared")
    with redis_service.connect() as client:
        redis_data.fill(client, prefix, expire_at_ms=FAR_FUTURE_MS)
    try:
        server = RedisServer(
            host=redis_service.host,
            port=redis_service.port,
            username=redis_service.user,
            password=redis_service.password,
        )
        source = RedisSource(
            resource(server, monkeypatch, mode="logical", databases=[0], key_pattern=f"{prefix}:*")
        )
        metadata, reader = backup(source, context)
        assert metadata["databases"]["0"]["keys"] == 16
        report = source.restore(
            context, reader, metadata, target_of(other, monkeypatch, functions=False)
        )
        assert report.ok, report.failures
        with redis_service.connect() as client:
            assert redis_data.describe(client, f"{prefix}:*") == state(other, 0)
    finally:
        with redis_service.connect() as client:
            client.delete(*client.keys(f"{prefix}:*"))


def test_an_unreachable_server_is_a_retryable_network_error(
    context: SourceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    nobody = RedisServer(host="127.0.0.1", port=free_port(), password="x")
    for mode in ("logical", "snapshot"):
        with pytest.raises(NetworkError) as failed:
            RedisSource(resource(nobody, monkeypatch, mode=mode)).backup(context, MemorySink())
        assert failed.value.retryable


def test_a_logical_point_cannot_be_placed_as_an_rdb(
    private: RedisServer, context: SourceContext, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    source = RedisSource(resource(private, monkeypatch, mode="logical"))
    with private.client() as client:
        client.set("k", "v")
    metadata, reader = backup(source, context)
    with pytest.raises(ConfigError, match="logical recovery point"):
        source.restore(context, reader, metadata, {"path": str(tmp_path / "x")})


# -- cluster mode ------------------------------------------------------------------------


@contextmanager
def cluster(folder: Path, primaries: int) -> Iterator[RedisServer]:
    """Start a cluster of ``primaries`` real redis-servers (slots split evenly); yield node 1."""
    password = unique_name("cluster_pw")
    with ExitStack() as stack:
        nodes: list[tuple[RedisServer, int]] = []
        for index in range(primaries):
            bus = free_port()
            place = folder / f"node{index}"
            place.mkdir(parents=True)
            server = stack.enter_context(
                scratch_server(
                    SourceContext(scratch=place),
                    password=password,
                    settings=["cluster-enabled yes", f"cluster-port {bus}"],
                )
            )
            nodes.append((server, bus))
        per_node = 16384 // primaries
        for index, (server, _) in enumerate(nodes):
            last = 16383 if index == primaries - 1 else (index + 1) * per_node - 1
            with server.client() as client:
                client.execute_command("CLUSTER", "ADDSLOTSRANGE", index * per_node, last)
        first = nodes[0][0]
        with first.client() as client:
            for server, bus in nodes[1:]:
                client.execute_command("CLUSTER", "MEET", server.host, server.port, bus)
        for server, _ in nodes:
            with server.client() as client:
                # Waits for the cluster bus to converge (a condition, bounded by the test timeout).
                while (
                    client.cluster("INFO")["cluster_state"] != "ok"
                    or int(client.cluster("INFO")["cluster_known_nodes"]) != primaries
                ):
                    time.sleep(0.05)
        yield first


def cluster_state(seed: RedisServer) -> dict[bytes, tuple[object, ...]]:
    client = redis.RedisCluster(host=seed.host, port=seed.port, password=seed.password)
    try:
        state: dict[bytes, tuple[object, ...]] = {}
        for node in client.get_primaries():
            node_client = client.get_redis_connection(node)
            state.update(redis_data.describe(node_client))
        return state
    finally:
        client.close()


def test_cluster_backup_restores_into_a_cluster_of_another_shape(
    tmp_path: Path, context: SourceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    with cluster(tmp_path / "three", 3) as source_seed, cluster(tmp_path / "two", 2) as target_seed:
        client = redis.RedisCluster(
            host=source_seed.host, port=source_seed.port, password=source_seed.password
        )
        for index in range(300):
            client.set(f"key:{index}", f"value {index}", px=3_600_000 if index % 7 == 0 else None)
        for prefix in ("{a}", "{b}", "{c}"):
            redis_data.fill(client.get_redis_connection(client.get_node_from_key(prefix)), prefix)
        client.close()
        before = cluster_state(source_seed)
        assert len(before) == 345
        source = RedisSource(resource(source_seed, monkeypatch, mode="cluster"))

        metadata, reader = backup(source, context)

        assert metadata["mode"] == "cluster"
        assert len(metadata["nodes"]) == 3
        assert metadata["keys"] == 345
        assert len(metadata["databases"]["0"]["parts"]) == 3
        assert sum(part["keys"] for part in metadata["databases"]["0"]["parts"]) == 345

        report = source.restore(context, reader, metadata, target_of(target_seed, monkeypatch))

        assert report.ok, report.failures
        assert cluster_state(target_seed) == before
        with pytest.raises(ConflictError, match="already holds 345"):
            source.restore(context, reader, metadata, target_of(target_seed, monkeypatch))

        tested = source.restore_test(context, reader, metadata)

        assert tested.ok, tested.failures
        described = source.describe(context)
        assert sorted(described.parts) == sorted(reader.streams)


def test_describe_names_the_server_mode_and_parts(
    private: RedisServer, context: SourceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill_databases(private)

    logical = RedisSource(resource(private, monkeypatch, mode="logical")).describe(context)
    snapshot = RedisSource(resource(private, monkeypatch)).describe(context)

    assert logical.parts == ["db/0.keys", "db/3.keys"]
    assert "46 key(s) in 2 database(s)" in logical.summary
    assert snapshot.parts == ["dump.rdb"]
    assert snapshot.tools["server"].startswith("7.")
