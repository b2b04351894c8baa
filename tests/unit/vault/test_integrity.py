"""Integrity under adversity (issue #12): verify trusts no cache, a backup never succeeds
over a missing or damaged pack, and a rotation cannot be rolled back. Each test runs on
the in-memory, local and faulty stores, and damages objects through the store as an
operator (or an attacker) with store access would."""

from __future__ import annotations

import gc
from collections.abc import Callable
from logging import WARNING
from pathlib import Path

import pytest

from strongroom.errors import ConfigError, InsufficientStorageError, IntegrityError, WrongKeyError
from strongroom.keys import PassphraseProvider
from strongroom.storage.base import BlobStore
from strongroom.storage.faulty import FaultyStore
from strongroom.storage.local import LocalStore
from strongroom.storage.memory import MemoryStore
from strongroom.vault import Vault
from strongroom.vault.index import open_fragment

from .conftest import FAST_KDF, PASSPHRASE, SMALL, VaultFactory, backup, restore, sample_data

DATA_A = sample_data(300_000, seed=201)
DATA_B = sample_data(200_000, seed=202)


@pytest.fixture(params=["memory", "local", "faulty"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "local":
        return LocalStore(tmp_path / "vault")
    if request.param == "faulty":
        return FaultyStore(MemoryStore())
    return MemoryStore()


def _rewrite(store: BlobStore, name: str, change: Callable[[bytes], bytes]) -> None:
    data = change(store.get(name))
    store.delete(name)
    store.put(name, data)


def _flip(position: int) -> Callable[[bytes], bytes]:
    def change(data: bytes) -> bytes:
        damaged = bytearray(data)
        damaged[position % len(damaged)] ^= 0x01
        return bytes(damaged)

    return change


def _fragment_of(vault: Vault, chunk_pack: str) -> str:
    """The index fragment that lists pack ``chunk_pack``."""
    store, keyring = vault.store, vault.parts.keyring
    for info in store.list("index/"):
        for pack in open_fragment(store.get(info.name), keyring.data_key, info.name):
            if pack.digest.hex() in chunk_pack:
                return info.name
    raise AssertionError(f"no fragment lists {chunk_pack}")


def _pack_of(vault: Vault, point_id: str, stream: str) -> str:
    with vault.reader(point_id) as reader:
        chunk_id = next(iter(reader.chunk_ids(reader.stream(stream))))
    location = vault.parts.index.locate(chunk_id)
    assert location is not None
    return location.pack_name


FRAGMENT_DAMAGE: dict[str, Callable[[bytes], bytes]] = {
    "flip in the header": _flip(10),
    "flip in the salt": _flip(30),
    "flip in the ciphertext": _flip(60),
    "flip in the tag": _flip(-1),
    "truncated": lambda data: data[: len(data) // 2],
    "extended": lambda data: data + b"\x00",
    "emptied": lambda data: b"",
}


@pytest.mark.parametrize("damage", [*FRAGMENT_DAMAGE, "replaced by another fragment", "deleted"])
def test_verify_finds_fragment_damage_on_the_machine_that_wrote_it(
    make_vault: VaultFactory, any_store: BlobStore, damage: str
) -> None:
    vault = make_vault(any_store)
    a = backup(vault, {"a": DATA_A})
    b = backup(vault, {"b": DATA_B})
    victim = _fragment_of(vault, _pack_of(vault, a, "a"))
    if damage == "deleted":
        any_store.delete(victim)
    elif damage == "replaced by another fragment":
        other = _fragment_of(vault, _pack_of(vault, b, "b"))
        assert other != victim
        _rewrite(any_store, victim, lambda _: any_store.get(other))
    else:
        _rewrite(any_store, victim, FRAGMENT_DAMAGE[damage])
    for read_data in (False, True):
        report = vault.verify(read_data=read_data)
        assert not report.ok
        assert a in report.damaged_points(), (damage, read_data)
        assert b not in report.damaged_points()
        if damage != "deleted":
            assert victim in {problem.object_name for problem in report.problems}


def test_verify_read_data_reads_every_fragment_every_time(
    make_vault: VaultFactory, any_store: BlobStore
) -> None:
    vault = make_vault(any_store)
    a = backup(vault, {"a": DATA_A})
    assert vault.verify(read_data=True).ok
    victim = _fragment_of(vault, _pack_of(vault, a, "a"))
    _rewrite(any_store, victim, _flip(60))
    assert not vault.verify(read_data=True).ok
    assert not vault.verify(read_data=True).ok  # and again: nothing was cached as good


def test_a_fragment_verify_found_damaged_is_no_longer_trusted_for_deduplication(
    make_vault: VaultFactory, any_store: BlobStore
) -> None:
    vault = make_vault(any_store)
    a = backup(vault, {"a": DATA_A})
    victim = _fragment_of(vault, _pack_of(vault, a, "a"))
    _rewrite(any_store, victim, _flip(60))
    assert not vault.verify().ok
    again = backup(vault, {"a": DATA_A})
    other = make_vault(any_store, create=False)  # another machine: no cache
    assert restore(other, again) == {"a": DATA_A}


@pytest.mark.parametrize("damage", ["deleted", "truncated", "extended"])
def test_a_backup_stores_again_what_a_missing_or_damaged_pack_held(
    make_vault: VaultFactory, any_store: BlobStore, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    vault = make_vault(any_store)
    a = backup(vault, {"a": DATA_A})
    pack = _pack_of(vault, a, "a")
    if damage == "deleted":
        any_store.delete(pack)
    elif damage == "truncated":
        _rewrite(any_store, pack, lambda data: data[:-100])
    else:
        _rewrite(any_store, pack, lambda data: data + b"x")
    again = backup(vault, {"a": DATA_A})
    assert pack in caplog.text
    assert vault.point(again).stats.new_chunk_count > 0
    assert restore(vault, again) == {"a": DATA_A}
    other = make_vault(any_store, create=False)  # another machine: no cache
    assert restore(other, again) == {"a": DATA_A}
    report = other.verify(read_data=True)
    assert again not in report.damaged_points()


def test_a_reused_stream_whose_pack_is_gone_is_not_reused(
    make_vault: VaultFactory, any_store: BlobStore
) -> None:
    vault = make_vault(any_store)
    with vault.writer() as writer:
        writer.add_stream("a", [DATA_A])
        reference = writer.stream_reference("a")
        a = writer.commit()
    assert reference is not None
    any_store.delete(_pack_of(vault, a, "a"))
    with vault.writer() as writer:
        assert not writer.reuse("a", reference)
        writer.add_stream("a", [DATA_A])
        again = writer.commit()
    assert restore(make_vault(any_store, create=False), again) == {"a": DATA_A}


def test_a_restore_on_another_machine_finds_chunks_stored_again(
    make_vault: VaultFactory, any_store: BlobStore
) -> None:
    """After a backup re-stored the chunks of a deleted pack, the old point that used
    them restores again too, on any machine."""
    vault = make_vault(any_store)
    a = backup(vault, {"a": DATA_A})
    any_store.delete(_pack_of(vault, a, "a"))
    backup(vault, {"a": DATA_A})
    assert restore(make_vault(any_store, create=False), a) == {"a": DATA_A}
    assert restore(vault, a) == {"a": DATA_A}


@pytest.mark.parametrize("inner", ["memory", "local"])
def test_a_disk_full_backup_reports_one_error_and_no_warning(
    make_vault: VaultFactory, tmp_path: Path, inner: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = FaultyStore(MemoryStore() if inner == "memory" else LocalStore(tmp_path / "vault"))
    vault = make_vault(store)
    kept = backup(vault, {"kept": DATA_B})
    store.fill_after(100_000)
    caplog.clear()
    with pytest.raises(InsufficientStorageError):
        backup(vault, {"big": sample_data(1_000_000, seed=203)})
    assert [record.getMessage() for record in caplog.records if record.levelno >= WARNING] == []
    assert restore(vault, kept) == {"kept": DATA_B}


def test_a_stream_dropped_without_close_is_reported(
    make_vault: VaultFactory, any_store: BlobStore, caplog: pytest.LogCaptureFixture
) -> None:
    vault = make_vault(any_store)
    with vault.writer() as writer:
        writer.open_stream("forgotten").write(b"x")
        gc.collect()
        with pytest.raises(ConfigError, match="abandoned"):
            writer.commit()
    assert "'forgotten' was dropped without close()" in caplog.text


def test_a_damaged_key_wrapping_is_not_called_only_a_wrong_passphrase(
    make_vault: VaultFactory, any_store: BlobStore
) -> None:
    vault = make_vault(any_store)
    (name,) = [info.name for info in any_store.list("keys/")]
    position = any_store.get(name).index(b'"wrapped_key":"') + 20

    def other_base64_letter(data: bytes) -> bytes:  # still parses: only the AEAD tag fails
        letter = b"B" if data[position : position + 1] == b"A" else b"A"
        return data[:position] + letter + data[position + 1 :]

    _rewrite(any_store, name, other_base64_letter)
    with pytest.raises(WrongKeyError) as raised:
        Vault.open(any_store, PassphraseProvider(PASSPHRASE))
    assert "wrong passphrase or damaged key wrapping" in str(raised.value)
    assert "another of its keys" in (raised.value.hint or "")
    vault.close()


def _generation_objects(store: BlobStore, prefix: str, number: int) -> list[str]:
    return [
        info.name for info in store.list(prefix) if info.name.startswith(f"{prefix}{number:08d}-")
    ]


def test_a_deleted_newest_data_key_is_an_integrity_error_not_a_fallback(
    make_vault: VaultFactory, any_store: BlobStore
) -> None:
    vault = make_vault(any_store)
    old = backup(vault, {"a": DATA_A})
    assert vault.rotate_data_key() == 2
    (newest,) = _generation_objects(any_store, "datakeys/", 2)
    any_store.delete(newest)
    other = make_vault(any_store, create=False)  # another machine
    with pytest.raises(IntegrityError, match="generation 2"):
        other.writer()
    assert newest in other.describe().damaged_objects
    report = other.verify()
    assert not report.ok
    assert newest in {problem.object_name for problem in report.problems}
    assert restore(other, old) == {"a": DATA_A}  # older points stay readable


def test_a_rolled_back_rotation_is_noticed_by_a_client_that_saw_it(
    any_store: BlobStore, tmp_path: Path
) -> None:
    """Deleting the newest data key *and* the key state that records it leaves a vault
    that looks unrotated; a client that saw the rotation still refuses to write."""
    provider = PassphraseProvider(PASSPHRASE)
    cache = tmp_path / "cache"
    with Vault.create(any_store, provider, SMALL, kdf=FAST_KDF, cache_dir=cache) as vault:
        vault.rotate_data_key()
    for prefix in ("datakeys/", "keystate/"):
        for name in _generation_objects(any_store, prefix, 2):
            any_store.delete(name)
    with (
        Vault.open(any_store, provider, cache_dir=cache) as vault,
        pytest.raises(IntegrityError, match="saw it before"),
    ):
        vault.writer()
    with Vault.open(any_store, provider, cache_dir=tmp_path / "elsewhere") as vault:
        vault.writer().abort()  # a client that never saw it cannot tell (docs §6)


def test_a_vault_without_key_state_opens_and_writes(
    make_vault: VaultFactory, any_store: BlobStore
) -> None:
    """Vaults written before key states existed have no ``keystate/`` objects."""
    vault = make_vault(any_store)
    point = backup(vault, {"a": DATA_A})
    for info in list(any_store.list("keystate/")):
        any_store.delete(info.name)
    other = make_vault(any_store, create=False)
    assert other.describe().damaged_objects == {}
    assert restore(other, backup(other, {"b": DATA_B})) == {"b": DATA_B}
    assert other.rotate_data_key() == 2
    assert other.verify().ok
    assert restore(other, point) == {"a": DATA_A}


def test_a_missing_older_generation_and_a_damaged_key_state_are_reported(
    make_vault: VaultFactory, any_store: BlobStore
) -> None:
    vault = make_vault(any_store)
    vault.rotate_data_key()
    vault.rotate_data_key()
    (middle,) = _generation_objects(any_store, "datakeys/", 2)
    (state,) = _generation_objects(any_store, "keystate/", 3)
    any_store.delete(middle)
    _rewrite(any_store, state, _flip(60))
    other = make_vault(any_store, create=False)
    damaged = other.describe().damaged_objects
    assert middle in damaged and state in damaged
    backup(other, {"c": b"written under generation 3"})


def test_verify_reads_the_key_objects_again(make_vault: VaultFactory, any_store: BlobStore) -> None:
    """A data-key object deleted or damaged after the vault was opened is found by the
    next verify of that same open vault (nothing is taken from memory)."""
    vault = make_vault(any_store)
    vault.rotate_data_key()
    assert vault.verify().ok
    (first,) = _generation_objects(any_store, "datakeys/", 1)
    (newest,) = _generation_objects(any_store, "datakeys/", 2)
    _rewrite(any_store, first, _flip(70))
    any_store.delete(newest)
    named = {problem.object_name for problem in vault.verify().problems}
    assert {first, newest} <= named
