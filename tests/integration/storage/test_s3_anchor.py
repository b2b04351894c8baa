"""Audit head anchors in a locked S3 vault (#18): written under the vault lock's Object Lock
retention, so the server itself refuses to delete them; read back and checked.

Against the real server (versitygw with Object Lock), with the locked vault of
``test_s3_lock.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError

from strongroom.errors import PolicyError
from strongroom.services.reports.anchors import AnchorService
from strongroom.services.reports.signing import create_key, default_key_path
from strongroom.services.retention.lock import VaultLockService, parse_lock
from strongroom.storage.s3_lock import retention_of
from tests.integration.storage.test_s3_lock import Locked, _secrets, locked
from tests.support.services import S3Service

pytestmark = pytest.mark.integration
__all__ = ["_secrets", "locked"]  # the fixtures, used by name


def test_an_anchor_in_a_locked_s3_vault_is_retained_and_its_delete_refused(
    locked: Locked, s3_service: S3Service
) -> None:
    VaultLockService(locked.context).lock(
        "offsite", parse_lock("governance", 7, None, None), actor="admin"
    )  # an audit entry: the trail has a head to anchor
    create_key(default_key_path(locked.context.home))
    written_at = datetime.now(UTC)
    anchor = AnchorService(locked.context).write("offsite")

    retention = retention_of(locked.store, anchor.name)
    assert retention is not None
    mode, until = retention
    assert mode == "GOVERNANCE"
    assert written_at + timedelta(days=7) - timedelta(minutes=5) <= until
    with pytest.raises(PolicyError):
        locked.store.delete(anchor.name)
    version = locked.store.versions(anchor.name)[0]
    with pytest.raises(ClientError) as denied:
        s3_service.connect().delete_object(
            Bucket=locked.bucket, Key=locked.store.key(anchor.name), VersionId=version
        )
    assert denied.value.response["Error"]["Code"] == "AccessDenied"

    (newest,) = AnchorService(locked.context).newest(vault="offsite")
    assert (newest.name, newest.head_seq, newest.head_hash) == (
        anchor.name,
        anchor.head_seq,
        anchor.head_hash,
    )
    assert AnchorService(locked.context).write_if_moved("offsite") is None  # head unchanged
