"""Vault operations for operators and scripts: create, back up, list, restore, verify, keys.

Vaults are registered in the catalog by name (:mod:`~strongroom.services.vaults.registry`).
Opening a vault uses the key options given, else the registered key setting. Each vault
keeps its index cache under ``HOME/cache``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from strongroom.config.vaults import EnvKey, KeyFileKey, PassphraseKey, VaultConfig
from strongroom.errors import ConfigError, NotFoundError, StrongroomError
from strongroom.keys.derive import remember
from strongroom.services.context import AppContext
from strongroom.services.vaults.keyref import KeyOptions, key_provider
from strongroom.services.vaults.registry import (
    register_vault,
    unlocked_without_catalog,
    vault_config,
)
from strongroom.services.vaults.store_lock import (
    enforced_by,
    hold_point,
    is_s3,
    lock_retention,
    protect_point,
)
from strongroom.services.vaults.stores import open_or_create_vault, open_vault_store

if TYPE_CHECKING:
    from strongroom.keys.providers import KeyProvider
    from strongroom.storage.s3 import WriteRetention
    from strongroom.vault import (
        GcReport,
        KeyInfo,
        LeaseStatus,
        RecoveryPoint,
        RepairReport,
        Vault,
        VaultDescription,
        VerifyReport,
    )
    from strongroom.vault.keyring import Wrappings


class VaultService:
    """The operations of ``strongroom vault …`` on one application context."""

    def __init__(self, context: AppContext) -> None:
        self.context = context

    def config(self, name: str) -> VaultConfig:
        """Return the registered configuration of vault ``name``; raises ``NotFoundError``."""
        return vault_config(self.context, name)

    def create(self, name: str, config: VaultConfig) -> VaultDescription:
        """Create the vault ``config`` describes and register it as ``name``.

        A key file that does not exist yet is generated. Raises ``ConfigError`` if the
        name is taken, ``ConflictError`` if the store already holds a vault.
        """
        from strongroom.catalog.resources import get_vault

        with self.context.catalog.session(readonly=True) as session:
            try:
                get_vault(session, name)
            except NotFoundError:
                pass
            else:
                raise ConfigError(f"a vault named {name!r} is already registered")
        return self.initialise(name, config)

    def initialise(self, name: str, config: VaultConfig) -> VaultDescription:
        """Create the vault in its store (if absent) and register it; return its description.

        An existing vault at the URL is opened with the configured key instead, so
        declaring a vault that already exists adopts it.
        """
        store = open_vault_store(config.url, config.s3)
        provider = key_provider(config.key, create_key_file=True)
        vault, _ = open_or_create_vault(
            store,
            provider,
            config,
            cache_dir=self.context.cache_dir,
            label="initial",
        )
        with vault:
            description = vault.describe()
        with self.context.catalog.session() as session:
            register_vault(session, name, config, self.context.now())
        return description

    def key_provider(self, name: str, key: KeyOptions | None = None) -> KeyProvider:
        """Return the provider for vault ``name``: the options given, else the registered one."""
        setting = (key.setting() if key else None) or self.config(name).key
        return key_provider(setting)

    @contextmanager
    def open(self, name: str, key: KeyOptions | None = None) -> Iterator[Vault]:
        """Open vault ``name`` for the duration of the block."""
        from strongroom.vault.keyring import prefetch_master_key

        config = self.config(name)
        setting = (key.setting() if key else None) or config.key
        provider = key_provider(setting)
        retention = self.store_retention(name) if is_s3(config.url) else None
        store = open_vault_store(config.url, config.s3, retention=retention)
        wrappings = prefetch_master_key(store, provider.material())
        from strongroom.vault import Vault  # the engine loads while the key derivation runs

        with Vault.open(
            store, provider, cache_dir=self.context.cache_dir, wrappings=wrappings
        ) as vault:
            _remember_derivation(self.context.cache_dir, name, setting, vault.key_id, wrappings)
            yield vault

    def store_retention(self, name: str) -> WriteRetention | None:
        """The Object Lock retention vault ``name`` writes with (None: not locked)."""
        if unlocked_without_catalog(self.context, name):
            return None  # the common case, answered without loading the catalog
        from strongroom.catalog.resources import get_vault

        with self.context.catalog.session(readonly=True) as session:
            row = get_vault(session, name)
            return lock_retention(
                row.lock_mode,
                row.lock_min_retention_days,
                row.lock_changeable_until,
                self.context.now(),
            )

    def lock_enforcement(self, name: str) -> str:
        """Say where the lock of vault ``name`` is enforced, for ``vault describe``."""
        from strongroom.catalog.resources import get_vault

        with self.context.catalog.session(readonly=True) as session:
            row = get_vault(session, name)
            mode, url = row.lock_mode, row.url
        if mode is None:
            return "not locked"
        if enforced_by(url) == "store":
            return (
                f"{mode} lock, enforced by the S3 server (Object Lock on every pack and "
                "manifest, proven at lock time) and by strongroom"
            )
        return f"{mode} lock, enforced by strongroom only (a file store cannot refuse a delete)"

    def hold_point(self, name: str, point_id: str, *, on: bool, others: list[str]) -> int:
        """Mirror a legal hold of point ``point_id`` onto vault ``name``'s S3 store (see
        :func:`~strongroom.services.vaults.store_lock.hold_point`); 0 elsewhere."""
        if not is_s3(self.config(name).url):
            return 0
        with self.open(name) as vault:
            return hold_point(vault, point_id, on=on, others=others)

    def protect_point(self, name: str, vault: Vault, point_id: str) -> int:
        """On a locked S3 vault, extend the retention of every pack and the manifest point
        ``point_id`` needs (see :mod:`~strongroom.services.vaults.store_lock`); return how
        many blobs got a later date (0 elsewhere)."""
        if not is_s3(self.config(name).url):
            return 0
        retention = self.store_retention(name)
        if retention is None:
            return 0
        return protect_point(vault, point_id, retention, self.context.now())

    def backup_streams(
        self,
        name: str,
        streams: Mapping[str, BinaryIO | Iterable[bytes]],
        *,
        metadata: Mapping[str, Any],
        tags: Mapping[str, str],
        key: KeyOptions | None = None,
    ) -> RecoveryPoint:
        """Write the given streams as one recovery point and return it."""
        with self.open(name, key) as vault:
            with vault.writer() as writer:
                for stream_name, source in streams.items():
                    writer.add_stream(stream_name, source)
                point_id = writer.commit(metadata=metadata, tags=tags)
            self.protect_point(name, vault, point_id)
            return vault.point(point_id)

    def points(self, name: str, key: KeyOptions | None = None) -> list[RecoveryPoint]:
        """Every recovery point of the vault, oldest first."""
        with self.open(name, key) as vault:
            return sorted(vault.points(), key=lambda point: point.created)

    def point(self, name: str, point_id: str, key: KeyOptions | None = None) -> RecoveryPoint:
        """One recovery point, by its full id or a unique prefix of it."""
        with self.open(name, key) as vault:
            return vault.point(resolve_point_id(vault, point_id))

    def verify(
        self,
        name: str,
        point_id: str | None = None,
        *,
        read_data: bool = False,
        subset_percent: float | None = None,
        key: KeyOptions | None = None,
    ) -> VerifyReport:
        """Check the vault (or one point): structure, or every byte, or a sample of packs;
        a whole vault's points are also compared with the catalog's
        (:mod:`strongroom.services.vaults.point_audit`)."""
        with self.open(name, key) as vault:
            point_ids = [resolve_point_id(vault, point_id)] if point_id else None
            report = vault.verify(
                read_data=read_data, subset_percent=subset_percent, point_ids=point_ids
            )
            if point_id:
                return report
            # Imported here: it loads the catalog models (SQLAlchemy), which the other vault
            # commands never need.
            from strongroom.services.vaults.point_audit import audit_points, with_problems

            return with_problems(report, audit_points(self.context, name, vault))

    def gc(
        self,
        name: str,
        *,
        dry_run: bool = False,
        repack_threshold: float | None = None,
        grace: timedelta | None = None,
        key: KeyOptions | None = None,
    ) -> GcReport:
        """Delete data no recovery point needs and repack mostly-dead packs; a real run
        is recorded in the catalog (the monitor alerts when a vault's GC is overdue)."""
        options: dict[str, Any] = {}
        if repack_threshold is not None:
            options["repack_threshold"] = repack_threshold
        if grace is not None:
            options["grace"] = grace
        with self.open(name, key) as vault:
            report = vault.gc(dry_run=dry_run, **options)
        if not dry_run:
            # Imported here: the other vault commands never load the catalog's models.
            from strongroom.catalog.maintenance import record_gc

            with self.context.catalog.session() as session:
                record_gc(session, name, at=self.context.now())
        return report

    def leases(self, name: str, key: KeyOptions | None = None) -> list[LeaseStatus]:
        """The vault's lease objects (backups, GC, repair) with holder, age and state."""
        with self.open(name, key) as vault:
            return vault.leases()

    def remove_stale_leases(self, name: str, key: KeyOptions | None = None) -> list[LeaseStatus]:
        """Remove the vault's stale and damaged lease objects; return what was removed."""
        with self.open(name, key) as vault:
            return vault.remove_stale_leases()

    def repair_index(self, name: str, key: KeyOptions | None = None) -> RepairReport:
        """Rebuild the vault's index from its pack headers."""
        with self.open(name, key) as vault:
            return vault.repair_index()

    def describe(self, name: str, key: KeyOptions | None = None) -> VaultDescription:
        """What the vault holds: format, settings, keys, points, index size, damage."""
        with self.open(name, key) as vault:
            return vault.describe()

    def list_keys(self, name: str, key: KeyOptions | None = None) -> list[KeyInfo]:
        """The wrappings of the vault's master key."""
        with self.open(name, key) as vault:
            return vault.list_keys()

    def add_key(
        self, name: str, new_key: KeyOptions, *, label: str = "", key: KeyOptions | None = None
    ) -> str:
        """Wrap the master key with another passphrase or key file; return the key id."""
        setting = new_key.setting()
        if setting is None:
            raise ConfigError("give the new key as --new-passphrase-env VAR or --new-key-file F")
        try:
            new_provider = key_provider(setting, create_key_file=True)
            with self.open(name, key) as vault:
                key_id = vault.add_key(new_provider, label=label)
        except StrongroomError as error:
            self._refused("vault.key.add", name, error)
            raise
        self._audit("vault.key.add", name, {"key_id": key_id, "label": label})
        return key_id

    def remove_key(self, name: str, key_id: str, key: KeyOptions | None = None) -> None:
        """Remove one wrapping (never the last one)."""
        try:
            with self.open(name, key) as vault:
                vault.remove_key(key_id)
        except StrongroomError as error:
            self._refused("vault.key.remove", name, error, {"key_id": key_id})
            raise
        self._audit("vault.key.remove", name, {"key_id": key_id})

    def rotate_data_key(self, name: str, key: KeyOptions | None = None) -> int:
        """Start a new data-key generation for new recovery points; return its number."""
        try:
            with self.open(name, key) as vault:
                generation = vault.rotate_data_key()
        except StrongroomError as error:
            self._refused("vault.key.rotate", name, error)
            raise
        self._audit("vault.key.rotate", name, {"generation": generation})
        return generation

    # The audit trail lives in the catalog, which the other vault commands never load (they
    # read it with the standard library, catalog/embedded.py): imported only when recording.
    def _audit(self, action: str, name: str, details: Mapping[str, Any]) -> None:
        from strongroom.services.audit.trail import record_alone

        record_alone(
            self.context, action=action, subject=name, outcome="succeeded", details=details
        )

    def _refused(
        self,
        action: str,
        name: str,
        error: StrongroomError,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        from strongroom.services.audit.trail import record_refusal

        record_refusal(self.context, action=action, subject=name, error=error, details=details)

    def copy_stream(
        self,
        name: str,
        point_id: str,
        stream: str | None,
        out: BinaryIO,
        key: KeyOptions | None = None,
    ) -> int:
        """Write one stream of a point to ``out``; return the bytes written.

        Without ``stream`` the point must hold exactly one stream. Every chunk is checked
        before its bytes are written; damage raises ``IntegrityError``.
        """
        with self.open(name, key) as vault:
            full_id = resolve_point_id(vault, point_id)
            with vault.reader(full_id) as reader:
                names = [record.name for record in reader.streams()]
                if stream is None:
                    if len(names) != 1:
                        raise ConfigError(
                            f"recovery point {full_id[:12]} holds {len(names)} streams; "
                            "choose one with --stream",
                            hint="Streams: " + ", ".join(names[:20]),
                        )
                    stream = names[0]
                return reader.copy_stream(stream, out)


def _remember_derivation(
    cache_dir: Path,
    name: str,
    setting: PassphraseKey | KeyFileKey | EnvKey,
    key_id: str,
    wrappings: Wrappings | None,
) -> None:
    """Keep a hint so the next command on vault ``name`` starts its passphrase derivation
    before anything else (see ``strongroom.keys.derive``): the parameters of the wrapping
    that opened it and the environment variable of the passphrase, never a secret."""
    if not isinstance(setting, PassphraseKey) or wrappings is None:
        return
    opened = next((w for w in wrappings[0] if w.key_id == key_id), None)
    if opened is not None:
        variable = setting.passphrase.removeprefix("env:")
        env = variable if variable != setting.passphrase else None
        remember(cache_dir, name, opened.document.kdf.model_dump(mode="json"), env)


def resolve_point_id(vault: Vault, point_id: str) -> str:
    """Return the full id for a full id or a unique prefix (at least 6 characters)."""
    ids = vault.point_ids()
    if point_id in ids:
        return point_id
    matches = [candidate for candidate in ids if candidate.startswith(point_id)]
    if len(point_id) >= 6 and len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise ConfigError(f"recovery point prefix {point_id!r} is ambiguous")
    raise NotFoundError(f"no recovery point {point_id!r} in this vault")
