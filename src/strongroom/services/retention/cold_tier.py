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
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from strongroom.config.vaults import SeparateStoreColdTier, VaultConfig
from strongroom.errors import IntegrityError, NotFoundError
from strongroom.services.context import AppContext
from strongroom.services.vaults.keyref import key_provider
from strongroom.services.vaults.stores import open_or_create_vault, open_vault_store
from strongroom.vault import Vault

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
