"""The cold tier on S3: a lifecycle move copies the point, self-contained, into the DR
bucket with its packs in the tier's storage class, and it restores from there.

versitygw accepts a storage class and keeps every object as STANDARD (no thaw to
emulate), so what the server is asked is checked on the requests themselves.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from strongroom.catalog.types import Tier
from strongroom.services.retention.cold_tier import open_cold_vault
from strongroom.services.retention.lifecycle import LifecycleService
from strongroom.storage.s3 import S3Store
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


def reach(s3_service: S3Service) -> dict[str, Any]:
    return {
        "endpoint_url": s3_service.url,
        "region": s3_service.region,
        "addressing_style": "path",
        "access_key_id": "env:STRONGROOM_TEST_S3_COLD_KEY_ID",
        "secret_access_key": "env:STRONGROOM_TEST_S3_COLD_SECRET",
    }


def test_a_point_moves_to_the_dr_bucket_in_its_class_and_restores_from_there(
    world: World, s3_service: S3Service
) -> None:
    prefix = unique_name("cold")
    config = world.add_vault(
        "main",
        url=f"s3://{s3_service.bucket}/{prefix}/warm",
        s3=reach(s3_service),
        cold_tier={
            "kind": "separate-store",
            "url": f"s3://{s3_service.dr_bucket}/{prefix}/cold",
            "s3": reach(s3_service),
            "storage_class": "GLACIER_IR",
        },
    )
    data = bytes(range(256)) * 8000
    try:
        point = world.backup("main", data, cold_after_days=7, delete_after_days=120)
        world.advance_to_day(8)

        report = LifecycleService(world.context).run()

        assert [(a.point_id, a.action, a.outcome) for a in report.actions] == [
            (point, "move_to_cold", "moved")
        ]
        row = world.point(point)
        assert row.tier == Tier.COLD and row.cold_point_id is not None
        assert world.vault_point_ids("main") == []  # the warm manifest is dropped
        with open_cold_vault(world.context, config, create=False) as cold:
            assert cold.store.url == f"s3://{s3_service.dr_bucket}/{prefix}/cold"
            with cold.reader(row.cold_point_id) as reader:
                assert reader.read_stream("dump.sql") == data
                packs = {name for name in reader.blob_names() if name.startswith("data/")}
        listed = s3_service.connect().list_objects_v2(
            Bucket=s3_service.dr_bucket, Prefix=f"{prefix}/cold/data/"
        )
        assert {entry["Key"].removeprefix(f"{prefix}/cold/") for entry in listed["Contents"]} == (
            packs
        )
    finally:
        s3_service.empty(s3_service.bucket, f"{prefix}/")
        s3_service.empty(s3_service.dr_bucket, f"{prefix}/")


def test_packs_are_asked_for_in_the_class_and_the_rest_stays_standard(
    s3_service: S3Service,
) -> None:
    prefix = unique_name("class")
    store = S3Store(
        s3_service.dr_bucket, prefix, s3_service.connection(storage_class="DEEP_ARCHIVE")
    )
    sent: dict[str, object] = {}

    def record(request: Any, **_: Any) -> None:
        key = request.url.split(f"/{prefix}/", 1)[1]
        sent[key] = request.headers.get("x-amz-storage-class")

    store.client.meta.events.register("before-send.s3.PutObject", record)
    try:
        store.put("data/ab/pack", b"pack bytes")
        store.put("manifests/point", b"manifest")
        store.put("config", b"config")
    finally:
        s3_service.empty(s3_service.dr_bucket, prefix + "/")

    assert sent == {"data/ab/pack": b"DEEP_ARCHIVE", "manifests/point": None, "config": None}
