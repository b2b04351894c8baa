"""Vault lock on the store: what a locked S3 vault retains, and the pre-flight before locking.

On a ``file://`` vault the lock is strongroom's alone: every deletion checks it, and
anyone with write access to the folder can still remove files. On an ``s3://`` vault the
S3 server enforces it too, through Object Lock:

* before a lock is set, :func:`prove_store_enforcement` checks that the bucket has Object
  Lock and that the server refuses to delete a locked version (a canary), and refuses to
  lock otherwise, naming the server;
* every pack and manifest a locked vault writes carries a retention of
  ``min_retention_days`` (one day when the lock sets no minimum), in GOVERNANCE mode for a
  governance lock or a compliance lock still in its grace period, in COMPLIANCE mode once
  a compliance lock is immutable (:func:`lock_retention`);
* a legal hold on a recovery point is an S3 legal hold on its manifest and every pack it
  needs (:func:`hold_point`); lifting it lifts the S3 hold only where no other held point
  of the vault needs the pack;
* a backup extends the retention of every older pack its point reuses to the same date
  (:func:`protect_point`): packs are shared by later points, so a pack stays retained as
  long as the newest point that needs it. See docs/s3.md for the cost.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final, Literal

from strongroom.config.vaults import VaultConfig
from strongroom.errors import UnsupportedError
from strongroom.logs import get_logger

if TYPE_CHECKING:
    from strongroom.storage.s3 import WriteRetention
    from strongroom.storage.s3_lock import Enforcement
    from strongroom.vault import Vault

EXTENSION_TOLERANCE: Final = timedelta(days=1)
"""A pack retained until at most this much before the new date keeps its retention: it
was written by this backup (or one a moment ago), and one write per pack is saved."""

Enforcer = Literal["store", "strongroom"]

_log = get_logger(__name__)


def is_s3(url: str) -> bool:
    """Tell whether a vault URL names an S3 store."""
    return url.lower().startswith("s3://")


def enforced_by(url: str) -> Enforcer:
    """Where a lock on the vault at ``url`` is enforced: by the S3 server too, or by
    strongroom alone."""
    return "store" if is_s3(url) else "strongroom"


def lock_retention(
    mode: str | None,
    min_retention_days: int | None,
    changeable_until: datetime | None,
    now: datetime,
) -> WriteRetention | None:
    """Return the Object Lock retention of a vault locked as given (None: not locked)."""
    from strongroom.storage.s3 import WriteRetention

    if mode is None:
        return None
    immutable = mode == "compliance" and changeable_until is not None and changeable_until <= now
    return WriteRetention(
        mode="COMPLIANCE" if immutable else "GOVERNANCE",
        period=timedelta(days=min_retention_days or 1),
    )


def prove_store_enforcement(config: VaultConfig) -> Enforcement | None:
    """Before locking the vault of ``config``: prove its S3 server enforces Object Lock.

    Returns what was proven, or None for a store that is not S3 (the lock stays
    strongroom's). Raises ``UnsupportedError`` naming the server when the bucket has no
    Object Lock or the server deleted the canary, and the store's errors.
    """
    if not is_s3(config.url):
        return None
    from strongroom.services.vaults.stores import s3_connection
    from strongroom.storage.s3 import S3Store
    from strongroom.storage.s3_lock import prove_enforcement

    store = S3Store.from_url(config.url, s3_connection(config.s3))
    proof = prove_enforcement(store)
    _log.info(
        "the S3 server %s of %s refused to delete a locked canary version (%s)",
        proof.server,
        config.url,
        proof.refusal,
    )
    return proof


def protect_point(vault: Vault, point_id: str, retention: WriteRetention, now: datetime) -> int:
    """Extend the retention of every blob point ``point_id`` needs to ``now`` + the period.

    Returns how many blobs got a later date. A vault whose store is not S3 returns 0.
    Raises the store's errors, and ``IntegrityError`` when a chunk cannot be located.
    """
    from strongroom.storage.s3_lock import extend_retention, s3_store_of

    store = s3_store_of(vault.store)
    if store is None:
        return 0
    with vault.reader(point_id) as reader:
        names = reader.blob_names()
    until = retention.until(now)
    extended = 0
    for name in sorted(names):
        if extend_retention(store, name, retention.mode, until, tolerance=EXTENSION_TOLERANCE):
            extended += 1
    return extended


def hold_point(vault: Vault, point_id: str, *, on: bool, others: list[str]) -> int:
    """Put (``on``) or lift the S3 legal hold of the blobs point ``point_id`` needs.

    Lifting spares the blobs that the held points ``others`` need too. Returns how many
    blobs changed (0 for a store that is not S3, or a bucket without Object Lock, where the
    hold stays strongroom's alone, with a warning). Raises the store's errors and
    ``PolicyError`` when the server refuses.
    """
    from strongroom.storage.s3_lock import check_bucket_lock, s3_store_of, set_legal_hold

    store = s3_store_of(vault.store)
    if store is None:
        return 0
    try:
        check_bucket_lock(store)
    except UnsupportedError as exc:
        _log.warning("legal hold of point %s kept by strongroom only: %s", point_id, exc)
        return 0
    with vault.reader(point_id) as reader:
        names = reader.blob_names()
    for other in others:
        with vault.reader(other) as reader:
            names -= reader.blob_names()
    for name in sorted(names):
        set_legal_hold(store, name, on=on)
    return len(names)
