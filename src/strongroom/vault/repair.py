"""Index repair: rebuild every index fragment from the pack headers alone.

Under the exclusive vault lease: read each pack's header with ranged gets
(:func:`~strongroom.vault.pack.read_pack_header`), write new fragments listing every
readable pack, and only then delete the fragments that were there before. A crash at any
point leaves the old fragments, the new ones, or both (a chunk listed twice is fine,
docs/vault-format.md §9), never a vault with less index than before.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from strongroom.errors import IntegrityError, NotFoundError, UnsupportedError
from strongroom.logs import get_logger
from strongroom.storage.base import BlobStore
from strongroom.vault.crypto import GenerationKeys
from strongroom.vault.format import DATA_PREFIX, INDEX_PREFIX, index_name, pack_digest, sha_suffix
from strongroom.vault.index import FRAGMENT_MAX_CHUNKS, IndexedPack, seal_fragment
from strongroom.vault.pack import read_pack_header

if TYPE_CHECKING:
    from strongroom.vault.leases import HeldLease
    from strongroom.vault.parts import VaultParts

HEADER_THREADS: Final = 4
_log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class RepairReport:
    """What :meth:`Vault.repair_index` did.

    ``unreadable_packs``: packs whose header could not be read (name -> reason); their
    chunks are not in the new index, so points using them show as damaged in verify.
    ``packs_lost``: packs the old index listed that are no longer in the store.
    """

    packs_indexed: int
    chunks_indexed: int
    fragments_written: int
    fragments_removed: int
    unreadable_packs: dict[str, str]
    packs_lost: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """True when every pack in the store could be indexed and none went missing."""
        return not self.unreadable_packs and not self.packs_lost


@dataclass(slots=True)
class FragmentWriter:
    """Collects pack blocks into index fragments of at most 65 536 chunks and puts them.

    Blocks are added only for packs that exist, so every fragment it writes lists
    existing packs only.
    """

    store: BlobStore
    keys: GenerationKeys
    written: list[str] = field(default_factory=list)
    _blocks: list[bytes] = field(default_factory=list)
    _chunks: int = 0

    def add(self, pack: IndexedPack) -> None:
        """Add one pack; puts a fragment once it lists enough chunks."""
        self.add_block(pack.to_bytes(), len(pack.entries))

    def add_block(self, block: bytes, chunks: int) -> None:
        """Add one serialised pack block listing ``chunks`` chunks."""
        if self._blocks and self._chunks + chunks > FRAGMENT_MAX_CHUNKS:
            self.flush()
        self._blocks.append(block)
        self._chunks += chunks

    def flush(self) -> None:
        """Put the fragment being filled, if any. Raises store errors."""
        if not self._blocks:
            return
        blob = seal_fragment(self._blocks, self.keys.generation, self.keys.data_key)
        name = index_name(hashlib.sha256(blob).hexdigest())
        self.store.put(name, blob)
        self.written.append(name)
        self._blocks, self._chunks = [], 0


def repair_index(vault: VaultParts, held: HeldLease) -> RepairReport:
    """Rebuild ``vault``'s index from its packs; ``held`` is the exclusive lease.

    Raises store errors (nothing is deleted before every new fragment is written) and
    ``ConflictError`` if the lease is lost.
    """
    store = vault.store
    vault.sync_index()
    old_fragments = [
        info.name for info in store.list(INDEX_PREFIX) if sha_suffix(info.name, INDEX_PREFIX)
    ]
    old_packs = {pack.name for pack in vault.index.packs()}
    # List packs after fragments: every pack a listed fragment names is then listed too.
    sizes = {info.name: info.size for info in store.list(DATA_PREFIX) if pack_digest(info.name)}
    writer = FragmentWriter(store, vault.keyring.current())
    unreadable: dict[str, str] = {}
    chunks = packs = 0

    def read(name: str) -> IndexedPack | str | None:
        try:
            header = read_pack_header(store, name, vault.keyring.data_key)
        except NotFoundError:
            return None
        except (IntegrityError, UnsupportedError) as exc:
            return str(exc)
        digest = bytes.fromhex(pack_digest(name) or "")
        return IndexedPack(digest, header.salt, header.generation, sizes[name], header.entries)

    names = sorted(sizes)
    with ThreadPoolExecutor(max_workers=HEADER_THREADS, thread_name_prefix="repair") as pool:
        for start in range(0, len(names), 4 * HEADER_THREADS):
            batch = names[start : start + 4 * HEADER_THREADS]
            for name, result in zip(batch, pool.map(read, batch), strict=True):
                if isinstance(result, str):
                    unreadable[name] = result
                    _log.warning("repair: pack %s is unreadable: %s", name, result)
                elif result is not None:
                    writer.add(result)
                    packs += 1
                    chunks += len(result.entries)
            held.ensure_fresh()
    writer.flush()
    held.confirm()  # renewed, and no writer slipped in: only now delete
    new = set(writer.written)
    removed = 0
    for name in old_fragments:
        if name not in new:
            held.ensure_fresh()
            store.delete(name)
            removed += 1
    vault.sync_index()
    lost = tuple(sorted(old_packs - set(sizes)))
    _log.info(
        "repaired the index: %d packs, %d chunks in %d fragments; %d unreadable, %d lost",
        packs,
        chunks,
        len(writer.written),
        len(unreadable),
        len(lost),
    )
    return RepairReport(
        packs_indexed=packs,
        chunks_indexed=chunks,
        fragments_written=len(writer.written),
        fragments_removed=removed,
        unreadable_packs=unreadable,
        packs_lost=lost,
    )
