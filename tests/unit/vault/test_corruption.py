"""Damaged objects of every kind are detected by reads and by verify, and named exactly;
recovery points that do not depend on them stay restorable."""

from __future__ import annotations

import hashlib
import secrets

import pytest

from strongroom.errors import IntegrityError, WrongKeyError
from strongroom.keys import PassphraseProvider
from strongroom.storage.faulty import FaultyStore
from strongroom.storage.memory import MemoryStore
from strongroom.vault import Vault
from strongroom.vault.index import IndexedPack, open_fragment, seal_fragment
from strongroom.vault.pack import read_pack_header

from .conftest import FAST_KDF, PASSPHRASE, VaultFactory, backup, restore, sample_data

DATA_A = sample_data(300_000, seed=101)
DATA_B = sample_data(300_000, seed=102)


def _flip(store: MemoryStore, name: str, position: int) -> None:
    data = bytearray(store.get(name))
    data[position % len(data)] ^= 0x10
    store.put(name, bytes(data))


def _truncate(store: MemoryStore, name: str, keep: int) -> None:
    store.put(name, store.get(name)[:keep])


def _two_points(make_vault: VaultFactory) -> tuple[Vault, MemoryStore, str, str]:
    vault = make_vault()
    store = vault.store
    assert isinstance(store, MemoryStore)
    return vault, store, backup(vault, {"a": DATA_A}), backup(vault, {"b": DATA_B, "c": b"c"})


def _first_chunk(vault: Vault, point_id: str, stream: str) -> tuple[str, int]:
    with vault.reader(point_id) as reader:
        chunk_id = next(iter(reader.chunk_ids(reader.stream(stream))))
    location = vault.parts.index.locate(chunk_id)
    assert location is not None
    return location.pack_name, location.entry.offset


def _fresh(vault: Vault, make_vault: VaultFactory) -> Vault:
    """The same vault opened with an empty cache (as another machine would)."""
    return make_vault(vault.store, create=False)


def _read_fails(vault: Vault, point_id: str, stream: str) -> None:
    with vault.reader(point_id) as reader, pytest.raises(IntegrityError):
        reader.read_stream(stream)


def test_bit_flip_in_a_chunk(make_vault: VaultFactory) -> None:
    vault, store, a, b = _two_points(make_vault)
    pack, offset = _first_chunk(vault, a, "a")
    _flip(store, pack, offset + 20)
    _read_fails(vault, a, "a")
    assert restore(vault, b) == {"b": DATA_B, "c": b"c"}
    assert vault.verify().ok  # structure is intact; only reading data shows it
    report = vault.verify(read_data=True)
    assert not report.ok
    assert report.damaged_points() == {a: ["a"]}
    assert any(problem.object_name == pack for problem in report.problems)


def test_truncated_pack(make_vault: VaultFactory) -> None:
    vault, store, a, b = _two_points(make_vault)
    pack, _ = _first_chunk(vault, a, "a")
    _truncate(store, pack, 100)
    _read_fails(vault, a, "a")
    report = vault.verify()
    assert report.damaged_points() == {a: ["a"]}
    assert restore(vault, b)["b"] == DATA_B


def test_missing_pack(make_vault: VaultFactory) -> None:
    vault, store, a, b = _two_points(make_vault)
    pack, _ = _first_chunk(vault, b, "b")
    store.delete(pack)
    _read_fails(vault, b, "b")
    report = vault.verify(read_data=True)
    assert report.damaged_points() == {b: ["b"]}
    assert restore(vault, a) == {"a": DATA_A}


def test_bit_flip_in_a_pack_header(make_vault: VaultFactory) -> None:
    vault, store, a, _ = _two_points(make_vault)
    pack, _ = _first_chunk(vault, a, "a")
    _flip(store, pack, -20)  # inside the encrypted header
    report = vault.verify(read_data=True)
    assert report.damaged_points() == {a: ["a"]}
    assert any("header" in problem.message for problem in report.problems)


def test_bit_flip_in_transit_is_caught() -> None:
    inner = MemoryStore()
    with Vault.create(inner, PassphraseProvider(PASSPHRASE), kdf=FAST_KDF) as vault:
        point_id = backup(vault, {"a": DATA_A})
    faulty = FaultyStore(inner)
    pack = next(info.name for info in inner.list("data/"))
    faulty.corrupt(pack, bit=8 * 200)
    with Vault.open(faulty, PassphraseProvider(PASSPHRASE)) as vault:
        _read_fails(vault, point_id, "a")


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete"])
def test_damaged_index_fragment(make_vault: VaultFactory, damage: str) -> None:
    vault, store, a, b = _two_points(make_vault)
    fragments = sorted(vault.parts.index.known_fragments())
    assert len(fragments) == 2
    pack_a, _ = _first_chunk(vault, a, "a")
    victim = next(
        name
        for name in fragments
        if store.get(name) and _fragment_lists(make_vault, vault, name, pack_a)
    )
    if damage == "flip":
        _flip(store, victim, 100)
    elif damage == "truncate":
        _truncate(store, victim, 50)
    else:
        store.delete(victim)
    other = _fresh(vault, make_vault)
    if damage != "delete":
        assert victim in other.damaged_fragments
    _read_fails(other, a, "a")
    assert restore(other, b) == {"b": DATA_B, "c": b"c"}
    report = other.verify()
    assert report.damaged_points() == {a: ["a"]}
    if damage != "delete":
        assert victim in {problem.object_name for problem in report.problems}
        assert victim in other.describe().damaged_objects


def _fragment_lists(make_vault: VaultFactory, vault: Vault, fragment: str, pack: str) -> bool:
    packs = open_fragment(vault.store.get(fragment), vault.parts.keyring.data_key, fragment)
    return any(f"data/{p.digest.hex()[:2]}/{p.digest.hex()}" == pack for p in packs)


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_damaged_manifest(make_vault: VaultFactory, damage: str) -> None:
    vault, store, a, b = _two_points(make_vault)
    name = f"manifests/{b}"
    if damage == "flip":
        _flip(store, name, 60)
    else:
        _truncate(store, name, 30)
    with pytest.raises(IntegrityError):
        vault.point(b)
    assert [point.id for point in vault.points()] == [a]
    report = vault.verify()
    assert report.damaged_points() == {b: [None]}
    assert restore(vault, a) == {"a": DATA_A}


def test_damaged_list_chunk(make_vault: VaultFactory) -> None:
    vault = make_vault()
    store = vault.store
    assert isinstance(store, MemoryStore)
    long_data = sample_data(2_000_000, seed=103)
    point_id = backup(vault, {"long": long_data, "short": b"s"})
    record = vault.point(point_id).streams[0]
    assert record.chunk_lists
    location = vault.parts.index.locate(bytes.fromhex(record.chunk_lists[0]))
    assert location is not None
    _flip(store, location.pack_name, location.entry.offset + 5)
    _read_fails(vault, point_id, "long")
    report = vault.verify()
    assert report.damaged_points() == {point_id: ["long"]}
    one_point = vault.verify(read_data=True, point_ids=[point_id])  # reads the list's pack
    assert one_point.damaged_points() == {point_id: ["long"]}
    assert any(problem.object_name == location.pack_name for problem in one_point.problems)


def test_damaged_key_generation(make_vault: VaultFactory) -> None:
    vault, store, a, _ = _two_points(make_vault)
    vault.rotate_data_key()
    c = backup(vault, {"new": b"after rotation"})
    first_generation = vault.parts.keyring.object_name(1)
    _flip(store, first_generation, 70)
    other = _fresh(vault, make_vault)
    with pytest.raises(IntegrityError):
        other.reader(a)
    assert restore(other, c) == {"new": b"after rotation"}
    report = other.verify()
    assert first_generation in {problem.object_name for problem in report.problems}
    assert set(report.damaged_points()) >= {a}
    assert c not in report.damaged_points()


def test_damaged_newest_generation_stops_writers(make_vault: VaultFactory) -> None:
    vault = make_vault()
    vault.rotate_data_key()
    assert isinstance(vault.store, MemoryStore)
    _truncate(vault.store, vault.parts.keyring.object_name(2), 10)
    other = _fresh(vault, make_vault)
    with pytest.raises(IntegrityError, match="generation 2"):
        other.writer()


def test_damaged_key_objects(make_vault: VaultFactory) -> None:
    vault = make_vault()
    store = vault.store
    assert isinstance(store, MemoryStore)
    point_id = backup(vault, {"a": b"x"})
    (only_key,) = [info.name for info in store.list("keys/")]
    second = vault.add_key(PassphraseProvider("second"), kdf=FAST_KDF)
    _truncate(store, only_key, 40)
    other = make_vault(store, provider=PassphraseProvider("second"), create=False)
    assert restore(other, point_id) == {"a": b"x"}
    assert only_key in {problem.object_name for problem in other.verify().problems}
    store.delete(f"keys/{second}")
    with pytest.raises(IntegrityError):
        Vault.open(store, PassphraseProvider(PASSPHRASE))


def test_bit_flip_in_the_wrapped_key_looks_like_a_wrong_key(make_vault: VaultFactory) -> None:
    vault = make_vault()
    store = vault.store
    assert isinstance(store, MemoryStore)
    (name,) = [info.name for info in store.list("keys/")]
    data = store.get(name)
    position = data.index(b'"wrapped_key":"') + 20
    _flip(store, name, position)
    with pytest.raises((WrongKeyError, IntegrityError)):
        Vault.open(store, PassphraseProvider(PASSPHRASE))


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_damaged_config(make_vault: VaultFactory, damage: str) -> None:
    vault = make_vault()
    assert isinstance(vault.store, MemoryStore)
    if damage == "flip":
        _flip(vault.store, "config", 30)
    else:
        _truncate(vault.store, "config", 25)
    with pytest.raises(IntegrityError):
        Vault.open(vault.store, PassphraseProvider(PASSPHRASE))


def test_sampled_verify_reads_a_share_of_packs(make_vault: VaultFactory) -> None:
    vault, _, _, _ = _two_points(make_vault)
    packs = vault.describe().index_packs
    report = vault.verify(subset_percent=50, seed=1)
    assert report.ok
    assert report.packs_checked == -(-packs // 2)
    assert vault.verify(read_data=True).packs_checked == packs


def test_index_that_disagrees_with_a_pack_header(make_vault: VaultFactory) -> None:
    vault = make_vault()
    store = vault.store
    data = sample_data(100_000, seed=104)
    backup(vault, {"a": data})
    pack_name = next(info.name for info in store.list("data/"))
    header = read_pack_header(store, pack_name, vault.parts.keyring.data_key)
    forged = list(header.entries)
    lost = forged[0]
    forged[0] = type(lost)(
        secrets.token_bytes(32), lost.offset, lost.stored_length, lost.raw_length, lost.flags
    )
    digest = bytes.fromhex(pack_name.rsplit("/", 1)[1])
    block = IndexedPack(digest, header.salt, 1, store.stat(pack_name).size, tuple(forged))
    keys = vault.parts.keyring.get(1)
    blob = seal_fragment([block.to_bytes()], 1, keys.data_key)
    for info in list(store.list("index/")):
        store.delete(info.name)
    store.put(f"index/{hashlib.sha256(blob).hexdigest()}", blob)
    other = _fresh(vault, make_vault)
    report = other.verify(read_data=True)
    assert any("lacks" in problem.message for problem in report.problems)
    assert not report.ok


def test_verifying_one_point_reads_only_the_packs_it_uses(make_vault: VaultFactory) -> None:
    vault, store, a, b = _two_points(make_vault)
    packs_of_b = {
        location.pack_digest
        for chunk_id in _chunk_ids(vault, b)
        if (location := vault.parts.index.locate(chunk_id)) is not None
    }
    pack_a, offset = _first_chunk(vault, a, "a")
    assert bytes.fromhex(pack_a.rpartition("/")[2]) not in packs_of_b
    _flip(store, pack_a, offset + 20)

    only_b = vault.verify(read_data=True, point_ids=[b])
    assert only_b.ok  # b does not depend on the damaged pack, and it is not read
    assert only_b.packs_checked == len(packs_of_b) < vault.describe().index_packs
    only_a = vault.verify(read_data=True, point_ids=[a])
    assert only_a.damaged_points() == {a: ["a"]}
    assert any(problem.object_name == pack_a for problem in only_a.problems)


def _chunk_ids(vault: Vault, point_id: str) -> list[bytes]:
    with vault.reader(point_id) as reader:
        return [chunk_id for record in reader.streams() for chunk_id in reader.chunk_ids(record)]
