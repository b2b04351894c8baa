"""Translate botocore's exceptions into the strongroom error tree, at the S3 store's edge.

S3 answers with an error code (``NoSuchKey``, ``SlowDown`` …) and an HTTP status; a
connection that fails raises botocore's own exceptions instead. Each maps onto one class
of :mod:`strongroom.errors` with a hint naming what the operator can do; whether it is
retried follows from the class (throttling, 5xx, timeouts and network failures are).
"""

from __future__ import annotations

from typing import Final

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)

from strongroom.errors import (
    AccessDeniedError,
    BlobNotFoundError,
    ConfigError,
    ConflictError,
    InsufficientStorageError,
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

MISSING_KEY_CODES: Final = frozenset({"NoSuchKey", "NoSuchVersion", "404", "NotFound"})
"""Codes of a missing object (``404`` and ``NotFound``: a HEAD request has no error body)."""

_THROTTLING: Final = frozenset(
    {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequests"}
)
_CREDENTIALS: Final = frozenset(
    {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken"}
)
_SKEW: Final = frozenset({"RequestTimeTooSkewed", "RequestExpired"})
_CORRUPTED: Final = frozenset(
    {"BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch", "XAmzContentChecksumMismatch"}
)
_LOCKED: Final = frozenset({"ObjectLocked", "InvalidRetentionPeriod"})


def error_code(exc: ClientError) -> str:
    """Return the S3 error code of a ``ClientError`` (the HTTP status when there is none)."""
    error = exc.response.get("Error", {})
    code = str(error.get("Code") or "")
    return code or str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))


def http_status(exc: ClientError) -> int:
    """Return the HTTP status of a ``ClientError`` (0 when unknown)."""
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def translate_client_error(
    exc: ClientError, *, store: str, action: str, name: str | None = None
) -> StrongroomError:
    """Return the strongroom error for an S3 error answer to ``action`` on blob ``name``."""
    code = error_code(exc)
    status = http_status(exc)
    detail = str(exc.response.get("Error", {}).get("Message") or code)
    what = f"{action} {name!r}" if name is not None else action
    message = f"S3 {what} in {store}: {code}: {detail}"
    if code == "NoSuchBucket":
        return NotFoundError(
            f"the bucket of {store} does not exist ({code})",
            hint="Create the bucket (with Object Lock if the vault is locked), or fix the URL.",
        )
    if code in MISSING_KEY_CODES:
        return BlobNotFoundError(f"blob {name!r} not found in {store}")
    if code in _CREDENTIALS:
        return AccessDeniedError(
            f"the S3 server of {store} refused the credentials ({code})",
            hint="Check the access key id and secret key (vault s3.access_key_id, "
            "s3.secret_access_key, or the standard AWS credential chain).",
        )
    if code in _SKEW:
        return AccessDeniedError(
            f"the S3 server of {store} refused the request because this machine's clock "
            f"differs too much from the server's ({code}: {detail})",
            hint="Synchronise the clock (NTP); S3 signatures are valid for minutes only.",
        )
    if code in _LOCKED or (action == "delete" and code == "AccessDenied" and "lock" in detail):
        return PolicyError(
            message,
            hint="The server keeps this object under Object Lock retention or a legal hold; "
            "it can be deleted once the retention ends and the hold is lifted.",
        )
    if code in {"AccessDenied", "AllAccessDisabled", "AccountProblem"} or status == 403:
        return AccessDeniedError(message)
    if code in _THROTTLING or status == 429:
        return ThrottlingError(message)
    if code in {"RequestTimeout", "RequestTimeoutException"} or status == 408:
        return TimeoutError_(message)
    if code == "NotImplemented" or status == 501:
        return UnsupportedError(
            f"{message} (the server does not implement this request)",
            hint="This S3-compatible server lacks a feature the operation needs; see "
            "docs/s3.md (Servers) for what each server supports.",
        )
    if code in {"ServiceUnavailable", "Busy"} or status in {502, 503, 504}:
        return ServiceUnavailableError(message)
    if code == "InternalError" or status >= 500:
        return InternalServerError(message)
    if code == "InvalidObjectState":
        return UnsupportedError(
            f"{message} (the object is in an archive storage class and must be thawed first)",
            hint="A restore job of a cold point asks S3 to thaw its packs itself "
            "(cold_tier.thaw); read such a point through a restore job (docs/s3.md).",
        )
    if code in _CORRUPTED:
        return NetworkError(
            f"{message} (the bytes changed on the way; the server stored nothing)",
            hint="strongroom retries this; if it persists, check the network path (a proxy?).",
        )
    if code in {"ObjectParentIsFile", "ExistingObjectIsDirectory"}:
        return ConflictError(
            message,
            hint="This server keeps objects as files: a name cannot be an object and the "
            "folder of other objects at once.",
        )
    if code in {"EntityTooLarge", "QuotaExceeded"}:
        return InsufficientStorageError(message)
    if code in {"PreconditionFailed", "ConditionalRequestConflict"} or status in {409, 412}:
        return ConflictError(message)
    if code in {"InvalidArgument", "InvalidRequest", "InvalidBucketName", "KeyTooLongError"}:
        return ConfigError(message)
    return StrongroomError(message)


def translate_boto_error(exc: BotoCoreError, *, store: str, action: str) -> StrongroomError:
    """Return the strongroom error for a botocore failure that is not an S3 error answer."""
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return AccessDeniedError(
            f"no S3 credentials for {store}: {exc}",
            hint="Set s3.access_key_id and s3.secret_access_key (env:/file: references) or "
            "configure the standard AWS credential chain (AWS_ACCESS_KEY_ID, ~/.aws, a role).",
        )
    if isinstance(exc, ConnectTimeoutError | ReadTimeoutError):
        return TimeoutError_(f"S3 {action} in {store} timed out: {exc}")
    if isinstance(exc, EndpointConnectionError):
        return NetworkError(
            f"cannot reach the S3 endpoint of {store}: {exc}",
            hint="Check s3.endpoint_url and that the server is up and reachable; "
            "strongroom retries this.",
        )
    # Everything else botocore raises on the wire (a connection closed, a short read, a
    # broken response) passes when the request is made again.
    return NetworkError(f"S3 {action} in {store} failed: {exc}")
