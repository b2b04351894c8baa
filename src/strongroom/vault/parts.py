"""What verify, garbage collection and index repair work on: the parts of an open vault.

:class:`~strongroom.vault.vault.Vault` builds one :class:`VaultParts` and hands it to
:mod:`~strongroom.vault.verify`, :mod:`~strongroom.vault.gc` and
:mod:`~strongroom.vault.repair`, so those modules never import the vault itself and the
vault keeps its keyring, index cache and chunk fetcher to itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Final

from strongroom.errors import ConfigError, IntegrityError, NotFoundError, UnsupportedError
from strongroom.storage.base import BlobStore
from strongroom.vault.cache import IndexCache
from strongroom.vault.config import VaultConfig
from strongroom.vault.fetch import ChunkFetcher
from strongroom.vault.format import MANIFESTS_PREFIX, is_sha256_hex, manifest_name, sha_suffix
from strongroom.vault.keyring import Keyring
from strongroom.vault.manifest import RecoveryPoint, RecoveryPointId, decode_manifest

LOAD_THREADS: Final = 8


class VaultParts:
    """The store, config, keys, index cache and chunk fetcher of one open vault, with the
    two operations over them that maintenance needs: syncing the index and loading
    recovery points."""

    def __init__(
        self,
        *,
        store: BlobStore,
        config: VaultConfig,
        keyring: Keyring,
        index: IndexCache,
        fetcher: ChunkFetcher,
        sync_index: Callable[[], dict[str, str]],
    ) -> None:
        """``sync_index`` merges new index fragments into ``index`` and returns the
        damaged ones (name -> reason)."""
        self.store = store
        self.config = config
        self.keyring = keyring
        self.index = index
        self.fetcher = fetcher
        self._sync_index = sync_index

    def sync_index(self) -> dict[str, str]:
        """Merge index fragments written since the last sync; returns damaged ones."""
        return self._sync_index()

    def point_ids(self) -> list[RecoveryPointId]:
        """Return the ids of every manifest in the store (readable or not), sorted."""
        ids = []
        for info in self.store.list(MANIFESTS_PREFIX):
            digest = sha_suffix(info.name, MANIFESTS_PREFIX)
            if digest is not None:
                ids.append(RecoveryPointId(digest))
        return sorted(ids)

    def point(self, point_id: str) -> RecoveryPoint:
        """Return recovery point ``point_id``.

        Raises ``ConfigError`` for a malformed id, ``NotFoundError`` if it does not exist
        and ``IntegrityError`` if its manifest is damaged.
        """
        if not is_sha256_hex(point_id):
            raise ConfigError(f"{point_id!r} is not a recovery point id (64 hex characters)")
        name = manifest_name(point_id)
        try:
            data = self.store.get(name)
        except NotFoundError as exc:
            raise NotFoundError(f"recovery point {point_id} does not exist") from exc
        if hashlib.sha256(data).hexdigest() != point_id:
            raise IntegrityError(f"{name}: its bytes do not match its name")
        manifest = decode_manifest(data, self.keyring.data_key, name)
        return RecoveryPoint(RecoveryPointId(point_id), manifest)

    def load_points(
        self, point_ids: list[RecoveryPointId]
    ) -> tuple[list[RecoveryPoint], dict[RecoveryPointId, str]]:
        """Load manifests in parallel; returns readable points (oldest first) and, by id,
        why the others could not be read."""
        points: list[RecoveryPoint] = []
        damaged: dict[RecoveryPointId, str] = {}

        def load(point_id: RecoveryPointId) -> RecoveryPoint | str:
            try:
                return self.point(point_id)
            except (IntegrityError, UnsupportedError, NotFoundError) as exc:
                return str(exc)

        with ThreadPoolExecutor(max_workers=LOAD_THREADS, thread_name_prefix="manifest") as pool:
            for point_id, result in zip(point_ids, pool.map(load, point_ids), strict=True):
                if isinstance(result, str):
                    damaged[point_id] = result
                else:
                    points.append(result)
        points.sort(key=lambda point: (point.created, point.id))
        return points, damaged
