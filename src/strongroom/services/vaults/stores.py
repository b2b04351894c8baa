"""Opening a vault in its store, or creating it there: the one place that decides which.

``apply`` (a declared vault), ``vault create`` and the lifecycle's separate-store cold
tier all open the vault at a URL with a key and, when the store holds no vault yet,
create it with the settings its configuration declares.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from strongroom.config.vaults import VaultConfig
from strongroom.errors import NotFoundError
from strongroom.vault.config import VaultSettings

if TYPE_CHECKING:
    from pathlib import Path

    from strongroom.keys.providers import KeyProvider
    from strongroom.storage.base import BlobStore
    from strongroom.vault import Vault


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
