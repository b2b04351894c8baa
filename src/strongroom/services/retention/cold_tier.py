"""The cold tier of a vault, as the lifecycle runner uses it.

* ``same-store``: cold points stay where they are; the catalog marks them cold. (On an
  S3 store the move will also change the objects' storage class; that comes with the
  S3 store, since only a vault's packs know which objects a point uses.)
* ``separate-store``: the cold tier is a second vault at the tier's URL, opened with the
  warm vault's key (created on first use). A move copies the point's streams through a
  reader into a writer there, reads the copy back and compares every stream's SHA-256
  with the original, and only then may the warm manifest go. The copy is a new manifest,
  so it has its own id (kept in the catalog as ``cold_point_id``).
* ``none``: nothing moves.

Reading a cold point (:func:`point_to_read`) whose packs were written in an archive class
(GLACIER, DEEP_ARCHIVE) first asks S3 to thaw them (:func:`ensure_thawed`): the request
goes out once per pack, and until every pack is readable the read stops with a
``ThawPendingError`` that says how many objects are thawing and when to try again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from strongroom.config.vaults import SeparateStoreColdTier, VaultConfig
from strongroom.errors import IntegrityError, NotFoundError, ThawPendingError
from strongroom.logs import get_logger
from strongroom.services.context import AppContext
from strongroom.services.vaults.keyref import key_provider
from strongroom.services.vaults.service import VaultService
from strongroom.services.vaults.stores import open_or_create_vault, open_vault_store
from strongroom.vault import Vault

if TYPE_CHECKING:
    from strongroom.storage.s3_thaw import ThawReport

_log = get_logger(__name__)

COPY_OF_KEY = "strongroom_cold_copy_of"
"""Metadata key of a cold copy: the warm vault id, point id and creation time."""


@contextmanager
def open_cold_vault(context: AppContext, config: VaultConfig, *, create: bool) -> Iterator[Vault]:
    """Open the separate-store cold vault of ``config`` (creating it when ``create``).

    Raises NotFoundError when it does not exist and ``create`` is false, and what
    opening a vault raises.
    """
    tier = config.cold_tier
    if not isinstance(tier, SeparateStoreColdTier):
        raise NotFoundError(f"the vault at {config.url} has no separate-store cold tier")
    store = open_vault_store(tier.url, tier.s3, storage_class=tier.storage_class)
    provider = key_provider(config.key)
    vault, _ = open_or_create_vault(
        store, provider, config, cache_dir=context.cache_dir, label="cold tier", create=create
    )
    with vault:
        yield vault


def copy_point(warm: Vault, cold: Vault, point_id: str) -> str:
    """Copy recovery point ``point_id`` from ``warm`` into ``cold``; return the copy's id.

    The copy keeps the streams (in order), tags and metadata, plus where it came from
    under ``strongroom_cold_copy_of``. It is read back and each stream's SHA-256 compared
    with the original's before this returns; a mismatch deletes the copy and raises
    IntegrityError.
    """
    point = warm.point(point_id)
    digests: dict[str, str] = {}
    with warm.reader(point_id) as reader, cold.writer() as writer:
        for record in reader.streams():
            digest = hashlib.sha256()
            writer.add_stream(record.name, _hashed(reader.iter_stream(record.name), digest))
            digests[record.name] = digest.hexdigest()
        metadata: dict[str, Any] = {
            **point.metadata,
            COPY_OF_KEY: {
                "vault_id": warm.vault_id,
                "point_id": point_id,
                "created": point.created.isoformat(),
            },
        }
        copy_id = writer.commit(metadata=metadata, tags=point.tags)
    copied = _stream_digests(cold, copy_id)
    if copied != digests:
        cold.delete_point(copy_id)
        raise IntegrityError(
            f"the cold copy of recovery point {point_id[:12]} does not read back as the "
            "original; it was deleted and the point stays warm"
        )
    return copy_id


def _hashed(pieces: Iterator[bytes], digest: Any) -> Iterator[bytes]:
    for piece in pieces:
        digest.update(piece)
        yield piece


def _stream_digests(vault: Vault, point_id: str) -> dict[str, str]:
    digests: dict[str, str] = {}
    with vault.reader(point_id) as reader:
        for record in reader.streams():
            digest = hashlib.sha256()
            for piece in reader.iter_stream(record.name):
                digest.update(piece)
            digests[record.name] = digest.hexdigest()
    return digests


@contextmanager
def point_to_read(
    context: AppContext, vault_name: str, point_id: str, cold_point_id: str | None
) -> Iterator[tuple[Vault, str]]:
    """Yield the vault to read recovery point ``point_id`` of vault ``vault_name`` from, and
    the id it has there: the vault itself, or for a point moved to a separate-store cold
    tier (``cold_point_id``) the cold vault and the copy's id, thawed first.

    Raises ``ThawPendingError`` while archived packs are not readable yet, what
    :func:`ensure_thawed` raises, and what opening a vault raises.
    """
    service = VaultService(context)
    if cold_point_id is None:
        with service.open(vault_name) as vault:
            yield vault, point_id
        return
    config = service.config(vault_name)
    with open_cold_vault(context, config, create=False) as cold:
        ensure_thawed(cold, cold_point_id, config, now=context.now())
        yield cold, cold_point_id


def ensure_thawed(cold: Vault, point_id: str, config: VaultConfig, *, now: datetime) -> None:
    """Make sure every pack point ``point_id`` of the cold vault ``cold`` needs is readable.

    Only a cold tier on S3 whose ``storage_class`` is an archive class is looked at; each
    pack still archived gets one restore request (``cold_tier.thaw``: tier and days). The
    chunk lists of a large stream live in packs too, so they are thawed (and read) before
    the packs they name can be. Raises ``ThawPendingError`` while anything is thawing,
    ``UnsupportedError`` when the server cannot thaw (naming it), and the store's errors.
    """
    from strongroom.storage.s3_lock import s3_store_of
    from strongroom.storage.s3_thaw import ARCHIVE_CLASSES, thaw

    tier = config.cold_tier
    if not isinstance(tier, SeparateStoreColdTier) or tier.storage_class not in ARCHIVE_CLASSES:
        return
    store = s3_store_of(cold.store)
    if store is None:
        return
    settings = tier.thaw
    with cold.reader(point_id) as reader:
        for stage, names in (
            ("chunk lists", reader.list_blob_names),
            ("data", reader.blob_names),
        ):
            packs = sorted(name for name in names() if name.startswith("data/"))
            report = thaw(store, packs, days=settings.days, tier=settings.tier)
            if not report.ready:
                raise pending_error(point_id, stage, report, settings.tier, now)
            _log.info("recovery point %s: %d %s packs readable", point_id[:12], len(packs), stage)


def pending_error(
    point_id: str, stage: str, report: ThawReport, tier: str, now: datetime
) -> ThawPendingError:
    """The error of a read that must wait for a thaw: how many objects of which ``stage``
    were asked for now or earlier, how many are readable, and when to try again."""
    asked = len(report.requested) + len(report.thawing)
    ready = len(report.thawed) + len(report.readable)
    when = (
        f"retry after {(now + report.wait):%Y-%m-%d %H:%M} UTC (the {tier} tier takes up to "
        f"{report.wait.total_seconds() / 3600:g} hours)"
        if report.wait is not None
        else "retry once the storage provider reports them restored"
    )
    return ThawPendingError(
        f"recovery point {point_id[:12]} is in an archive storage class: thaw requested "
        f"for {len(report.requested)} objects ({stage}) now, {len(report.thawing)} already "
        f"thawing, {ready} of {asked + ready} readable; {when}"
    )
