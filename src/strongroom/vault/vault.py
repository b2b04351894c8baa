"""The vault: create or open one over a blob store, write and read recovery points,
verify, collect garbage, repair the index, and manage its keys and leases.

Only the :class:`~strongroom.storage.base.BlobStore` protocol is used, so any store
(local, memory, S3, wrapped for retries and metrics) holds a vault.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from strongroom.errors import (
    ConfigError,
    ConflictError,
    NotFoundError,
)
from strongroom.keys import KdfSettings, KeyKind, KeyProvider, wrap_master_key
from strongroom.logs import get_logger
from strongroom.storage.base import BlobStore
from strongroom.vault.cache import IndexCache
from strongroom.vault.config import VaultConfig, VaultSettings, parse_config
from strongroom.vault.fetch import ChunkFetcher
from strongroom.vault.format import (
    CONFIG_NAME,
    KEY_BYTES,
    is_sha256_hex,
    key_name,
    manifest_name,
    pack_name,
)
from strongroom.vault.keyring import Keyring, Wrappings, list_wrappings, open_master_key
from strongroom.vault.lease_objects import LeaseSettings, LeaseStatus
from strongroom.vault.manifest import RecoveryPoint, RecoveryPointId
from strongroom.vault.parts import VaultParts
from strongroom.vault.presence import check_presence
from strongroom.vault.reader import ReaderOptions, VaultReader

if TYPE_CHECKING:
    # Imported where used: a command that only reads (restore, points) never loads the
    # writer (FastCDC and its CLI), verify, repair, GC or the lease protocol, and starts
    # sooner.
    from strongroom.vault.gc import GcReport
    from strongroom.vault.leases import HeldLease, VaultLeases
    from strongroom.vault.repair import RepairReport
    from strongroom.vault.verify import VerifyReport
    from strongroom.vault.writer import VaultWriter, WriterOptions

_log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """One wrapping of the master key (never the key itself)."""

    key_id: str
    label: str
    kind: KeyKind
    created: datetime


@dataclass(frozen=True, slots=True)
class VaultDescription:
    """What :meth:`Vault.describe` reports."""

    vault_id: str
    url: str
    format_version: int
    created: datetime
    config: VaultConfig
    keys: tuple[KeyInfo, ...]
    key_generations: tuple[int, ...]
    points: int
    index_chunks: int
    index_packs: int
    damaged_objects: dict[str, str]


class Vault:
    """An open vault. Use :meth:`create` or :meth:`open`; close it (or use ``with``)."""

    def __init__(
        self,
        *,
        store: BlobStore,
        config: VaultConfig,
        keyring: Keyring,
        cache: IndexCache,
        temporary_cache: Path | None,
        key_id: str,
    ) -> None:
        self._store = store
        self._config = config
        self._keyring = keyring
        self._cache = cache
        self._temporary_cache = temporary_cache
        self._key_id = key_id
        self._fetcher = ChunkFetcher(store, cache, keyring, resync=self._resync_after_miss)
        self._parts = VaultParts(
            store=store,
            config=config,
            keyring=keyring,
            index=cache,
            fetcher=self._fetcher,
            sync_index=self.sync_index,
        )
        self.damaged_fragments: dict[str, str] = {}
        """Index fragments the last sync could not read (name -> reason)."""
        self.lease_settings = LeaseSettings()
        """Lease duration, refresh interval, clock-skew allowance, wait and listing delay
        of the vault leases this client takes (docs/vault-format.md §13)."""

    # -- opening ---------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        store: BlobStore,
        key_provider: KeyProvider,
        settings: VaultSettings | None = None,
        *,
        label: str = "",
        kdf: KdfSettings | None = None,
        cache_dir: Path | None = None,
    ) -> Vault:
        """Create a new vault in ``store`` whose first key is ``key_provider``'s.

        ``cache_dir`` holds the local index cache (``<cache_dir>/<vault_id>/``); None uses
        a temporary folder removed on close. Raises ``ConflictError`` if the store
        already holds a vault, ``ConfigError``/``SecretError`` for bad settings or key
        material, and storage errors.
        """
        settings = settings or VaultSettings()
        if _exists(store, CONFIG_NAME):
            raise ConflictError(f"{store.url} already holds a vault")
        material = key_provider.material()
        master_key = secrets.token_bytes(KEY_BYTES)
        config = VaultConfig.new(settings, master_key)
        wrapping = wrap_master_key(
            master_key, material, vault_id=config.vault_id, label=label, kdf=kdf
        )
        store.put(key_name(wrapping.key_id), wrapping.to_bytes(), exclusive=True)
        keyring = Keyring(store, master_key, config.vault_id)
        keyring.create(generation=1)
        store.put(CONFIG_NAME, config.to_bytes(), exclusive=True)
        _log.info("created vault %s in %s", config.vault_id, store.url)
        return cls._assemble(store, config, keyring, cache_dir, wrapping.key_id)

    @classmethod
    def open(
        cls,
        store: BlobStore,
        key_provider: KeyProvider,
        *,
        cache_dir: Path | None = None,
        wrappings: Wrappings | None = None,
    ) -> Vault:
        """Open the vault in ``store`` with ``key_provider``'s key material (``wrappings``:
        the store's key wrappings, if :func:`~strongroom.vault.keyring.prefetch_master_key`
        already read them).

        Raises ``NotFoundError`` if there is no vault, ``WrongKeyError`` if the key opens
        none of its wrappings (nothing is written, not even the cache),
        ``IntegrityError`` if the config or every usable wrapping is damaged, and
        ``UnsupportedError`` for a newer format.
        """
        try:
            config_bytes = store.get(CONFIG_NAME)
        except NotFoundError as exc:
            raise NotFoundError(f"no vault in {store.url} (it has no config)") from exc
        config = parse_config(config_bytes)
        material = key_provider.material()
        master_key, wrapping = open_master_key(store, material, config.vault_id, wrappings)
        config.check_mac(master_key)
        keyring = Keyring(store, master_key, config.vault_id)
        return cls._assemble(store, config, keyring, cache_dir, wrapping.key_id)

    @classmethod
    def _assemble(
        cls,
        store: BlobStore,
        config: VaultConfig,
        keyring: Keyring,
        cache_dir: Path | None,
        key_id: str,
    ) -> Vault:
        temporary = None
        if cache_dir is None:
            temporary = cache_dir = Path(tempfile.mkdtemp(prefix="strongroom-cache-"))
        cache = IndexCache(cache_dir / config.vault_id / "index.sqlite")
        vault = cls(
            store=store,
            config=config,
            keyring=keyring,
            cache=cache,
            temporary_cache=temporary,
            key_id=key_id,
        )
        if temporary is not None:  # also when the caller forgets close()
            weakref.finalize(vault, shutil.rmtree, temporary, ignore_errors=True)
        vault.sync_index()
        return vault

    def close(self) -> None:
        """Close the index cache (and remove it if it was temporary)."""
        self._cache.close()
        if self._temporary_cache is not None:
            shutil.rmtree(self._temporary_cache, ignore_errors=True)
            self._temporary_cache = None

    def __enter__(self) -> Vault:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- properties ------------------------------------------------------------------

    @property
    def store(self) -> BlobStore:
        """The blob store holding the vault."""
        return self._store

    @property
    def vault_id(self) -> str:
        """The vault's random id (32 hex characters)."""
        return self._config.vault_id

    @property
    def config(self) -> VaultConfig:
        """The vault's stored parameters."""
        return self._config

    @property
    def key_id(self) -> str:
        """The id of the key wrapping this vault was opened with."""
        return self._key_id

    @property
    def parts(self) -> VaultParts:
        """The keyring, index cache and chunk fetcher of this vault, for verify, GC and
        index repair (and tests that look inside)."""
        return self._parts

    def sync_index(self) -> dict[str, str]:
        """Merge index fragments written since the last sync; returns damaged ones."""
        self._keyring.refresh()
        self._keyring.expect(self._cache.newest_generation_seen())
        self._cache.saw_generation(self._keyring.newest_known())
        self.damaged_fragments = self._cache.sync(self._store, self._keyring.data_key)
        return dict(self.damaged_fragments)

    def check_packs(self) -> dict[str, str]:
        """List the store's packs once and record, in the index cache, those the index
        names that are missing or of another size: their chunks stop counting as stored
        (a writer stores them again) and the index is synced again to place them
        elsewhere where another copy is listed. Returns the packs newly found lost
        (name -> reason), each also logged as a warning. Raises store errors."""
        presence = check_presence(self._store, self._cache.packs())
        new = self._cache.mark_lost(presence.lost, "listing", intact=presence.intact)
        if new:
            self.sync_index()
        newly_lost = {pack_name(digest.hex()): presence.lost[digest] for digest in new}
        for name, reason in newly_lost.items():
            _log.warning(
                "pack %s: %s; its chunks no longer count as stored (a backup stores them "
                "again; run verify)",
                name,
                reason,
            )
        return newly_lost

    def _resync_after_miss(self) -> None:
        """A reader missed a chunk or a pack: sync the index, and (if a pack is gone)
        place the chunks it held where other copies are."""
        self.sync_index()
        self.check_packs()

    # -- recovery points -------------------------------------------------------------

    def writer(self, options: WriterOptions | None = None) -> VaultWriter:
        """Start a recovery point under the newest key generation.

        The writer takes a shared vault lease when its first stream opens (or at commit)
        and holds it to its end; that step raises ``ConflictError`` while a GC or index
        repair holds the vault. Raises ``IntegrityError`` if the newest generation is
        damaged.
        """
        from strongroom.vault.writer import VaultWriter

        self.sync_index()
        return VaultWriter(
            store=self._store,
            cache=self._cache,
            keys=self._keyring.current(),
            config=self._config,
            options=options,
            acquire_lease=self._writer_lease,
            # No resync: under the writer's lease the index it synced is the one to trust.
            fetcher=ChunkFetcher(self._store, self._cache, self._keyring),
        )

    def _writer_lease(self) -> HeldLease:
        """Take a writer's shared lease, then sync the index and check that every pack it
        names is there: deduplication must only trust chunks seen while the lease keeps GC
        away, in packs that exist."""
        held = self.vault_leases().acquire("shared", "backup")
        try:
            self.sync_index()
            self.check_packs()
        except BaseException:
            held.release()
            raise
        return held

    def point_ids(self) -> list[RecoveryPointId]:
        """Return the ids of every manifest in the store (readable or not)."""
        return self._parts.point_ids()

    def points(self) -> list[RecoveryPoint]:
        """Return the readable recovery points, oldest first (damaged ones are logged
        and left out; :meth:`verify` names them)."""
        points, damaged = self.load_points(self.point_ids())
        for point_id, reason in damaged.items():
            _log.warning("recovery point %s is unreadable: %s", point_id, reason)
        return points

    def load_points(
        self, point_ids: list[RecoveryPointId]
    ) -> tuple[list[RecoveryPoint], dict[RecoveryPointId, str]]:
        """Load manifests in parallel; returns readable points (oldest first) and, by id,
        why the others could not be read."""
        return self._parts.load_points(point_ids)

    def point(self, point_id: str) -> RecoveryPoint:
        """Return recovery point ``point_id``.

        Raises ``ConfigError`` for a malformed id, ``NotFoundError`` if it does not exist
        and ``IntegrityError`` if its manifest is damaged.
        """
        return self._parts.point(point_id)

    def reader(self, point_id: str, options: ReaderOptions | None = None) -> VaultReader:
        """Open recovery point ``point_id`` for reading (see :meth:`point` for errors)."""
        point = self.point(point_id)
        keys = self._keyring.get(point.key_generation)
        return VaultReader(point, self._fetcher, keys, options)

    def delete_point(self, point_id: str) -> None:
        """Delete a recovery point's manifest; its data goes at the next GC.

        Raises ``ConfigError`` for a malformed id. Deleting a missing point succeeds.
        """
        if not is_sha256_hex(point_id):
            raise ConfigError(f"{point_id!r} is not a recovery point id (64 hex characters)")
        self._store.delete(manifest_name(point_id))

    def verify(
        self,
        *,
        read_data: bool = False,
        subset_percent: float | None = None,
        point_ids: list[str] | None = None,
        seed: int | None = None,
    ) -> VerifyReport:
        """Check the vault; see :func:`strongroom.vault.verify.verify_vault`. Damaged lease
        objects (which block backups or GC until they age out) are reported too."""
        from dataclasses import replace

        from strongroom.vault.verify import Problem, verify_vault

        report = verify_vault(
            self._parts,
            read_data=read_data,
            subset_percent=subset_percent,
            point_ids=point_ids,
            seed=seed,
        )
        damaged_leases = tuple(
            Problem(
                lease.name,
                f"damaged lease object ({lease.reason}); 'strongroom vault clear-stale-leases' "
                "removes it",
            )
            for lease in self.leases()
            if lease.info is None
        )
        return replace(report, problems=report.problems + damaged_leases)

    # -- maintenance -----------------------------------------------------------------

    def gc(
        self,
        *,
        dry_run: bool = False,
        repack_threshold: float | None = None,
        grace: timedelta | None = None,
    ) -> GcReport:
        """Delete packs no recovery point needs and repack mostly-dead ones.

        Takes the exclusive vault lease (a dry run: a shared one, and changes nothing).
        ``repack_threshold``: packs whose live share of chunk bytes is below it are
        rewritten (0 never repacks, 1 repacks every pack with any dead chunk; default
        :data:`~strongroom.vault.gc.DEFAULT_REPACK_THRESHOLD`). ``grace``: packs and index
        fragments younger than this stay whatever they hold (default
        :data:`~strongroom.vault.gc.DEFAULT_GRACE`). Raises
        ``ConflictError`` while writers (or another GC) hold leases, ``IntegrityError``
        before deleting anything when it cannot tell what the points need (see
        :func:`strongroom.vault.gc.collect_garbage`), ``ConfigError`` for bad arguments
        and store errors. A crash at any point leaves every committed point restorable.
        """
        from strongroom.vault.gc import DEFAULT_GRACE, DEFAULT_REPACK_THRESHOLD, collect_garbage

        held = self.vault_leases().acquire("shared" if dry_run else "exclusive", "gc")
        try:
            return collect_garbage(
                self._parts,
                held,
                dry_run=dry_run,
                repack_threshold=(
                    DEFAULT_REPACK_THRESHOLD if repack_threshold is None else repack_threshold
                ),
                grace=DEFAULT_GRACE if grace is None else grace,
                clock=self.lease_settings.clock,
            )
        finally:
            held.release()

    def repair_index(self) -> RepairReport:
        """Rebuild every index fragment from the pack headers, under the exclusive lease.

        New fragments are written before the old ones are deleted. Packs whose header
        cannot be read are reported by name and left out. Raises ``ConflictError`` while
        others hold leases, and store errors.
        """
        from strongroom.vault.repair import repair_index

        held = self.vault_leases().acquire("exclusive", "repair")
        try:
            return repair_index(self._parts, held)
        finally:
            held.release()

    def vault_leases(self) -> VaultLeases:
        """Return the lease manager of this vault (with :attr:`lease_settings`)."""
        from strongroom.vault.leases import VaultLeases

        return VaultLeases(
            self._store,
            self._keyring,
            self.vault_id,
            self.lease_settings,
            ages_path=self._cache.path.with_name("leases-seen.sqlite"),
        )

    def leases(self) -> list[LeaseStatus]:
        """Return every lease object of the vault with its state (live, stale, damaged),
        oldest first."""
        self._keyring.refresh()
        return self.vault_leases().statuses()

    def remove_stale_leases(self) -> list[LeaseStatus]:
        """Remove stale and damaged lease objects (live ones stay); return them."""
        self._keyring.refresh()
        return self.vault_leases().remove_stale()

    def break_lease(self, name: str) -> None:
        """Remove lease object ``name``, live or not (an operator's decision: its holder
        stops at its next renewal). Raises ``ConfigError`` for a name that is not a lease
        object's."""
        self.vault_leases().break_lease(name)

    # -- keys ------------------------------------------------------------------------

    def list_keys(self) -> list[KeyInfo]:
        """Return the vault's intact key wrappings, oldest first."""
        wrappings, _ = list_wrappings(self._store)
        infos = [
            KeyInfo(w.key_id, w.document.label, w.kind, w.created)
            for w in wrappings
            if w.document.vault_id == self.vault_id
        ]
        return sorted(infos, key=lambda info: (info.created, info.key_id))

    def add_key(
        self, key_provider: KeyProvider, *, label: str = "", kdf: KdfSettings | None = None
    ) -> str:
        """Wrap the master key for another provider; returns the new key id.

        Nothing else in the vault changes. Raises ``SecretError``/``ConfigError`` for
        bad material or settings, and storage errors.
        """
        wrapping = wrap_master_key(
            self._keyring.master_key,
            key_provider.material(),
            vault_id=self.vault_id,
            label=label,
            kdf=kdf,
        )
        self._store.put(key_name(wrapping.key_id), wrapping.to_bytes(), exclusive=True)
        _log.info("added key %s to vault %s", wrapping.key_id, self.vault_id)
        return wrapping.key_id

    def remove_key(self, key_id: str) -> None:
        """Delete wrapping ``key_id``; the other keys keep opening the vault.

        Raises ``NotFoundError`` for an unknown id and ``ConfigError`` for the last
        intact key (a vault nobody can open is lost).
        """
        ids = {info.key_id for info in self.list_keys()}
        if key_id not in ids:
            raise NotFoundError(f"vault {self.vault_id} has no key {key_id!r}")
        if ids == {key_id}:
            raise ConfigError(
                f"key {key_id} is the vault's last key",
                hint="Add another key first; a vault without keys cannot be opened.",
            )
        self._store.delete(key_name(key_id))
        _log.info("removed key %s from vault %s", key_id, self.vault_id)

    def rotate_data_key(self) -> int:
        """Start a new data-key generation; returns its number.

        Later writers encrypt and key chunk ids with it; existing points stay readable.
        """
        self._keyring.refresh()
        generation = self._keyring.create().generation
        self._cache.saw_generation(generation)
        return generation

    def describe(self) -> VaultDescription:
        """Return an overview of the vault (keys, generations, counts, damaged objects)."""
        damaged: dict[str, str] = dict(self.damaged_fragments)
        _, damaged_keys = list_wrappings(self._store)
        damaged.update(damaged_keys)
        damaged.update(self._keyring.problems())
        chunks, packs = self._cache.counts()
        return VaultDescription(
            vault_id=self.vault_id,
            url=self._store.url,
            format_version=self._config.version,
            created=self._config.created_at,
            config=self._config,
            keys=tuple(self.list_keys()),
            key_generations=tuple(self._keyring.generations()),
            points=len(self.point_ids()),
            index_chunks=chunks,
            index_packs=packs,
            damaged_objects=damaged,
        )


def _exists(store: BlobStore, name: str) -> bool:
    try:
        store.stat(name)
    except NotFoundError:
        return False
    return True
