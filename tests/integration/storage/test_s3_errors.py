"""Bad input against the real S3 server: each failure is a typed error with a hint.

Nothing here fakes the server: the credentials are really wrong, the bucket really
missing, the port really closed, and the request really signed with a clock an hour slow.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import botocore.auth
import pytest

from strongroom.errors import (
    AccessDeniedError,
    BlobNotFoundError,
    NetworkError,
    NotFoundError,
    StrongroomError,
)
from strongroom.storage.base import BlobStore
from strongroom.storage.retry import should_retry
from strongroom.storage.s3 import S3Store
from tests.support.services import S3Service, unique_name

pytestmark = pytest.mark.integration

CALLS: dict[str, Callable[[BlobStore], object]] = {
    "put": lambda store: store.put("data/1", b"bytes"),
    "get": lambda store: store.get("data/1"),
    "stat": lambda store: store.stat("data/1"),
    "list": lambda store: list(store.list("data/")),
    "delete": lambda store: store.delete("data/1"),
}


@pytest.mark.parametrize("operation", sorted(CALLS))
def test_wrong_credentials_are_access_denied(s3_service: S3Service, operation: str) -> None:
    store = S3Store(
        s3_service.bucket,
        unique_name("errors"),
        s3_service.connection(secret_access_key="not-the-secret"),
    )

    with pytest.raises(AccessDeniedError) as denied:
        CALLS[operation](store)

    assert "refused the credentials" in str(denied.value)
    assert "secret_access_key" in denied.value.hint
    assert "not-the-secret" not in str(denied.value)
    assert not should_retry(denied.value)


@pytest.mark.parametrize("operation", sorted(CALLS))
def test_a_missing_bucket_is_not_found_naming_the_bucket(
    s3_service: S3Service, operation: str
) -> None:
    store = S3Store(unique_name("missing").replace("_", "-"), "", s3_service.connection())

    with pytest.raises(NotFoundError) as missing:
        CALLS[operation](store)

    assert not isinstance(missing.value, BlobNotFoundError)
    assert "bucket" in str(missing.value)
    assert "Create the bucket" in missing.value.hint


def test_an_unreachable_endpoint_is_a_retryable_network_error(s3_service: S3Service) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = S3Store(
        s3_service.bucket,
        "",
        s3_service.connection(endpoint_url=f"http://127.0.0.1:{port}", connect_timeout=2.0),
    )

    with pytest.raises(NetworkError) as unreachable:
        store.stat("data/1")

    assert unreachable.value.retryable
    assert should_retry(unreachable.value)
    assert "endpoint_url" in unreachable.value.hint


def test_a_skewed_clock_is_named_with_its_fix(
    s3_service: S3Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = S3Store(s3_service.bucket, unique_name("errors"), s3_service.connection())
    slow = datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=1)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda **_: slow)

    with pytest.raises(AccessDeniedError) as skewed:
        store.put("data/1", b"bytes")

    assert "clock" in str(skewed.value)
    assert "NTP" in skewed.value.hint


def test_a_missing_blob_is_blob_not_found(s3_service: S3Service) -> None:
    store = S3Store(s3_service.bucket, unique_name("errors"), s3_service.connection())

    for call in (CALLS["get"], CALLS["stat"]):
        with pytest.raises(BlobNotFoundError) as missing:
            call(store)
        assert isinstance(missing.value, StrongroomError)
        assert not missing.value.retryable
