"""Vault operations for operators and scripts: create, back up, list, restore, verify, keys.

Vaults are registered in the catalog by name (URL, settings and the *reference* to their
key, never the key). Opening a vault uses the key options given, else the registered
reference. Each vault keeps its index cache under ``HOME/cache``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO

from strongroom.catalog.resources import get_vault, upsert_vault
from strongroom.errors import ConfigError, NotFoundError
from strongroom.keys.providers import KeyProvider
from strongroom.services.context import AppContext
from strongroom.services.keyref import KeyOptions, provider
from strongroom.storage.open import open_store
from strongroom.vault import (
    KeyInfo,
    RecoveryPoint,
    Vault,
    VaultDescription,
    VaultSettings,
    VerifyReport,
)

KEY_SETTING = "key"


@dataclass(frozen=True)
class RegisteredVault:
    """A vault as the catalog knows it."""

    name: str
    url: str
    key_reference: str | None
    settings: dict[str, Any]


class VaultService:
    """The operations of ``strongroom vault …`` on one application context."""

    def __init__(self, context: AppContext) -> None:
        self.context = context

    def registered(self, name: str) -> RegisteredVault:
        """Return the catalog's record of vault ``name``; raises ``NotFoundError``."""
        with self.context.catalog.session(readonly=True) as session:
            try:
                row = get_vault(session, name)
            except NotFoundError as error:
                raise NotFoundError(
                    f"no vault named {name!r}",
                    hint="Create it with 'strongroom vault create NAME --url URL ...'.",
                ) from error
            settings = dict(row.settings)
            return RegisteredVault(row.name, row.url, settings.get(KEY_SETTING), settings)

    def create(
        self, name: str, url: str, key: KeyOptions, settings: VaultSettings | None = None
    ) -> VaultDescription:
        """Create a vault at ``url`` and register it as ``name``.

        A ``--key-file`` that does not exist yet is generated. Raises ``ConfigError``
        without a key option, ``ConflictError`` if the name or the store is taken.
        """
        reference = key.reference()
        if reference is None:
            raise ConfigError(
                "a new vault needs a key: give --passphrase-env VAR or --key-file FILE"
            )
        with self.context.catalog.session(readonly=True) as session:
            try:
                get_vault(session, name)
            except NotFoundError:
                pass
            else:
                raise ConfigError(f"a vault named {name!r} is already registered")
        store = open_store(url)
        key_provider = provider(reference, create_key_file=True)
        with Vault.create(
            store, key_provider, settings, label="initial", cache_dir=self.context.cache_dir
        ) as vault:
            description = vault.describe()
        with self.context.catalog.session() as session:
            upsert_vault(
                session,
                name=name,
                url=url,
                at=self.context.now(),
                settings={
                    KEY_SETTING: reference,
                    "vault_id": description.vault_id,
                    **(settings.model_dump() if settings else {}),
                },
            )
        return description

    def key_provider(self, name: str, key: KeyOptions | None = None) -> KeyProvider:
        """Return the provider for vault ``name``: the options given, else the registered one."""
        reference = (key.reference() if key else None) or self.registered(name).key_reference
        if reference is None:
            raise ConfigError(
                f"vault {name!r} has no registered key; give --passphrase-env or --key-file"
            )
        return provider(reference)

    @contextmanager
    def open(self, name: str, key: KeyOptions | None = None) -> Iterator[Vault]:
        """Open vault ``name`` for the duration of the block."""
        registered = self.registered(name)
        key_provider = self.key_provider(name, key)
        with Vault.open(
            open_store(registered.url), key_provider, cache_dir=self.context.cache_dir
        ) as vault:
            yield vault

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
        """Check the vault (or one point): structure, or every byte, or a sample of packs."""
        with self.open(name, key) as vault:
            point_ids = [resolve_point_id(vault, point_id)] if point_id else None
            return vault.verify(
                read_data=read_data, subset_percent=subset_percent, point_ids=point_ids
            )

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
        reference = new_key.reference()
        if reference is None:
            raise ConfigError("give the new key as --new-passphrase-env VAR or --new-key-file F")
        new_provider = provider(reference, create_key_file=True)
        with self.open(name, key) as vault:
            return vault.add_key(new_provider, label=label)

    def remove_key(self, name: str, key_id: str, key: KeyOptions | None = None) -> None:
        """Remove one wrapping (never the last one)."""
        with self.open(name, key) as vault:
            vault.remove_key(key_id)

    def rotate_data_key(self, name: str, key: KeyOptions | None = None) -> int:
        """Start a new data-key generation for new recovery points; return its number."""
        with self.open(name, key) as vault:
            return vault.rotate_data_key()


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


def copy_stream(
    service: VaultService,
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
    with service.open(name, key) as vault:
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
            written = 0
            for piece in reader.iter_stream(stream):
                out.write(piece)
                written += len(piece)
            return written
