"""Every parser of stored bytes gives IntegrityError (or UnsupportedError) on garbage:
never another exception, never a hang. A sealed object (pack, index fragment, manifest,
data-key generation, config) refuses every mutation drawn here; the plaintext parsers
inside them may take what they are given. ``test_sealed_objects.py`` flips every bit
and tries every truncation of each sealed object."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.errors import IntegrityError, UnsupportedError
from strongroom.vault.config import VaultConfig, VaultSettings, parse_config
from strongroom.vault.crypto import GenerationKeys, open_sealed, seal
from strongroom.vault.format import MAGIC_MANIFEST, ObjectHeader
from strongroom.vault.index import (
    IndexedPack,
    encode_fragment,
    open_fragment,
    parse_fragment,
    seal_fragment,
)
from strongroom.vault.keyring import decode_generation, encode_generation
from strongroom.vault.manifest import (
    Manifest,
    PointStats,
    StreamRecord,
    decode_manifest,
    encode_manifest,
    parse_chunk_list,
    parse_manifest_json,
)
from strongroom.vault.pack import (
    PackBuilder,
    PackKeys,
    open_chunk,
    parse_header_plaintext,
    parse_pack,
)

from .conftest import open_pack

KEYS = GenerationKeys(1, secrets.token_bytes(32), secrets.token_bytes(32))
MASTER = secrets.token_bytes(32)
EXPECTED = (IntegrityError, UnsupportedError)
EXAMPLES = settings(max_examples=200, deadline=None)


def _data_key(generation: int) -> bytes:
    if generation != 1:
        raise IntegrityError(f"no generation {generation}")
    return KEYS.data_key


def _pack() -> bytes:
    builder = PackBuilder(KEYS)
    for number in range(3):
        data = bytes([number]) * (100 + number)
        builder.add(KEYS.chunk_id(data), data, 0, len(data))
    return builder.seal().data


PACK = _pack()
PACK_HEADER = parse_pack(PACK, _data_key, "pack")
FRAGMENT = seal_fragment(
    [IndexedPack(b"\x01" * 32, b"\x02" * 32, 1, len(PACK), PACK_HEADER.entries).to_bytes()],
    1,
    KEYS.data_key,
)
MANIFEST = encode_manifest(
    Manifest(
        created="2025-01-01T00:00:00+00:00",
        key_generation=1,
        tags={"a": "b"},
        metadata={"x": [1, 2, {"y": None}]},
        streams=[
            StreamRecord(
                name="s", size=5, hash="0" * 64, chunk_count=1, chunks=["1" * 64], chunk_lists=None
            )
        ],
        stats=PointStats(
            logical_size=5, stored_size=21, new_stored_size=100, chunk_count=1, new_chunk_count=1
        ),
    ),
    KEYS.data_key,
)
CONFIG = VaultConfig.new(VaultSettings(), MASTER).to_bytes()
VAULT_ID = "0123456789abcdef0123456789abcdef"
GENERATION = encode_generation(KEYS, MASTER, VAULT_ID)


def _mutations(valid: bytes) -> st.SearchStrategy[bytes]:
    flips = st.tuples(st.integers(0, len(valid) - 1), st.integers(1, 255)).map(
        lambda change: (
            valid[: change[0]] + bytes([valid[change[0]] ^ change[1]]) + valid[change[0] + 1 :]
        )
    )
    cuts = st.integers(0, len(valid) - 1).map(lambda cut: valid[:cut])
    extended = st.binary(min_size=1, max_size=64).map(lambda tail: valid + tail)
    return st.one_of(flips, cuts, extended, st.binary(max_size=4 * len(valid)))


def _rejects(parse: Callable[[bytes], object], data: bytes) -> None:
    """A plaintext parser: it may take ``data``, or refuse it with an expected error."""
    with contextlib.suppress(*EXPECTED):
        parse(data)


def _refuses(parse: Callable[[bytes], object], data: bytes) -> None:
    """A sealed object's opener: it must refuse ``data`` with an expected error."""
    with pytest.raises(EXPECTED):
        parse(data)


@EXAMPLES
@given(_mutations(PACK))
def test_pack_parser(data: bytes) -> None:
    _refuses(lambda blob: open_pack(blob, _data_key, KEYS), data)


@EXAMPLES
@given(st.binary(max_size=400))
def test_pack_header_plaintext_parser(data: bytes) -> None:
    _rejects(lambda blob: parse_header_plaintext(blob, 44, "pack"), data)


@EXAMPLES
@given(st.binary(max_size=300), st.sampled_from(PACK_HEADER.entries))
def test_chunk_opener(data: bytes, entry: object) -> None:
    aead = PackKeys(_data_key).aead(1, PACK_HEADER.salt)
    _rejects(lambda blob: open_chunk(aead, entry, blob, KEYS, "chunk"), data)  # type: ignore[arg-type]


@EXAMPLES
@given(_mutations(FRAGMENT))
def test_index_fragment_parser(data: bytes) -> None:
    _refuses(lambda blob: open_fragment(blob, _data_key, "index"), data)


@EXAMPLES
@given(st.one_of(st.binary(max_size=600), _mutations(encode_fragment([]))))
def test_index_fragment_payload_parser(data: bytes) -> None:
    _rejects(lambda blob: parse_fragment(blob, "index"), data)


@EXAMPLES
@given(_mutations(MANIFEST))
def test_manifest_parser(data: bytes) -> None:
    _refuses(lambda blob: decode_manifest(blob, _data_key, "manifest"), data)


_, MANIFEST_JSON = open_sealed(MANIFEST, MAGIC_MANIFEST, _data_key, "manifest")


@EXAMPLES
@given(st.one_of(_mutations(MANIFEST_JSON), st.binary(max_size=200)))
def test_manifest_json_parser(data: bytes) -> None:
    _rejects(lambda blob: parse_manifest_json(blob, "manifest"), data)


@given(st.integers(1, 100_000))
@settings(max_examples=20, deadline=None)
def test_manifest_json_parser_deep_nesting(depth: int) -> None:
    _rejects(lambda blob: parse_manifest_json(blob, "manifest"), b"[" * depth + b"]" * depth)
    _rejects(lambda blob: parse_manifest_json(blob, "manifest"), b'{"metadata":' * depth)


@EXAMPLES
@given(_mutations(CONFIG))
def test_config_parser(data: bytes) -> None:
    def parse(blob: bytes) -> None:
        parse_config(blob).check_mac(MASTER)

    _refuses(parse, data)


@pytest.mark.parametrize("tail", [b" ", b"\t", b"\r", b"\n"])
def test_config_with_added_whitespace_is_refused(tail: bytes) -> None:
    with pytest.raises(IntegrityError, match="exact form"):
        parse_config(CONFIG + tail)
    with pytest.raises(IntegrityError, match="exact form"):
        parse_config(tail + CONFIG)


@EXAMPLES
@given(_mutations(GENERATION))
def test_generation_parser(data: bytes) -> None:
    _refuses(lambda blob: decode_generation(blob, 1, MASTER, VAULT_ID), data)


@EXAMPLES
@given(st.binary(max_size=300))
def test_chunk_list_parser(data: bytes) -> None:
    _rejects(lambda blob: parse_chunk_list(blob, "list"), data)


@EXAMPLES
@given(st.binary(max_size=100), st.sampled_from([b"SRPK", b"SRIX", b"SRMF", b"SRDK"]))
def test_object_header_parser(data: bytes, magic: bytes) -> None:
    _rejects(lambda blob: ObjectHeader.parse(blob, magic, "object"), data)


def test_valid_objects_parse() -> None:
    assert len(PACK_HEADER.entries) == 3
    assert len(open_fragment(FRAGMENT, _data_key, "index")) == 1
    assert decode_manifest(MANIFEST, _data_key, "manifest").streams[0].name == "s"
    parse_config(CONFIG).check_mac(MASTER)
    assert decode_generation(GENERATION, 1, MASTER, VAULT_ID).id_key == KEYS.id_key
    sealed = seal(MAGIC_MANIFEST, 1, KEYS.data_key, b"payload", compress_level=None)
    assert open_sealed(sealed, MAGIC_MANIFEST, _data_key, "x")[1] == b"payload"
