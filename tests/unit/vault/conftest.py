"""Fixtures for vault tests: small chunks and packs, a fast KDF, memory stores."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from strongroom.keys import KeyProvider, PassphraseProvider
from strongroom.storage.base import BlobStore
from strongroom.storage.memory import MemoryStore
from strongroom.vault import Vault, VaultSettings, WriterOptions
from strongroom.vault.crypto import GenerationKeys
from strongroom.vault.leases import HeldLease, LeaseKind, VaultLeases
from strongroom.vault.pack import PackKeys, open_chunk, parse_pack
from tests.support.vault import FAST_KDF, PASSPHRASE, SMALL

OPTIONS = WriterOptions(workers=2, uploads=2)

VaultFactory = Callable[..., Vault]


def sample_data(size: int, seed: int = 0) -> bytes:
    """Return ``size`` bytes mixing random and compressible runs (deterministic)."""
    rng = random.Random(seed)
    pieces: list[bytes] = []
    total = 0
    while total < size:
        length = rng.randint(1, 20_000)
        if rng.random() < 0.5:
            piece = rng.randbytes(length)
        else:
            word = rng.randbytes(rng.randint(1, 40))
            piece = (word * (length // len(word) + 1))[:length]
        pieces.append(piece)
        total += length
    return b"".join(pieces)[:size]


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def provider() -> PassphraseProvider:
    return PassphraseProvider(PASSPHRASE)


@pytest.fixture
def make_vault(tmp_path: Path) -> Iterator[VaultFactory]:
    opened: list[Vault] = []
    counter = iter(range(1_000_000))

    def factory(
        store: BlobStore | None = None,
        *,
        settings: VaultSettings = SMALL,
        provider: KeyProvider | None = None,
        create: bool = True,
    ) -> Vault:
        store = store if store is not None else MemoryStore()
        provider = provider or PassphraseProvider(PASSPHRASE)
        cache = tmp_path / f"cache-{next(counter)}"
        if create:
            vault = Vault.create(store, provider, settings, kdf=FAST_KDF, cache_dir=cache)
        else:
            vault = Vault.open(store, provider, cache_dir=cache)
        opened.append(vault)
        return vault

    yield factory
    for vault in opened:
        vault.close()


def backup(vault: Vault, streams: dict[str, bytes], **commit: object) -> str:
    """Write ``streams`` as one recovery point; returns its id."""
    with vault.writer(OPTIONS) as writer:
        for name, data in streams.items():
            with writer.open_stream(name) as stream:
                stream.write(data)
        return writer.commit(**commit)  # type: ignore[arg-type]


def restore(vault: Vault, point_id: str) -> dict[str, bytes]:
    """Read every stream of a point back."""
    with vault.reader(point_id) as reader:
        return {record.name: reader.read_stream(record.name) for record in reader.streams()}


def open_pack(
    blob: bytes, data_key_of: Callable[[int], bytes], keys: GenerationKeys
) -> list[bytes]:
    """Open a pack as a reader does: its header, then every chunk the header lists; return
    the chunks' plaintexts. Raises what ``parse_pack`` and ``open_chunk`` raise."""
    header = parse_pack(blob, data_key_of, "pack")
    aead = PackKeys(data_key_of).aead(header.generation, header.salt)
    return [
        open_chunk(aead, entry, blob[entry.offset : entry.offset + entry.stored_length], keys, "c")
        for entry in header.entries
    ]


def abandoned_lease(leases: VaultLeases, kind: LeaseKind, purpose: str = "backup") -> HeldLease:
    """Write one lease object whose holder then 'dies': never renewed, never released."""
    held = HeldLease(leases, kind, purpose)
    held.holding.name = held.write()
    return held
