"""Thawing archived objects on S3: ``RestoreObject`` for blobs in GLACIER or DEEP_ARCHIVE.

An object in an archive class (S3 Glacier Flexible Retrieval, ``GLACIER``, or Deep
Archive, ``DEEP_ARCHIVE``) cannot be read until a restore request has made a temporary
copy of it readable, which takes minutes to days by the retrieval tier asked for. The
object's ``HEAD`` answer says its class (``x-amz-storage-class``) and where its restore
stands (``x-amz-restore``: ``ongoing-request="true"`` while it runs,
``ongoing-request="false", expiry-date="…"`` once the copy is readable). Other classes
(GLACIER_IR, STANDARD_IA …) read at once and need nothing.

:func:`thaw` looks at each blob asked for and sends a restore request only for an
archived one with no restore yet, so calling it again (a retried job) asks for nothing
twice. A server that does not implement ``RestoreObject`` gets an ``UnsupportedError``
naming the request and the server.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Final, Literal

from botocore.exceptions import BotoCoreError, ClientError

from strongroom.errors import UnsupportedError
from strongroom.storage.s3 import S3Store
from strongroom.storage.s3_errors import error_code, translate_boto_error, translate_client_error

ARCHIVE_CLASSES: Final = frozenset({"GLACIER", "DEEP_ARCHIVE"})
"""Storage classes whose objects must be thawed before a read."""

RetrievalTier = Literal["Expedited", "Standard", "Bulk"]
ThawState = Literal["readable", "archived", "thawing", "thawed"]

_EXPECTED: Final[dict[tuple[str, str], timedelta]] = {
    ("GLACIER", "Expedited"): timedelta(minutes=5),
    ("GLACIER", "Standard"): timedelta(hours=5),
    ("GLACIER", "Bulk"): timedelta(hours=12),
    ("DEEP_ARCHIVE", "Standard"): timedelta(hours=12),
    ("DEEP_ARCHIVE", "Bulk"): timedelta(hours=48),
}
"""The longest time AWS documents for a restore of each class and tier (Expedited is not
offered for DEEP_ARCHIVE: such a request is refused by the server)."""

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import RestoreRequestTypeDef

_NOT_IMPLEMENTED: Final = frozenset({"NotImplemented", "501"})


def expected_wait(storage_class: str, tier: RetrievalTier) -> timedelta | None:
    """Return how long a restore of ``storage_class`` at ``tier`` takes at most (AWS's
    figures), or None when AWS does not offer that tier for the class."""
    return _EXPECTED.get((storage_class, tier))


def thaw_state(storage_class: str | None, restore: str | None) -> ThawState:
    """Return where an object stands, from its ``HEAD`` answer's storage class (None:
    STANDARD) and ``x-amz-restore`` value (None: no restore asked for)."""
    if storage_class not in ARCHIVE_CLASSES:
        return "readable"
    if restore is None:
        return "archived"
    fields = restore.replace(" ", "").lower()
    return "thawing" if 'ongoing-request="true"' in fields else "thawed"


@dataclass(frozen=True, slots=True)
class ThawReport:
    """What :func:`thaw` found and did, blob names by state.

    ``requested``: archived, restore asked for now; ``thawing``: a restore asked for
    earlier still runs; ``thawed`` and ``readable``: can be read now. ``wait``: the
    longest expected time of the restores asked for or running (None: none).
    """

    requested: list[str]
    thawing: list[str]
    thawed: list[str]
    readable: list[str]
    wait: timedelta | None

    @property
    def ready(self) -> bool:
        """Whether every blob can be read now."""
        return not self.requested and not self.thawing


def thaw(
    store: S3Store,
    names: Iterable[str],
    *,
    days: int,
    tier: RetrievalTier,
    threads: int = 8,
) -> ThawReport:
    """Ask for a restore of each blob of ``names`` that is archived and not yet thawing.

    ``days``: how long the thawed copy stays readable; ``tier``: the retrieval tier.
    Returns what each blob's state was (see :class:`ThawReport`). Raises
    ``UnsupportedError`` when the server does not implement ``RestoreObject`` (naming the
    server) or refuses the tier for the class, ``BlobNotFoundError`` for a missing blob,
    and the store's errors.
    """
    found: dict[ThawState | Literal["requested"], list[str]] = {
        "requested": [],
        "thawing": [],
        "thawed": [],
        "readable": [],
        "archived": [],
    }
    classes: set[str] = set()
    lock = threading.Lock()

    def visit(name: str) -> None:
        storage_class, restore = _head(store, name)
        state: ThawState | Literal["requested"] = thaw_state(storage_class, restore)
        if state == "archived":
            state = "requested" if request_restore(store, name, days=days, tier=tier) else "thawing"
        with lock:
            found[state].append(name)
            if state in {"requested", "thawing"} and storage_class is not None:
                classes.add(storage_class)

    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="s3-thaw") as pool:
        for future in [pool.submit(visit, name) for name in names]:
            future.result()
    waits = [wait for wait in (expected_wait(c, tier) for c in classes) if wait is not None]
    return ThawReport(
        requested=sorted(found["requested"]),
        thawing=sorted(found["thawing"]),
        thawed=sorted(found["thawed"]),
        readable=sorted(found["readable"]),
        wait=max(waits, default=None),
    )


def request_restore(store: S3Store, name: str, *, days: int, tier: RetrievalTier) -> bool:
    """Send ``RestoreObject`` for blob ``name``; return True when the server took it, False
    when a restore of it already runs (``RestoreAlreadyInProgress``).

    Raises ``UnsupportedError`` when the server does not implement the request (naming
    the server) or refuses it as invalid for the object (a tier the class does not
    offer, an object not archived), and the store's errors.
    """
    key = store.key(name)
    request: RestoreRequestTypeDef = {"Days": days, "GlacierJobParameters": {"Tier": tier}}
    try:
        store.client.restore_object(Bucket=store.bucket, Key=key, RestoreRequest=request)
    except ClientError as exc:
        code = error_code(exc)
        if code == "RestoreAlreadyInProgress":
            return False
        if code in _NOT_IMPLEMENTED:
            server = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("server")
            raise UnsupportedError(
                f"the S3 server of {store.url} ({server or 'unknown server'}) does not implement "
                f"RestoreObject: blob {name!r} cannot be thawed there",
                hint="Restore from a copy in another vault, or thaw the objects with the "
                "storage provider's own tools and run the restore again.",
            ) from exc
        if code in {"InvalidObjectState", "InvalidArgument", "InvalidRequest"}:
            raise UnsupportedError(
                f"the S3 server of {store.url} refused to thaw blob {name!r} with tier "
                f"{tier}: {code}: {exc.response.get('Error', {}).get('Message') or code}",
                hint="Choose a retrieval tier the storage class offers (DEEP_ARCHIVE has no "
                "Expedited tier): cold_tier.thaw.tier.",
            ) from exc
        raise translate_client_error(exc, store=store.url, action="thaw", name=name) from exc
    except BotoCoreError as exc:
        raise translate_boto_error(exc, store=store.url, action="thaw") from exc
    return True


def _head(store: S3Store, name: str) -> tuple[str | None, str | None]:
    """Return blob ``name``'s storage class (None: STANDARD) and ``x-amz-restore``."""
    key = store.key(name)
    try:
        answer = store.client.head_object(Bucket=store.bucket, Key=key)
    except ClientError as exc:
        if error_code(exc).isdigit():
            store.stat(name)  # a bare HEAD status names no cause: let the store's stat say
        raise translate_client_error(exc, store=store.url, action="stat", name=name) from exc
    except BotoCoreError as exc:
        raise translate_boto_error(exc, store=store.url, action="stat") from exc
    return answer.get("StorageClass"), answer.get("Restore")
