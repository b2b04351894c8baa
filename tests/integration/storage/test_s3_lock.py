"""Vault lock on the S3 server: the pre-flight, retention on what a locked vault writes,
retention extended for reused packs, and deletes refused by the server itself.

All against the real server (versitygw with Object Lock). Retention here is GOVERNANCE
(the root account may bypass it to clean up); the smoke test in test_services.py shows
COMPLIANCE refusing even the bypass.
"""

from __future__ import annotations

import io
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from strongroom.catalog import points as catalog_points
from strongroom.catalog import resources as catalog_resources
from strongroom.config.vaults import VaultConfig
from strongroom.engine.clock import ManualClock
from strongroom.errors import PolicyError, UnsupportedError
from strongroom.services.context import AppContext
from strongroom.services.retention.legal_hold import LegalHoldService
from strongroom.services.retention.lock import VaultLockService, parse_lock
from strongroom.services.retention.lock_state import LockState
from strongroom.services.vaults.service import VaultService
from strongroom.services.vaults.stores import s3_connection
from strongroom.storage.s3 import S3Store
from strongroom.storage.s3_lock import CANARY_PREFIX, prove_enforcement, retention_of
from strongroom.vault.format import DATA_PREFIX, MANIFESTS_PREFIX, manifest_name
from tests.support.services import S3Service, unique_name

pytestmark = pytest.mark.integration

PASSPHRASE_VARIABLE = "STRONGROOM_TEST_S3_LOCK_PASSPHRASE"
DATA = random.Random(13).randbytes(3 * 1024 * 1024)


class Locked:
    """One home, one S3 vault under a prefix of its own, and a clock that starts now."""

    def __init__(self, s3_service: S3Service, root: Path, bucket: str) -> None:
        self.s3_service = s3_service
        self.bucket = bucket
        self.prefix = unique_name("lock")
        self.clock = ManualClock(datetime.now(UTC))
        self.context = AppContext(home=root / "home", clock=self.clock)
        self.config = VaultConfig.model_validate(
            {
                "url": f"s3://{bucket}/{self.prefix}",
                "key": {"provider": "passphrase", "passphrase": f"env:{PASSPHRASE_VARIABLE}"},
                "s3": {
                    "endpoint_url": s3_service.url,
                    "region": s3_service.region,
                    "addressing_style": "path",
                    "access_key_id": "env:STRONGROOM_TEST_S3_LOCK_KEY_ID",
                    "secret_access_key": "env:STRONGROOM_TEST_S3_LOCK_SECRET",
                },
            }
        )
        self.vaults = VaultService(self.context)
        self.vaults.create("offsite", self.config)
        self.store = S3Store.from_url(self.config.url, s3_connection(self.config.s3))

    def backup(self) -> str:
        point = self.vaults.backup_streams(
            "offsite", {"data": io.BytesIO(DATA)}, metadata={}, tags={}
        )
        return point.id

    def blobs(self, point_id: str) -> set[str]:
        with self.vaults.open("offsite") as vault, vault.reader(point_id) as reader:
            return reader.blob_names()

    def close(self) -> None:
        self.context.close()
        self.s3_service.empty(self.bucket, self.prefix + "/")


@pytest.fixture(autouse=True)
def _secrets(s3_service: S3Service, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSPHRASE_VARIABLE, "correct horse battery staple")
    monkeypatch.setenv("STRONGROOM_TEST_S3_LOCK_KEY_ID", s3_service.user)
    monkeypatch.setenv("STRONGROOM_TEST_S3_LOCK_SECRET", s3_service.password)


@pytest.fixture
def locked(s3_service: S3Service, tmp_path: Path) -> Iterator[Locked]:
    world = Locked(s3_service, tmp_path, s3_service.bucket)
    yield world
    world.close()


def test_the_preflight_proves_the_server_refuses_a_locked_delete(locked: Locked) -> None:
    proof = prove_enforcement(locked.store)

    assert proof.server.startswith("VERSITYGW at http://127.0.0.1")
    assert proof.refusal.startswith("AccessDenied")
    assert proof.name.startswith(CANARY_PREFIX)
    assert locked.store.versions(proof.name) == []  # released with the governance bypass


def test_a_bucket_without_object_lock_is_refused_and_nothing_is_locked(
    s3_service: S3Service, tmp_path: Path
) -> None:
    plain = Locked(s3_service, tmp_path, s3_service.plain_bucket)
    try:
        with pytest.raises(UnsupportedError) as refused:
            VaultLockService(plain.context).lock(
                "offsite", parse_lock("governance", 7, None, None), actor="admin"
            )
        with plain.context.catalog.session(readonly=True) as session:
            from strongroom.catalog.resources import get_vault

            state = LockState.of(get_vault(session, "offsite"))
    finally:
        plain.close()

    assert f"bucket {s3_service.plain_bucket!r}" in str(refused.value)
    assert "has no Object Lock" in str(refused.value)
    assert "Object Lock" in refused.value.hint
    assert not state.locked


def test_a_locked_vault_retains_its_packs_and_manifests_and_the_server_refuses_deletes(
    locked: Locked, s3_service: S3Service
) -> None:
    VaultLockService(locked.context).lock(
        "offsite", parse_lock("governance", 7, None, None), actor="admin"
    )
    written_at = datetime.now(UTC)
    point_id = locked.backup()
    blobs = locked.blobs(point_id)
    packs = sorted(name for name in blobs if name.startswith(DATA_PREFIX))
    manifests = [name for name in blobs if name.startswith(MANIFESTS_PREFIX)]

    assert packs and len(manifests) == 1
    for name in blobs:
        retention = retention_of(locked.store, name)
        assert retention is not None, name
        mode, until = retention
        assert mode == "GOVERNANCE"
        assert written_at + timedelta(days=7) - timedelta(minutes=5) <= until
        assert until <= datetime.now(UTC) + timedelta(days=7, minutes=5)

    # The server itself refuses: through strongroom's store and through a bare client.
    with pytest.raises(PolicyError) as refused:
        locked.store.delete(packs[0])
    assert "Object Lock" in refused.value.hint
    client = s3_service.connect()
    key = locked.store.key(manifests[0])
    version = locked.store.versions(manifests[0])[0]
    with pytest.raises(ClientError) as denied:
        client.delete_object(Bucket=locked.bucket, Key=key, VersionId=version)
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    assert client.get_object(Bucket=locked.bucket, Key=key)["ContentLength"] > 0
    assert locked.store.stat(packs[0]).size > 0


def test_a_newer_point_extends_the_retention_of_the_packs_it_reuses(locked: Locked) -> None:
    VaultLockService(locked.context).lock(
        "offsite", parse_lock("governance", 2, None, None), actor="admin"
    )
    first = locked.backup()
    first_packs = {name for name in locked.blobs(first) if name.startswith(DATA_PREFIX)}
    before = {name: retention_of(locked.store, name) for name in first_packs}

    locked.clock.set(locked.clock.now() + timedelta(days=3))
    second = locked.backup()
    reused = first_packs & locked.blobs(second)
    after = {name: retention_of(locked.store, name) for name in reused}

    assert reused == first_packs  # the same data: every pack is reused
    for name in reused:
        old, new = before[name], after[name]
        assert old is not None and new is not None
        assert new[1] >= locked.clock.now() + timedelta(days=2) - timedelta(minutes=5)
        assert new[1] > old[1] + timedelta(days=2)


def test_describe_says_where_the_lock_is_enforced(locked: Locked) -> None:
    assert locked.vaults.lock_enforcement("offsite") == "not locked"
    VaultLockService(locked.context).lock(
        "offsite", parse_lock("governance", 1, None, None), actor="admin"
    )

    assert "enforced by the S3 server" in locked.vaults.lock_enforcement("offsite")


def record(locked: Locked, point_id: str) -> None:
    now = locked.clock.now()
    with locked.context.catalog.session() as session:
        resource = catalog_resources.upsert_resource(session, name="docs", type="files", at=now)
        vault = catalog_resources.get_vault(session, "offsite")
        catalog_points.record_recovery_point(
            session,
            point_id=point_id,
            vault_id=vault.id,
            resource_id=resource.id,
            created_at=now,
            completed_at=now,
        )


def test_legal_holds_are_s3_legal_holds_kept_while_any_held_point_needs_a_pack(
    locked: Locked, s3_service: S3Service
) -> None:
    first, second = locked.backup(), locked.backup()
    for point_id in (first, second):
        record(locked, point_id)
    shared = sorted(
        name for name in locked.blobs(first) & locked.blobs(second) if name.startswith(DATA_PREFIX)
    )
    client = s3_service.connect()

    def held(name: str) -> str:
        version = locked.store.versions(name)[0]
        answer = client.get_object_legal_hold(
            Bucket=locked.bucket, Key=locked.store.key(name), VersionId=version
        )
        return answer["LegalHold"]["Status"]

    holds = LegalHoldService(locked.context)
    holds.add(first[:12], reason="case 42", actor="legal@example")
    holds.add(second, reason="case 43", actor="legal@example")
    assert shared and all(held(name) == "ON" for name in locked.blobs(first))
    with pytest.raises(PolicyError):
        locked.store.delete(shared[0])

    holds.remove(first, actor="legal@example")
    assert held(manifest_name(first)) == "OFF"
    assert all(held(name) == "ON" for name in shared)  # the second point still needs them

    holds.remove(second, actor="legal@example")
    assert all(held(name) == "OFF" for name in locked.blobs(second))
