"""Which packs the index names are missing from the store, or of the wrong size.

One listing of ``data/`` answers it for every pack. Writers ask before they deduplicate
(a chunk in a lost pack must be stored again, docs/vault-format.md §14), readers when a
pack they expected is gone, and verify always.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from strongroom.storage.base import BlobStore
from strongroom.vault.cache import CachedPack
from strongroom.vault.format import DATA_PREFIX, pack_digest


@dataclass(slots=True)
class PackPresence:
    """The outcome of :func:`check_presence`."""

    lost: dict[bytes, str] = field(default_factory=dict)
    """Packs the index names that are missing or of another size: digest -> reason."""
    intact: list[bytes] = field(default_factory=list)
    """Packs the index names that are there with the size it records."""
    unindexed: int = 0
    """Packs in the store that the index does not name (left by interrupted writers)."""
    foreign: list[str] = field(default_factory=list)
    """Objects under ``data/`` whose name is not a pack's."""


def check_presence(store: BlobStore, packs: Iterable[CachedPack]) -> PackPresence:
    """List ``data/`` once and compare it with ``packs`` (which the caller took from an
    index synced *before* this call, so that every pack it names was put before the
    listing). Raises store errors."""
    stored: dict[bytes, int] = {}
    presence = PackPresence()
    for info in store.list(DATA_PREFIX):
        digest = pack_digest(info.name)
        if digest is None:
            presence.foreign.append(info.name)
            continue
        stored[bytes.fromhex(digest)] = info.size
    for pack in packs:
        size = stored.pop(pack.digest, None)
        if size is None:
            presence.lost[pack.digest] = "missing (the index lists it)"
        elif size != pack.size:
            presence.lost[pack.digest] = f"has {size} bytes, the index says {pack.size}"
        else:
            presence.intact.append(pack.digest)
    presence.unindexed = len(stored)
    return presence
