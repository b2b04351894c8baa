"""Property: flip any bit of any stored object; every restore then either returns the
original bytes or raises IntegrityError, and verify --read-data reports damage."""

from __future__ import annotations

import tempfile
from functools import cache
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strongroom.errors import IntegrityError, WrongKeyError
from strongroom.keys import PassphraseProvider
from strongroom.storage.memory import MemoryStore
from strongroom.vault import Vault

from .conftest import FAST_KDF, PASSPHRASE, SMALL, backup, sample_data

STREAMS = {"a": sample_data(150_000, seed=1), "b": sample_data(2_000, seed=2), "e": b""}
MORE = {"long": sample_data(600_000, seed=3)}


@cache
def _original() -> tuple[dict[str, bytes], tuple[str, ...]]:
    store = MemoryStore()
    with Vault.create(store, PassphraseProvider(PASSPHRASE), SMALL, kdf=FAST_KDF) as vault:
        first = backup(vault, STREAMS)
        vault.rotate_data_key()
        second = backup(vault, MORE)
    blobs = {info.name: store.get(info.name) for info in store.list()}
    return blobs, (first, second)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_bit_flip_is_caught(data: st.DataObject) -> None:
    blobs, point_ids = _original()
    name = data.draw(st.sampled_from(sorted(blobs)))
    bit = data.draw(st.integers(0, 8 * len(blobs[name]) - 1))
    store = MemoryStore()
    for blob_name, blob in blobs.items():
        if blob_name == name:
            damaged = bytearray(blob)
            damaged[bit // 8] ^= 1 << (bit % 8)
            blob = bytes(damaged)
        store.put(blob_name, blob)
    expected = dict(zip(point_ids, (STREAMS, MORE), strict=True))
    with tempfile.TemporaryDirectory() as cache_dir:
        try:
            vault = Vault.open(store, PassphraseProvider(PASSPHRASE), cache_dir=Path(cache_dir))
        except (IntegrityError, WrongKeyError):
            assert name == "config" or name.startswith("keys/")
            return
        with vault:
            failures = 0
            for point_id, streams in expected.items():
                for stream, original in streams.items():
                    try:
                        with vault.reader(point_id) as reader:
                            restored = reader.read_stream(stream)
                    except IntegrityError:
                        failures += 1
                        continue
                    assert restored == original
            report = vault.verify(read_data=True)
            assert not report.ok, f"flip in {name} bit {bit} went unreported"
            reported = {item.point_id for item in report.damaged}
            if failures:
                assert reported
