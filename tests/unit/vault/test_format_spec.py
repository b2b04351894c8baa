"""An independent reader written from docs/vault-format.md alone (no strongroom.vault
code): it must restore what strongroom wrote. If this test breaks, the format or the
page changed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import struct
import unicodedata

import blake3
import zstandard
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from strongroom.storage.memory import MemoryStore

from .conftest import PASSPHRASE, VaultFactory, backup, sample_data


def _hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


def _canonical(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _open_sealed(
    blob: bytes, magic: bytes, root_key: bytes, context: bytes = b""
) -> tuple[int, bytes]:
    found, version, cipher, flags, _, generation, salt = struct.unpack(">4sBBBBI32s", blob[:44])
    assert (found, version, cipher) == (magic, 1, 1)
    key = _hkdf(root_key, salt, b"strongroom v1 " + magic)
    payload = AESGCM(key).decrypt(bytes(12), blob[44:], blob[:44] + context)
    if flags & 1:
        payload = zstandard.ZstdDecompressor().decompress(payload)
    return generation, payload


def _spec_restore(store: MemoryStore, passphrase: str) -> dict[str, dict[str, bytes]]:
    config = json.loads(store.get("config"))
    material = unicodedata.normalize("NFC", passphrase).encode()
    master = None
    for info in store.list("keys/"):
        document = json.loads(store.get(info.name))
        kdf = document["kdf"]
        kek = Argon2id(
            salt=base64.b64decode(kdf["salt"]),
            length=32,
            iterations=kdf["iterations"],
            lanes=kdf["lanes"],
            memory_cost=kdf["memory_kib"],
        ).derive(material)
        aad = _canonical({k: v for k, v in document.items() if k != "wrapped_key"})
        master = AESGCM(kek).decrypt(bytes(12), base64.b64decode(document["wrapped_key"]), aad)
    assert master is not None
    mac_key = _hkdf(master, b"", b"strongroom v1 config mac")
    unsigned = {k: v for k, v in config.items() if k != "mac"}
    assert hmac.new(mac_key, _canonical(unsigned), hashlib.sha256).hexdigest() == config["mac"]

    generations = {}
    for info in store.list("datakeys/"):
        number, payload = _open_sealed(
            store.get(info.name), b"SRDK", master, info.name.encode("ascii")
        )
        document = json.loads(payload)
        generations[number] = (
            base64.b64decode(document["data_key"]),
            base64.b64decode(document["id_key"]),
        )

    index = {}
    for info in store.list("index/"):
        blob = store.get(info.name)
        assert hashlib.sha256(blob).hexdigest() == info.name.removeprefix("index/")
        generation = struct.unpack(">I", blob[8:12])[0]
        _, payload = _open_sealed(blob, b"SRIX", generations[generation][0])
        (count,) = struct.unpack_from(">I", payload)
        position = 4
        for _ in range(count):
            digest, salt, pack_generation, _, chunks = struct.unpack_from(
                ">32s32sIQI", payload, position
            )
            position += 80
            for _ in range(chunks):
                chunk_id, offset, stored, raw, flags = struct.unpack_from(
                    ">32sQIIB", payload, position
                )
                position += 49
                index[chunk_id] = (digest.hex(), salt, pack_generation, offset, stored, raw, flags)

    def chunk(chunk_id: bytes, id_key: bytes) -> bytes:
        digest, salt, generation, offset, stored, raw, flags = index[chunk_id]
        data_key = generations[generation][0]
        ciphertext = store.get(f"data/{digest[:2]}/{digest}", offset, stored)
        key = _hkdf(data_key, salt, b"strongroom v1 SRPK")
        aad = chunk_id + bytes([flags]) + raw.to_bytes(4, "big")
        payload = AESGCM(key).decrypt(offset.to_bytes(12, "big"), ciphertext, aad)
        plaintext = zstandard.ZstdDecompressor().decompress(payload) if flags & 1 else payload
        assert blake3.blake3(plaintext, key=id_key).digest() == chunk_id
        return plaintext

    points = {}
    for info in store.list("manifests/"):
        blob = store.get(info.name)
        point_id = info.name.removeprefix("manifests/")
        assert hashlib.sha256(blob).hexdigest() == point_id
        generation = struct.unpack(">I", blob[8:12])[0]
        data_key, id_key = generations[generation]
        _, payload = _open_sealed(blob, b"SRMF", data_key)
        manifest = json.loads(payload)
        stream_key = blake3.blake3(id_key, derive_key_context="strongroom v1 stream hash").digest()
        streams = {}
        for record in manifest["streams"]:
            if record["chunks"] is not None:
                ids = [bytes.fromhex(value) for value in record["chunks"]]
            else:
                ids = []
                for list_id in record["chunk_lists"]:
                    listing = chunk(bytes.fromhex(list_id), id_key)
                    ids += [listing[start : start + 32] for start in range(0, len(listing), 32)]
            data = b"".join(chunk(chunk_id, id_key) for chunk_id in ids)
            assert len(data) == record["size"]
            assert blake3.blake3(data, key=stream_key).hexdigest() == record["hash"]
            streams[record["name"]] = data
        points[point_id] = streams
    return points


def test_spec_reader_restores_what_strongroom_wrote(make_vault: VaultFactory) -> None:
    vault = make_vault()
    first = {"a": sample_data(120_000, seed=1), "empty": b""}
    second = {"long": sample_data(800_000, seed=2)}
    first_id = backup(vault, first)
    vault.rotate_data_key()
    second_id = backup(vault, second)
    store = vault.store
    assert isinstance(store, MemoryStore)
    assert _spec_restore(store, PASSPHRASE) == {first_id: first, second_id: second}


def test_pack_layout_matches_the_spec(make_vault: VaultFactory) -> None:
    vault = make_vault()
    backup(vault, {"a": sample_data(100_000)})
    generation_keys = vault.parts.keyring.get(1)
    for info in vault.store.list("data/"):
        pack = vault.store.get(info.name)
        assert info.name == f"data/{info.name[5:7]}/{hashlib.sha256(pack).hexdigest()}"
        magic, version, cipher, flags, reserved, generation, salt = struct.unpack(
            ">4sBBBBI32s", pack[:44]
        )
        assert (magic, version, cipher, flags, reserved, generation) == (b"SRPK", 1, 1, 0, 0, 1)
        length, end = struct.unpack(">I4s", pack[-8:])
        assert end == b"SRPE"
        start = len(pack) - 8 - length
        key = _hkdf(generation_keys.data_key, salt, b"strongroom v1 SRPK")
        header = AESGCM(key).decrypt(b"\xff" * 12, pack[start:-8], pack[:44])
        assert header[:8] == b"SRPH\x01\x00\x00\x00"
        (count,) = struct.unpack(">I", header[8:12])
        assert len(header) == 12 + 49 * count
        entries = [struct.unpack_from(">32sQIIB", header, 12 + 49 * n) for n in range(count)]
        assert entries[0][1] == 44
        assert entries[-1][1] + entries[-1][2] == start
