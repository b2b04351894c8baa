"""The S3 store passes the blob store conformance suite against the real server.

Every store works under a prefix of its own in the shared primary bucket (versioned, with
Object Lock), so a delete really removes every version there.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from strongroom.storage.base import BlobStore
from strongroom.storage.open import open_store
from strongroom.storage.s3 import MIB, S3Store
from tests.support.services import S3Service, unique_name
from tests.unit.storage.conformance import BlobStoreConformance, blob

pytestmark = pytest.mark.integration


class TestS3Store(BlobStoreConformance):
    @pytest.fixture
    def store(self, s3_service: S3Service) -> Iterator[BlobStore]:
        prefix = unique_name("conformance") + "/"
        yield S3Store(s3_service.bucket, prefix, s3_service.connection())
        s3_service.empty(s3_service.bucket, prefix)


class TestOpenedS3Store(BlobStoreConformance):
    """The composed ``open_store`` result (retries, metrics) on small parts: every large
    blob of the suite goes up in several parallel parts and comes back in several ranges."""

    @pytest.fixture
    def store(self, s3_service: S3Service) -> Iterator[BlobStore]:
        prefix = unique_name("conformance")
        connection = s3_service.connection(multipart_threshold=5 * MIB, part_size=5 * MIB)
        yield open_store(f"s3://{s3_service.bucket}/{prefix}", s3=connection)
        s3_service.empty(s3_service.bucket, prefix + "/")


def test_an_unversioned_bucket_serves_the_same_store(s3_service: S3Service) -> None:
    prefix = unique_name("plain")
    store = S3Store(s3_service.plain_bucket, prefix, s3_service.connection())
    data = blob(2 * 1024 * 1024, seed=7)
    try:
        store.put("data/1", data)
        store.put("data/1", data, exclusive=True)
        assert store.get("data/1", 100, 50) == data[100:150]
        store.delete("data/1")
        store.delete("data/1")
        assert list(store.list()) == []
    finally:
        s3_service.empty(s3_service.plain_bucket, prefix + "/")
