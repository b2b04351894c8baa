"""How S3 error answers and botocore failures map onto the error tree.

The answers the local server cannot be made to give on demand (throttling, 5xx) are
built here as botocore builds them from a response; the integration tests cover the ones
the real server gives (credentials, missing bucket, clock skew, unreachable endpoint).
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError

from strongroom.errors import (
    AccessDeniedError,
    BlobNotFoundError,
    ConflictError,
    InternalServerError,
    NetworkError,
    NotFoundError,
    PolicyError,
    ServiceUnavailableError,
    StrongroomError,
    ThrottlingError,
    TimeoutError_,
    UnsupportedError,
)
from strongroom.storage.retry import should_retry
from strongroom.storage.s3 import S3Connection, parse_s3_url
from strongroom.storage.s3_errors import translate_boto_error, translate_client_error


def answer(code: str, status: int, message: str = "") -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "PutObject",
    )


@pytest.mark.parametrize(
    ("code", "status", "expected", "retried"),
    [
        ("SlowDown", 503, ThrottlingError, True),
        ("TooManyRequests", 429, ThrottlingError, True),
        ("InternalError", 500, InternalServerError, True),
        ("ServiceUnavailable", 503, ServiceUnavailableError, True),
        ("", 502, ServiceUnavailableError, True),
        ("RequestTimeout", 400, TimeoutError_, True),
        ("BadDigest", 400, NetworkError, True),
        ("NoSuchKey", 404, BlobNotFoundError, False),
        ("NoSuchBucket", 404, NotFoundError, False),
        ("InvalidAccessKeyId", 403, AccessDeniedError, False),
        ("SignatureDoesNotMatch", 403, AccessDeniedError, False),
        ("RequestTimeTooSkewed", 403, AccessDeniedError, False),
        ("AccessDenied", 403, AccessDeniedError, False),
        ("PreconditionFailed", 412, ConflictError, False),
        ("ObjectParentIsFile", 409, ConflictError, False),
        ("NotImplemented", 501, UnsupportedError, False),
    ],
)
def test_error_answers_map_onto_the_tree(
    code: str, status: int, expected: type[StrongroomError], retried: bool
) -> None:
    error = translate_client_error(answer(code, status), store="s3://b/p", action="put", name="x")

    assert type(error) is expected
    assert should_retry(error) is retried
    assert "s3://b" in str(error)


def test_a_refused_delete_of_a_locked_version_is_a_policy_error() -> None:
    refused = answer("AccessDenied", 403, "Access Denied because object protected by object lock.")

    error = translate_client_error(refused, store="s3://b", action="delete", name="data/1")

    assert isinstance(error, PolicyError)
    assert "Object Lock" in error.hint


def test_transport_failures_are_retryable() -> None:
    unreachable = translate_boto_error(
        EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), store="s3://b", action="get"
    )
    slow = translate_boto_error(
        ConnectTimeoutError(endpoint_url="http://127.0.0.1:1"), store="s3://b", action="get"
    )

    assert isinstance(unreachable, NetworkError) and unreachable.retryable
    assert isinstance(slow, TimeoutError_) and slow.retryable


@pytest.mark.parametrize(
    ("url", "bucket", "prefix"),
    [
        ("s3://bucket", "bucket", ""),
        ("s3://bucket/", "bucket", ""),
        ("s3://my.bucket-1/a/b", "my.bucket-1", "a/b/"),
        ("s3://bucket/a/b/", "bucket", "a/b/"),
    ],
)
def test_s3_urls_name_a_bucket_and_a_prefix(url: str, bucket: str, prefix: str) -> None:
    assert parse_s3_url(url) == (bucket, prefix)


@pytest.mark.parametrize(
    "settings",
    [
        {"access_key_id": "id"},
        {"part_size": 1024},
        {"multipart_threshold": 6 * 1024 * 1024, "part_size": 8 * 1024 * 1024},
        {"concurrency": 0},
        {"sse_kms_key_id": "key"},
    ],
)
def test_inconsistent_connection_settings_are_refused(settings: dict[str, object]) -> None:
    with pytest.raises(StrongroomError):
        S3Connection(**settings)  # type: ignore[arg-type]
