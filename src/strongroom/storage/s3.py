"""A blob store in an S3 bucket: AWS S3 or any S3-compatible server, on boto3/botocore.

Blob ``a/b`` is the object ``<prefix>a/b`` of the bucket (``s3://bucket/prefix``), so a
vault can be copied between a folder and a bucket unchanged.

- **Uploads** carry a SHA-256 checksum the server verifies before it stores anything;
  blobs larger than ``multipart_threshold`` go up as a multipart upload whose parts travel
  in parallel (each with its own checksum), completed in one call, so a reader sees the
  whole blob or none. A failed multipart upload is aborted; one a crash left behind is
  invisible (no object) and removed by the bucket's ``AbortIncompleteMultipartUpload``
  lifecycle rule.
- **Exclusive puts** are conditional writes (``If-None-Match: *``); the server refuses
  when the name exists, and the store then compares the bytes (same bytes: success).
- **Reads** are ranged GETs; a read of more than one part fetches the parts in parallel.
- **Deletes** remove every version of the object (in a versioned bucket a plain DELETE
  only adds a delete marker and keeps the bytes). A version under Object Lock retention
  or a legal hold is refused by the server: ``PolicyError``.
- **Errors** are translated at this edge (:mod:`strongroom.storage.s3_errors`); botocore
  retries nothing itself, the :class:`~strongroom.storage.retry.RetryingStore` around
  this store retries what the error tree calls retryable.
- **Object Lock**: a store whose connection has a :class:`WriteRetention` sets that
  retention on every pack and manifest it writes (:mod:`strongroom.storage.s3_lock` has the rest of the lock API).

Credentials are given resolved (the service layer resolves ``env:``/``file:``
references) or, when absent, come from botocore's standard chain.
"""

from __future__ import annotations

import base64
import builtins
import dataclasses
import functools
import hashlib
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar, cast
from urllib.parse import urlsplit

import botocore.loaders
import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from strongroom.errors import BlobNotFoundError, ConfigError, ConflictError
from strongroom.logs import get_logger
from strongroom.storage.base import (
    BlobInfo,
    StoreCapabilities,
    check_name,
    check_prefix,
    check_range,
    is_name,
)
from strongroom.storage.s3_errors import (
    error_code,
    translate_boto_error,
    translate_client_error,
)

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef, HeadObjectOutputTypeDef

T = TypeVar("T")

MIB: Final = 1024 * 1024
MIN_PART_SIZE: Final = 5 * MIB
"""S3's smallest part of a multipart upload (all but the last)."""
MAX_PARTS: Final = 10_000

_BUCKET_NAME_CHARACTERS: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.-")
_log = get_logger(__name__)


COLD_CLASS_PREFIXES: Final = ("data/",)
"""The blobs written in a cold storage class: packs, the bulk of the bytes. The config,
keys, index fragments and manifests stay STANDARD, so the vault opens, lists its points
and plans a restore without a thaw."""

RETAINED_PREFIXES: Final = ("data/", "manifests/")
"""The blobs a locked vault keeps under Object Lock: packs and recovery-point manifests.
Index fragments (rebuilt from packs), leases (deleted by design), keys and the config
(never deleted) are written without retention."""


@dataclass(frozen=True, slots=True)
class WriteRetention:
    """Object Lock retention set on every object a store writes under ``prefixes``.

    ``mode`` is ``GOVERNANCE`` or ``COMPLIANCE``; each object is retained ``period`` from
    when it is written.
    """

    mode: Literal["GOVERNANCE", "COMPLIANCE"]
    period: timedelta
    prefixes: tuple[str, ...] = RETAINED_PREFIXES

    def applies_to(self, name: str) -> bool:
        """Tell whether blob ``name`` is written with this retention."""
        return name.startswith(self.prefixes)

    def until(self, now: datetime | None = None) -> datetime:
        """Return the retention date of an object written ``now`` (default: the clock)."""
        return (now or datetime.now(UTC)) + self.period


@dataclass(frozen=True, slots=True)
class S3Connection:
    """How to reach the bucket and how to write to it; every field is optional.

    ``access_key_id``/``secret_access_key`` are the secrets themselves (resolved by the
    caller), both or neither; neither uses botocore's standard credential chain.
    ``addressing_style``: ``path`` for most self-hosted servers, ``virtual`` for AWS.
    ``server_side_encryption``: ``AES256`` or ``aws:kms`` (with ``sse_kms_key_id``).
    ``storage_class``: the class packs are written in (unset: the bucket's default); the
    small objects stay STANDARD (:data:`COLD_CLASS_PREFIXES`).
    Blobs larger than ``multipart_threshold`` bytes are uploaded in parts of
    ``part_size`` bytes; reads of more than ``part_size`` bytes are split the same way;
    ``concurrency`` parts travel at once (and as many HTTP connections are pooled).
    ``overlapping_names``: false for servers that keep objects as files (versitygw's
    posix backend refuses ``a/b`` beside ``a``), true for AWS S3.
    ``retention``: the Object Lock retention of what a locked vault writes.
    """

    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    addressing_style: Literal["auto", "path", "virtual"] = "auto"
    server_side_encryption: Literal["AES256", "aws:kms"] | None = None
    sse_kms_key_id: str | None = None
    storage_class: str | None = None
    multipart_threshold: int = 16 * MIB
    part_size: int = 8 * MIB
    concurrency: int = 8
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    overlapping_names: bool = True
    retention: WriteRetention | None = None

    def __post_init__(self) -> None:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ConfigError("S3 access_key_id and secret_access_key are given together")
        if self.part_size < MIN_PART_SIZE:
            raise ConfigError(f"S3 part_size must be at least {MIN_PART_SIZE} bytes")
        if self.multipart_threshold < self.part_size:
            raise ConfigError("S3 multipart_threshold must be at least part_size")
        if self.concurrency < 1:
            raise ConfigError("S3 concurrency must be at least 1")
        if self.sse_kms_key_id is not None and self.server_side_encryption != "aws:kms":
            raise ConfigError("sse_kms_key_id needs server_side_encryption 'aws:kms'")


def parse_s3_url(url: str) -> tuple[str, str]:
    """Return ``(bucket, prefix)`` of ``s3://bucket/prefix``; the prefix is empty or ends in ``/``.

    Raises ``ConfigError`` for a URL without a valid bucket name or with an invalid prefix.
    """
    parts = urlsplit(url)
    bucket = parts.netloc
    if (
        parts.scheme.lower() != "s3"
        or not 3 <= len(bucket) <= 63
        or not set(bucket) <= _BUCKET_NAME_CHARACTERS
        or bucket[0] in ".-"
        or bucket[-1] in ".-"
        or parts.query
        or parts.fragment
    ):
        raise ConfigError(
            f"S3 URL {url!r} must be s3://bucket/optional/prefix with a valid bucket name "
            "(3-63 characters of a-z 0-9 . -)"
        )
    prefix = parts.path.strip("/")
    if prefix:
        check_name(prefix)
        prefix += "/"
    return bucket, prefix


def _condition(*, exclusive: bool) -> dict[str, Any]:
    """The arguments that make a write conditional: create only, never replace."""
    return {"IfNoneMatch": "*"} if exclusive else {}


def _checksum(data: bytes | memoryview) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


def _content_range_total(content_range: str) -> int:
    """Return the total size of ``bytes 0-9/10`` (a ``Content-Range`` answer)."""
    return int(content_range.rpartition("/")[2])


class S3Store:
    """Blobs as objects under ``prefix`` in ``bucket``; see the module docstring."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        connection: S3Connection | None = None,
    ) -> None:
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        self._bucket = bucket
        self._prefix = prefix
        self._connection = connection or S3Connection()
        self._client = make_client(self._connection)
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    @classmethod
    def from_url(
        cls,
        url: str,
        connection: S3Connection | None = None,
    ) -> S3Store:
        """Return the store of ``s3://bucket/prefix``; raises ``ConfigError`` for a bad URL."""
        bucket, prefix = parse_s3_url(url)
        return cls(bucket, prefix, connection)

    @property
    def capabilities(self) -> StoreCapabilities:
        """Atomic, strongly consistent puts (S3 since 2020), conditional creates, ranges."""
        return StoreCapabilities(overlapping_names=self._connection.overlapping_names)

    @property
    def url(self) -> str:
        """``s3://bucket/prefix`` (no endpoint, no credentials)."""
        return f"s3://{self._bucket}/{self._prefix}".rstrip("/")

    @property
    def bucket(self) -> str:
        """The bucket's name."""
        return self._bucket

    @property
    def prefix(self) -> str:
        """The key prefix of every blob: empty or ending in ``/``."""
        return self._prefix

    @property
    def client(self) -> S3Client:
        """The botocore client (thread-safe), for the lock and tier operations."""
        return self._client

    @property
    def connection(self) -> S3Connection:
        """How this store reaches its bucket."""
        return self._connection

    def key(self, name: str) -> str:
        """Return the object key of blob ``name``; raises ``ConfigError`` for a bad name."""
        return self._prefix + check_name(name)

    def with_retention(self, retention: WriteRetention | None) -> S3Store:
        """Return a store on the same bucket and prefix whose writes carry ``retention``."""
        connection = dataclasses.replace(self._connection, retention=retention)
        return S3Store(self._bucket, self._prefix, connection)

    def put(self, name: str, data: bytes, *, exclusive: bool = False) -> None:
        """Upload ``data`` (in parallel parts when large); see ``BlobStore.put``."""
        key = self.key(name)
        try:
            if len(data) > self._connection.multipart_threshold:
                self._put_multipart(name, key, data, exclusive=exclusive)
            else:
                self._call(
                    "put",
                    name,
                    lambda: self._client.put_object(
                        Bucket=self._bucket,
                        Key=key,
                        Body=data,
                        ChecksumSHA256=_checksum(data),
                        **self._write_arguments(name),
                        **_condition(exclusive=exclusive),
                    ),
                )
        except ConflictError:
            if not exclusive:
                raise
            if not self._holds(name, data):
                raise ConflictError(f"blob {name!r} already exists in {self.url}") from None

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        """Read the blob or a range of it, in parallel parts when large; see ``BlobStore.get``."""
        key = self.key(name)
        check_range(offset, length)
        if length == 0:
            self.stat(name)  # raises when absent: a zero-length read still needs the blob
            return b""
        part = self._connection.part_size
        first_end = offset + (part if length is None else min(length, part)) - 1
        first, total = self._get_range(name, key, offset, first_end)
        end = total if length is None else min(total, offset + length)
        if offset + len(first) >= end:
            return first
        starts = range(first_end + 1, end, part)
        pieces = self._map(
            lambda start: self._get_range(name, key, start, min(start + part, end) - 1)[0],
            starts,
        )
        return b"".join([first, *pieces])

    def stat(self, name: str) -> BlobInfo:
        """Return the object's size (a HEAD request); see ``BlobStore.stat``."""
        key = self.key(name)

        def head() -> HeadObjectOutputTypeDef:
            try:
                return self._client.head_object(Bucket=self._bucket, Key=key)
            except ClientError as exc:
                if not error_code(exc).isdigit():
                    raise
                # A HEAD answer has no body, hence no error code (a missing key and a
                # missing bucket are both a bare 404): a GET of one byte says which.
                self._client.get_object(Bucket=self._bucket, Key=key, Range="bytes=0-0")
                raise

        answer = self._call("stat", name, head)
        return BlobInfo(name, int(answer["ContentLength"]))

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        """List the objects under ``prefix``; keys that are not blob names are skipped.

        See ``BlobStore.list``.
        """
        check_prefix(prefix)
        return self._list(prefix)

    def delete(self, name: str) -> None:
        """Remove every version of the object; see ``BlobStore.delete``.

        Raises ``PolicyError`` when the server keeps a version under Object Lock.
        """
        key = self.key(name)
        # A key with no version (nor delete marker) holds no blob: nothing to do. This
        # also keeps a folder's name away from servers that store folders as directories.
        for version_id in self.versions(name):
            # The "null" version of an unversioned bucket goes with a plain DELETE (some
            # servers refuse "null" as a version id there).
            which = {} if version_id == "null" else {"VersionId": version_id}
            self._call(
                "delete",
                name,
                lambda which=which: self._client.delete_object(  # type: ignore[misc]
                    Bucket=self._bucket, Key=key, **which
                ),
            )

    def versions(self, name: str) -> builtins.list[str]:
        """Return the version ids of blob ``name``, delete markers included, newest first.

        An unversioned bucket lists its objects with the version id ``null``.
        """
        key = self.key(name)
        found: builtins.list[str] = []

        def collect() -> None:
            found.clear()
            paginator = self._client.get_paginator("list_object_versions")
            for page in paginator.paginate(Bucket=self._bucket, Prefix=key):
                for entry in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
                    if entry.get("Key") == key:
                        found.append(entry.get("VersionId") or "null")

        self._call("list versions of", name, collect)
        return found

    def close(self) -> None:
        """Stop the transfer threads (the store stays usable; they start again on demand)."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    # -- internals ----------------------------------------------------------------------

    def _write_arguments(self, name: str) -> dict[str, Any]:
        arguments: dict[str, Any] = {}
        connection = self._connection
        if connection.server_side_encryption is not None:
            arguments["ServerSideEncryption"] = connection.server_side_encryption
        if connection.sse_kms_key_id is not None:
            arguments["SSEKMSKeyId"] = connection.sse_kms_key_id
        if connection.storage_class is not None and name.startswith(COLD_CLASS_PREFIXES):
            arguments["StorageClass"] = connection.storage_class
        retention = connection.retention
        if retention is not None and retention.applies_to(name):
            arguments["ObjectLockMode"] = retention.mode
            arguments["ObjectLockRetainUntilDate"] = retention.until()
        return arguments

    def _put_multipart(self, name: str, key: str, data: bytes, *, exclusive: bool) -> None:
        part = max(self._connection.part_size, -(-len(data) // MAX_PARTS))
        created = self._call(
            "put",
            name,
            lambda: self._client.create_multipart_upload(
                Bucket=self._bucket,
                Key=key,
                ChecksumAlgorithm="SHA256",
                **self._write_arguments(name),
            ),
        )
        upload_id = created["UploadId"]
        view = memoryview(data)

        def upload(number: int) -> CompletedPartTypeDef:
            piece = bytes(view[(number - 1) * part : number * part])
            answer = self._call(
                "put",
                name,
                lambda: self._client.upload_part(
                    Bucket=self._bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=piece,
                    ChecksumAlgorithm="SHA256",
                    ChecksumSHA256=_checksum(piece),
                ),
            )
            return {
                "PartNumber": number,
                "ETag": answer["ETag"],
                "ChecksumSHA256": answer.get("ChecksumSHA256") or _checksum(piece),
            }

        try:
            parts = self._map(upload, range(1, -(-len(data) // part) + 1))
            self._call(
                "put",
                name,
                lambda: self._client.complete_multipart_upload(
                    Bucket=self._bucket,
                    Key=key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                    **_condition(exclusive=exclusive),
                ),
            )
        except BaseException:
            self._abort(key, upload_id)
            raise

    def _abort(self, key: str, upload_id: str) -> None:
        """Abort a multipart upload; failing to is harmless (the lifecycle rule finds it)."""
        try:
            self._client.abort_multipart_upload(Bucket=self._bucket, Key=key, UploadId=upload_id)
        except (ClientError, BotoCoreError) as exc:
            _log.warning("could not abort multipart upload of %s in %s: %s", key, self.url, exc)

    def _holds(self, name: str, data: bytes) -> bool:
        """Tell whether blob ``name`` holds exactly ``data``."""
        try:
            if self.stat(name).size != len(data):
                return False
            return self.get(name) == data
        except BlobNotFoundError:
            return False

    def _get_range(self, name: str, key: str, start: int, end: int) -> tuple[bytes, int]:
        """Return bytes ``start..end`` (inclusive, fewer at the end) and the object's size."""

        def read() -> tuple[bytes, int]:
            try:
                answer = self._client.get_object(
                    Bucket=self._bucket, Key=key, Range=f"bytes={start}-{end}"
                )
            except ClientError as exc:
                if error_code(exc) == "InvalidRange":
                    # The object exists but the range starts at or past its end.
                    return b"", start
                raise
            body = answer["Body"].read()
            content_range = answer.get("ContentRange")
            total = _content_range_total(content_range) if content_range else len(body)
            return body, total

        return self._call("get", name, read)

    def _list(self, prefix: str) -> Iterator[BlobInfo]:
        full_prefix = self._prefix + prefix
        paginator = self._client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=self._bucket, Prefix=full_prefix)
        iterator = iter(pages)
        while True:
            page = self._call("list", prefix, lambda: next(iterator, None))
            if page is None:
                return
            for entry in page.get("Contents", []):
                name = entry["Key"][len(self._prefix) :]
                if is_name(name):
                    yield BlobInfo(name, int(entry["Size"]))

    def _map(self, function: Callable[[int], T], items: range) -> builtins.list[T]:
        if len(items) <= 1:
            return [function(item) for item in items]
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self._connection.concurrency, thread_name_prefix="s3-transfer"
                )
            pool = self._pool
        return list(pool.map(function, items))

    def _call(self, action: str, name: str | None, call: Callable[[], T]) -> T:
        """Run one request; translate what botocore raises into the strongroom tree."""
        try:
            return call()
        except ClientError as exc:
            raise translate_client_error(exc, store=self.url, action=action, name=name) from exc
        except BotoCoreError as exc:
            raise translate_boto_error(exc, store=self.url, action=action) from exc


@functools.cache
def _data_loader() -> botocore.loaders.Loader:
    """botocore's loader of service models, one per process: it keeps the S3 model (a
    large JSON document) once parsed, so a second client (a copy's destination, a cold
    tier, the next job of a daemon) does not parse it again."""
    return botocore.loaders.create_loader()


def make_client(connection: S3Connection) -> S3Client:
    """Return a botocore S3 client for ``connection``; its own retries are off.

    The client comes from botocore directly: boto3's session adds resource models and an
    import this store does not use. A fresh botocore session per client reads the AWS
    configuration (files, environment) as it is now; only the parsed service models are
    shared. Raises ``ConfigError`` when botocore refuses the settings.
    """
    config = Config(
        region_name=connection.region or ("us-east-1" if connection.endpoint_url else None),
        s3={"addressing_style": connection.addressing_style},
        retries={"total_max_attempts": 1, "mode": "standard"},
        max_pool_connections=max(10, connection.concurrency * 2),
        connect_timeout=connection.connect_timeout,
        read_timeout=connection.read_timeout,
        signature_version="s3v4",
        # Checksums are the store's own choice (SHA-256 on every upload), not botocore's
        # default CRC trailer, which some S3-compatible servers do not understand.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    try:
        session = botocore.session.Session()
        session.register_component("data_loader", _data_loader())
        client = session.create_client(
            "s3",
            endpoint_url=connection.endpoint_url,
            aws_access_key_id=connection.access_key_id,
            aws_secret_access_key=connection.secret_access_key,
            aws_session_token=connection.session_token,
            config=config,
        )
    except (BotoCoreError, ValueError) as exc:
        raise ConfigError(f"cannot set up the S3 client: {exc}") from exc
    # botocore builds the client class at run time; the stubs name what it is.
    return cast("S3Client", client)
