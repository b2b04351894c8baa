"""Object Lock on an S3 store: prove the server enforces it, set and extend retention, holds.

A vault lock is only as strong as the layer that enforces it. On S3 the server can refuse
to delete or overwrite an object version until its retention date passes (or while a legal
hold is on), whoever asks. Some S3-compatible servers accept the retention headers and
still delete, so before a vault is locked :func:`prove_enforcement` writes a canary object
with a short GOVERNANCE retention, tries to delete that very version, and raises if the
delete succeeds, naming the server and what it did. The canary is then removed with the
governance bypass (when the account may bypass; otherwise it expires on its own).

Retention dates only grow: :func:`extend_retention` never shortens one (S3 refuses to
shorten COMPLIANCE retention, and shortening GOVERNANCE retention would weaken the lock).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

from botocore.exceptions import BotoCoreError, ClientError

from strongroom.errors import PolicyError, StrongroomError, UnsupportedError
from strongroom.logs import get_logger
from strongroom.storage.s3 import S3Store
from strongroom.storage.s3_errors import error_code, translate_boto_error, translate_client_error

CANARY_PREFIX: Final = "lock-canary/"
"""Blob names of the enforcement canaries (a vault never writes there otherwise)."""
CANARY_RETENTION: Final = timedelta(minutes=10)

RetentionMode = Literal["GOVERNANCE", "COMPLIANCE"]

_log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Enforcement:
    """What the pre-flight proved: ``server`` (its ``Server`` header) refused to delete
    version ``version_id`` of the canary ``name`` before its retention ended."""

    server: str
    bucket: str
    name: str
    version_id: str
    refusal: str


def s3_store_of(store: object) -> S3Store | None:
    """Return the S3 store under the wrappers of ``store`` (``.inner``), or None."""
    seen = 0
    while not isinstance(store, S3Store):
        store = getattr(store, "inner", None)
        seen += 1
        if store is None or seen > 16:
            return None
    return store


def server_name(store: S3Store) -> str:
    """Return how the server calls itself (its ``Server`` header) and where it answers."""
    endpoint = store.connection.endpoint_url or "AWS S3"
    try:
        answer = store.client.head_bucket(Bucket=store.bucket)
    except (ClientError, BotoCoreError):
        return endpoint
    header = answer.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("server", "")
    return f"{header} at {endpoint}" if header else endpoint


def check_bucket_lock(store: S3Store) -> None:
    """Raise ``UnsupportedError`` unless the bucket has Object Lock (hence versioning) on."""
    try:
        configuration = store.client.get_object_lock_configuration(Bucket=store.bucket)
    except ClientError as exc:
        if error_code(exc) == "ObjectLockConfigurationNotFoundError":
            raise UnsupportedError(
                f"bucket {store.bucket!r} of {store.url} has no Object Lock, so the server "
                "cannot keep the vault's objects from deletion",
                hint="Object Lock can only be enabled when a bucket is created: create a new "
                "bucket with Object Lock (which turns versioning on) and move the vault there.",
            ) from exc
        raise translate_client_error(exc, store=store.url, action="read the lock of") from exc
    except BotoCoreError as exc:
        raise translate_boto_error(exc, store=store.url, action="read the lock of") from exc
    enabled = configuration.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled")
    if enabled != "Enabled":
        raise UnsupportedError(
            f"bucket {store.bucket!r} of {store.url} does not have Object Lock enabled",
            hint="Create the bucket with Object Lock and move the vault there.",
        )


def prove_enforcement(store: S3Store, *, now: datetime | None = None) -> Enforcement:
    """Prove that the server refuses to delete an object version under retention.

    Raises ``UnsupportedError`` (naming the server) when the bucket has no Object Lock or
    the server deleted the canary anyway, and the store's errors for other failures.
    """
    check_bucket_lock(store)
    server = server_name(store)
    name = f"{CANARY_PREFIX}{secrets.token_hex(16)}"
    key = store.key(name)
    until = (now or datetime.now(UTC)) + CANARY_RETENTION
    client = store.client
    try:
        written = client.put_object(
            Bucket=store.bucket,
            Key=key,
            Body=b"strongroom Object Lock canary: this version must outlive a delete\n",
            ObjectLockMode="GOVERNANCE",
            ObjectLockRetainUntilDate=until,
        )
    except ClientError as exc:
        raise translate_client_error(exc, store=store.url, action="write", name=name) from exc
    except BotoCoreError as exc:
        raise translate_boto_error(exc, store=store.url, action="write") from exc
    version_id = written.get("VersionId")
    if not version_id:
        raise UnsupportedError(
            f"the S3 server {server} stored the lock canary {name!r} of {store.url} without a "
            "version id: it keeps no versions, so it cannot hold a locked version",
            hint="Use a server and a bucket with versioning and Object Lock.",
        )
    try:
        client.delete_object(Bucket=store.bucket, Key=key, VersionId=version_id)
    except ClientError as exc:
        refusal = f"{error_code(exc)}: {exc.response.get('Error', {}).get('Message', '')}"
        _release_canary(store, key, version_id)
        return Enforcement(server, store.bucket, name, version_id, refusal.strip())
    except BotoCoreError as exc:
        raise translate_boto_error(exc, store=store.url, action="delete") from exc
    raise UnsupportedError(
        f"the S3 server {server} accepted Object Lock retention on the canary {name!r} in "
        f"bucket {store.bucket!r} (GOVERNANCE until {until.isoformat(timespec='seconds')}) "
        f"and then deleted that version ({version_id}) when asked: it does not enforce "
        "retention, so strongroom refuses to lock a vault there",
        hint="Use a server that enforces Object Lock (AWS S3, versitygw with versioning), "
        "or keep the lock strongroom-only on a file:// vault.",
    )


def _release_canary(store: S3Store, key: str, version_id: str) -> None:
    """Remove the canary with the governance bypass; left to expire when that is refused."""
    try:
        store.client.delete_object(
            Bucket=store.bucket, Key=key, VersionId=version_id, BypassGovernanceRetention=True
        )
    except (ClientError, BotoCoreError) as exc:
        _log.info("lock canary %s stays until its retention ends: %s", key, exc)


def extend_retention(
    store: S3Store,
    name: str,
    mode: RetentionMode,
    until: datetime,
    *,
    tolerance: timedelta = timedelta(0),
) -> bool:
    """Make every version of blob ``name`` retained at least until ``until`` in ``mode``.

    A version already retained until ``until - tolerance`` or later keeps its date (and a
    COMPLIANCE version its mode): the tolerance spares a write for objects written moments
    ago. Returns whether any version changed. Raises the store's errors.
    """
    key = store.key(name)
    changed = False
    for version_id in store.versions(name):
        current = _retention(store, key, version_id, name)
        if current is not None and current[1] >= until - tolerance:
            continue
        keep_mode: RetentionMode = (
            "COMPLIANCE" if current is not None and current[0] == "COMPLIANCE" else mode
        )
        try:
            store.client.put_object_retention(
                Bucket=store.bucket,
                Key=key,
                VersionId=version_id,
                Retention={"Mode": keep_mode, "RetainUntilDate": until},
            )
        except ClientError as exc:
            if error_code(exc) in {"MethodNotAllowed", "NoSuchVersion"}:
                continue  # a delete marker has no retention
            raise translate_client_error(
                exc, store=store.url, action="extend retention of", name=name
            ) from exc
        except BotoCoreError as exc:
            raise translate_boto_error(exc, store=store.url, action="extend retention") from exc
        changed = True
    return changed


def retention_of(store: S3Store, name: str) -> tuple[RetentionMode, datetime] | None:
    """Return the retention of the newest version of blob ``name`` (None when it has none)."""
    versions = store.versions(name)
    if not versions:
        return None
    return _retention(store, store.key(name), versions[0], name)


def _retention(
    store: S3Store, key: str, version_id: str, name: str
) -> tuple[RetentionMode, datetime] | None:
    try:
        answer = store.client.get_object_retention(
            Bucket=store.bucket, Key=key, VersionId=version_id
        )
    except ClientError as exc:
        if error_code(exc) in {"NoSuchObjectLockConfiguration", "MethodNotAllowed", "404"}:
            return None
        raise translate_client_error(
            exc, store=store.url, action="read retention of", name=name
        ) from exc
    except BotoCoreError as exc:
        raise translate_boto_error(exc, store=store.url, action="read retention") from exc
    retention = answer.get("Retention", {})
    mode, until = retention.get("Mode"), retention.get("RetainUntilDate")
    if mode not in {"GOVERNANCE", "COMPLIANCE"} or until is None:
        return None
    return ("COMPLIANCE" if mode == "COMPLIANCE" else "GOVERNANCE"), until


def set_legal_hold(store: S3Store, name: str, *, on: bool) -> None:
    """Put (``on``) or lift the S3 legal hold on every version of blob ``name``.

    Raises ``PolicyError`` when the server refuses, and the store's errors.
    """
    key = store.key(name)
    for version_id in store.versions(name):
        try:
            store.client.put_object_legal_hold(
                Bucket=store.bucket,
                Key=key,
                VersionId=version_id,
                LegalHold={"Status": "ON" if on else "OFF"},
            )
        except ClientError as exc:
            if error_code(exc) in {"MethodNotAllowed", "NoSuchVersion"}:
                continue  # a delete marker holds nothing
            error: StrongroomError = translate_client_error(
                exc, store=store.url, action="set the legal hold of", name=name
            )
            if error_code(exc) == "AccessDenied":
                error = PolicyError(str(error), hint=error.hint)
            raise error from exc
        except BotoCoreError as exc:
            raise translate_boto_error(exc, store=store.url, action="set a legal hold") from exc
