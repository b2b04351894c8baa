"""Opening a vault in its store, or creating it there: the one place that decides which.

``apply`` (a declared vault), ``vault create`` and the lifecycle's separate-store cold
tier all open the vault at a URL with a key and, when the store holds no vault yet,
create it with the settings its configuration declares.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from strongroom.config.secrets import resolve_secret
from strongroom.config.vaults import S3Options, VaultConfig
from strongroom.errors import NotFoundError
from strongroom.storage.open import open_store
from strongroom.vault.config import VaultSettings

if TYPE_CHECKING:
    from pathlib import Path

    from strongroom.keys.providers import KeyProvider
    from strongroom.storage.base import BlobStore
    from strongroom.storage.s3 import S3Connection, WriteRetention
    from strongroom.vault import Vault


def s3_connection(options: S3Options | None) -> S3Connection:
    """Return the S3 connection settings of a vault, its credential references resolved.

    Unset options give AWS defaults and the standard credential chain. Raises
    ``SecretError`` naming a reference that does not resolve.
    """
    from strongroom.storage.s3 import S3Connection  # boto3 loads only for an S3 vault

    if options is None:
        return S3Connection()
    return S3Connection(
        endpoint_url=options.endpoint_url,
        region=options.region,
        access_key_id=resolve_secret(options.access_key_id) if options.access_key_id else None,
        secret_access_key=(
            resolve_secret(options.secret_access_key) if options.secret_access_key else None
        ),
        addressing_style=options.addressing_style,
        server_side_encryption=options.server_side_encryption,
        sse_kms_key_id=options.sse_kms_key_id,
        concurrency=options.concurrency,
    )


def open_vault_store(
    url: str,
    options: S3Options | None = None,
    *,
    retention: WriteRetention | None = None,
    storage_class: str | None = None,
) -> BlobStore:
    """Open the blob store at ``url``; an ``s3://`` one is reached with ``options``,
    writes its packs and manifests with the Object Lock ``retention`` given and its packs
    in ``storage_class``.

    Raises what :func:`~strongroom.storage.open.open_store` raises, and ``SecretError``
    for a credential reference that does not resolve.
    """
    if urlsplit(url).scheme.lower() == "s3":
        connection = dataclasses.replace(
            s3_connection(options), retention=retention, storage_class=storage_class
        )
        return open_store(url, s3=connection)
    return open_store(url)


def engine_settings(config: VaultConfig) -> VaultSettings:
    """Translate a vault's configuration into the vault engine's creation settings."""
    return VaultSettings(
        chunk_min_size=config.chunking.min_size_bytes,
        chunk_avg_size=config.chunking.average_size_bytes,
        chunk_max_size=config.chunking.max_size_bytes,
        compression=config.compression.algorithm,
        compression_level=config.compression.level,
        pack_target_size=config.pack_size_bytes,
    )


def open_or_create_vault(
    store: BlobStore,
    provider: KeyProvider,
    config: VaultConfig,
    *,
    cache_dir: Path,
    label: str,
    create: bool = True,
) -> tuple[Vault, bool]:
    """Open the vault in ``store`` with ``provider``; create it there when absent.

    Returns the open vault (the caller closes it) and whether it was created. A new vault
    gets ``config``'s chunking, compression and pack settings and ``label`` on its first
    key. Raises NotFoundError when the store holds no vault and ``create`` is false, and
    what opening a vault raises (``WrongKeyError`` for a key that does not open it …).
    """
    from strongroom.vault import Vault  # the vault engine loads only when a vault is opened

    try:
        return Vault.open(store, provider, cache_dir=cache_dir), False
    except NotFoundError:
        if not create:
            raise
    vault = Vault.create(store, provider, engine_settings(config), label=label, cache_dir=cache_dir)
    return vault, True
