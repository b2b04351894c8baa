"""Every sealed object a vault stores refuses every single-bit flip and every truncation.

The parser tests (``test_parsers.py``) show that garbage never gives another exception
than the expected ones; this shows the stronger property the format promises: no damage
of this kind is ever accepted. Each object is small, so every bit is flipped and every
proper prefix is tried, exhaustively. The objects: a pack (its header and every chunk it
holds), an index fragment, a manifest, a data-key generation, the vault config and a
wrapping of the master key by a passphrase.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator

import pytest

from strongroom.errors import IntegrityError, UnsupportedError, WrongKeyError
from strongroom.keys import parse_wrapping, passphrase_material, wrap_master_key
from strongroom.vault.config import VaultConfig, VaultSettings, parse_config
from strongroom.vault.crypto import GenerationKeys
from strongroom.vault.index import IndexedPack, open_fragment, seal_fragment
from strongroom.vault.keyring import decode_generation, encode_generation
from strongroom.vault.manifest import (
    Manifest,
    PointStats,
    StreamRecord,
    decode_manifest,
    encode_manifest,
)
from strongroom.vault.pack import PackBuilder, parse_pack
from tests.support.vault import FAST_KDF

from .conftest import open_pack

KEYS = GenerationKeys(1, secrets.token_bytes(32), secrets.token_bytes(32))
MASTER = secrets.token_bytes(32)
VAULT_ID = "0123456789abcdef0123456789abcdef"
PASSPHRASE = passphrase_material("correct horse battery staple")
REFUSED = (IntegrityError, UnsupportedError, WrongKeyError)

Opener = Callable[[bytes], object]


def data_key(generation: int) -> bytes:
    if generation != KEYS.generation:
        raise IntegrityError(f"no generation {generation}")
    return KEYS.data_key


def make_pack() -> bytes:
    builder = PackBuilder(KEYS)
    for number, data in enumerate([b"a" * 40, secrets.token_bytes(30), b""]):
        builder.add(KEYS.chunk_id(data), data, 0, len(data))
        assert number < 3
    return builder.seal().data


PACK = make_pack()
FRAGMENT = seal_fragment(
    [
        IndexedPack(b"\x01" * 32, b"\x02" * 32, 1, len(PACK), entries).to_bytes()
        for entries in [parse_pack(PACK, data_key, "pack").entries]
    ],
    KEYS.generation,
    KEYS.data_key,
)
MANIFEST = encode_manifest(
    Manifest(
        created="2025-01-01T00:00:00+00:00",
        key_generation=KEYS.generation,
        tags={"a": "b"},
        metadata={"x": 1},
        streams=[
            StreamRecord(
                name="s", size=5, hash="0" * 64, chunk_count=1, chunks=["1" * 64], chunk_lists=None
            )
        ],
        stats=PointStats(
            logical_size=5, stored_size=21, new_stored_size=21, chunk_count=1, new_chunk_count=1
        ),
    ),
    KEYS.data_key,
)
GENERATION = encode_generation(KEYS, MASTER, VAULT_ID)
CONFIG = VaultConfig.new(VaultSettings(), MASTER).to_bytes()
WRAPPING = wrap_master_key(MASTER, PASSPHRASE, vault_id=VAULT_ID, kdf=FAST_KDF).to_bytes()


def open_config(blob: bytes) -> object:
    config = parse_config(blob)
    config.check_mac(MASTER)
    return config


def open_wrapping(blob: bytes) -> bytes:
    return parse_wrapping(blob).unwrap(PASSPHRASE)


SEALED: dict[str, tuple[bytes, Opener]] = {
    "pack": (PACK, lambda blob: open_pack(blob, data_key, KEYS)),
    "index fragment": (FRAGMENT, lambda blob: open_fragment(blob, data_key, "index")),
    "manifest": (MANIFEST, lambda blob: decode_manifest(blob, data_key, "manifest")),
    "data-key generation": (
        GENERATION,
        lambda blob: decode_generation(blob, KEYS.generation, MASTER, VAULT_ID),
    ),
    "vault config": (CONFIG, open_config),
    "master-key wrapping": (WRAPPING, open_wrapping),
}


def bit_flips(valid: bytes) -> Iterator[tuple[int, bytes]]:
    """Yield (bit number, ``valid`` with that one bit flipped) for every bit."""
    damaged = bytearray(valid)
    for bit in range(8 * len(valid)):
        damaged[bit // 8] ^= 1 << (bit % 8)
        yield bit, bytes(damaged)
        damaged[bit // 8] ^= 1 << (bit % 8)


def accepted(opener: Opener, blob: bytes) -> bool:
    """Return True if ``opener`` takes ``blob``; False if it refuses it with a typed error.

    Any other exception propagates (and fails the test).
    """
    try:
        opener(blob)
    except REFUSED:
        return False
    return True


@pytest.mark.parametrize("kind", SEALED)
def test_the_intact_object_opens(kind: str) -> None:
    valid, opener = SEALED[kind]
    assert accepted(opener, valid)


@pytest.mark.parametrize("kind", SEALED)
def test_every_bit_flip_is_refused(kind: str) -> None:
    valid, opener = SEALED[kind]
    taken = [bit for bit, damaged in bit_flips(valid) if accepted(opener, damaged)]
    assert taken == [], f"{kind} of {len(valid)} bytes opened with bits {taken} flipped"


@pytest.mark.parametrize("kind", SEALED)
def test_every_truncation_is_refused(kind: str) -> None:
    valid, opener = SEALED[kind]
    taken = [length for length in range(len(valid)) if accepted(opener, valid[:length])]
    assert taken == [], f"{kind} of {len(valid)} bytes opened cut to {taken} bytes"
