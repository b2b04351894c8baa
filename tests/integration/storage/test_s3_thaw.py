"""Thaw requests against the real server, and restoring a cold point from its copy.

versitygw (posix backend) keeps every object STANDARD whatever class it is asked for, and
answers RestoreObject with 501 NotImplemented. So against it: a restore request is sent
and its refusal is a typed error naming the request and the server; a cold tier declared
in GLACIER looks at each pack (HEAD), finds it readable, asks for no thaw, and the point
restores from the cold bucket. What it cannot show (an archived object, a thaw running,
then done) is documented in docs/s3.md, and the states are read from headers in
tests/unit/storage/test_s3_thaw.py.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from strongroom.errors import UnsupportedError
from strongroom.services.retention.cold_tier import point_to_read
from strongroom.services.retention.lifecycle import LifecycleService
from strongroom.storage.s3 import S3Store
from strongroom.storage.s3_thaw import request_restore, thaw
from tests.integration.storage.test_s3_cold import reach
from tests.support.services import S3Service, unique_name
from tests.unit.services.retention_support import World

pytestmark = pytest.mark.integration


@pytest.fixture
def world(
    tmp_path: Path, s3_service: S3Service, monkeypatch: pytest.MonkeyPatch
) -> Iterator[World]:
    monkeypatch.setenv("STRONGROOM_TEST_S3_COLD_KEY_ID", s3_service.user)
    monkeypatch.setenv("STRONGROOM_TEST_S3_COLD_SECRET", s3_service.password)
    world = World(tmp_path)
    yield world
    world.close()


def test_a_restore_request_the_server_does_not_implement_is_a_typed_error(
    s3_service: S3Service,
) -> None:
    prefix = unique_name("thaw")
    store = S3Store(s3_service.dr_bucket, prefix, s3_service.connection(storage_class="GLACIER"))
    sent: list[str] = []
    store.client.meta.events.register(
        "before-send.s3.RestoreObject", lambda request, **_: sent.append(request.url)
    )
    try:
        store.put("data/ab/pack", b"pack bytes")

        with pytest.raises(UnsupportedError) as raised:
            request_restore(store, "data/ab/pack", days=2, tier="Bulk")
    finally:
        s3_service.empty(s3_service.dr_bucket, prefix + "/")

    assert len(sent) == 1 and sent[0].endswith(f"/{prefix}/data/ab/pack?restore")
    assert "does not implement RestoreObject" in str(raised.value)
    assert "VERSITYGW" in str(raised.value)
    assert not raised.value.retryable


def test_objects_the_server_keeps_readable_get_no_thaw_request(s3_service: S3Service) -> None:
    prefix = unique_name("thaw")
    store = S3Store(s3_service.dr_bucket, prefix, s3_service.connection(storage_class="GLACIER"))
    operations: list[str] = []
    store.client.meta.events.register(
        "before-call.s3", lambda model, **_: operations.append(model.name)
    )
    try:
        store.put("data/ab/one", b"one")
        store.put("data/cd/two", b"two")
        operations.clear()

        report = thaw(store, ["data/ab/one", "data/cd/two"], days=1, tier="Standard")
    finally:
        s3_service.empty(s3_service.dr_bucket, prefix + "/")

    assert report.ready
    assert report.readable == ["data/ab/one", "data/cd/two"]
    assert sorted(operations) == ["HeadObject", "HeadObject"]


def test_a_cold_point_in_glacier_is_read_from_its_copy_in_the_cold_bucket(
    world: World, s3_service: S3Service
) -> None:
    prefix = unique_name("thaw")
    world.add_vault(
        "main",
        url=f"s3://{s3_service.bucket}/{prefix}/warm",
        s3=reach(s3_service),
        cold_tier={
            "kind": "separate-store",
            "url": f"s3://{s3_service.dr_bucket}/{prefix}/cold",
            "s3": reach(s3_service),
            "storage_class": "GLACIER",
            "thaw": {"tier": "Bulk", "days": 2},
        },
        chunking={"min_size_bytes": 4096, "average_size_bytes": 8192, "max_size_bytes": 16384},
    )
    # Small chunks, more than a manifest lists inline: the chunk lists live in packs too.
    data = random.Random(13).randbytes(1_500_000)
    try:
        point = world.backup("main", data, cold_after_days=7, delete_after_days=120)
        world.advance_to_day(8)
        LifecycleService(world.context).run()
        row = world.point(point)
        assert row.cold_point_id is not None and world.vault_point_ids("main") == []

        with point_to_read(world.context, "main", point, row.cold_point_id) as (vault, read_id):
            assert vault.store.url == f"s3://{s3_service.dr_bucket}/{prefix}/cold"
            with vault.reader(read_id) as reader:
                assert reader.stream("dump.sql").chunk_lists
                assert reader.read_stream("dump.sql") == data
    finally:
        s3_service.empty(s3_service.bucket, f"{prefix}/")
        s3_service.empty(s3_service.dr_bucket, f"{prefix}/")
