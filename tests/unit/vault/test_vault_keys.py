"""Opening with keys, key management and data-key rotation."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest

from strongroom.errors import (
    ConfigError,
    ConflictError,
    IntegrityError,
    NotFoundError,
    WrongKeyError,
)
from strongroom.keys import (
    KeyFileProvider,
    PassphraseProvider,
    StaticKeyProvider,
    canonical_json,
    write_key_file,
)
from strongroom.storage.memory import MemoryStore
from strongroom.vault import Vault

from .conftest import FAST_KDF, PASSPHRASE, SMALL, VaultFactory, backup, restore, sample_data


def _snapshot(store: MemoryStore) -> dict[str, bytes]:
    return {info.name: store.get(info.name) for info in store.list()}


def test_wrong_passphrase_writes_nothing(make_vault: VaultFactory, tmp_path: Path) -> None:
    vault = make_vault()
    backup(vault, {"a": b"data"})
    store = vault.store
    assert isinstance(store, MemoryStore)
    before = _snapshot(store)
    cache = tmp_path / "wrong-cache"
    with pytest.raises(WrongKeyError):
        Vault.open(store, PassphraseProvider("wrong"), cache_dir=cache)
    with pytest.raises(WrongKeyError):
        Vault.open(store, StaticKeyProvider(secrets.token_bytes(32)), cache_dir=cache)
    assert _snapshot(store) == before
    assert not cache.exists()


def test_a_prefetched_unlock_opens_only_with_the_right_key(
    make_vault: VaultFactory, tmp_path: Path
) -> None:
    from strongroom.vault.keyring import prefetch_master_key

    vault = make_vault()
    point_id = backup(vault, {"a": b"data"})
    store = vault.store

    prefetch_master_key(store, PassphraseProvider("wrong").material())
    with pytest.raises(WrongKeyError):
        Vault.open(store, PassphraseProvider("wrong"), cache_dir=tmp_path / "wrong")
    prefetch_master_key(store, PassphraseProvider(PASSPHRASE).material())
    with Vault.open(store, PassphraseProvider(PASSPHRASE), cache_dir=tmp_path / "c") as opened:
        assert restore(opened, point_id) == {"a": b"data"}
    prefetch_master_key(MemoryStore(), PassphraseProvider(PASSPHRASE).material())  # no vault
    with pytest.raises(NotFoundError):
        Vault.open(MemoryStore(), PassphraseProvider(PASSPHRASE))


def test_open_without_vault_and_create_twice(make_vault: VaultFactory) -> None:
    with pytest.raises(NotFoundError):
        Vault.open(MemoryStore(), PassphraseProvider(PASSPHRASE))
    vault = make_vault()
    with pytest.raises(ConflictError):
        Vault.create(vault.store, PassphraseProvider(PASSPHRASE), SMALL, kdf=FAST_KDF)


def test_add_and_remove_keys(make_vault: VaultFactory, tmp_path: Path) -> None:
    vault = make_vault()
    data = sample_data(100_000)
    point_id = backup(vault, {"a": data})
    packs_before = {info.name for info in vault.store.list("data/")}
    key_file = tmp_path / "key"
    write_key_file(key_file)
    file_key = vault.add_key(KeyFileProvider(key_file), label="robot")
    second = vault.add_key(PassphraseProvider("second"), label="backup admin", kdf=FAST_KDF)
    assert {info.label for info in vault.list_keys()} == {"", "robot", "backup admin"}
    assert {info.name for info in vault.store.list("data/")} == packs_before

    by_file = make_vault(vault.store, provider=KeyFileProvider(key_file), create=False)
    assert by_file.key_id == file_key
    assert restore(by_file, point_id) == {"a": data}

    vault.remove_key(vault.key_id)
    with pytest.raises(WrongKeyError):
        Vault.open(vault.store, PassphraseProvider(PASSPHRASE))
    reopened = make_vault(vault.store, provider=PassphraseProvider("second"), create=False)
    assert reopened.key_id == second
    assert restore(reopened, point_id) == {"a": data}
    reopened.remove_key(file_key)
    with pytest.raises(ConfigError, match="last key"):
        reopened.remove_key(second)
    with pytest.raises(NotFoundError):
        reopened.remove_key("0000000000000000")


def test_rotation_keeps_old_points_readable(make_vault: VaultFactory) -> None:
    vault = make_vault()
    data = sample_data(300_000, seed=21)
    old_id = backup(vault, {"a": data})
    assert vault.rotate_data_key() == 2
    new_id = backup(vault, {"a": data})
    old, new = vault.point(old_id), vault.point(new_id)
    assert (old.key_generation, new.key_generation) == (1, 2)
    assert new.stats.new_stored_size > 0  # a new generation never reuses old chunks
    with vault.reader(old_id) as reader:
        old_ids = set(reader.chunk_ids(reader.stream("a")))
    with vault.reader(new_id) as reader:
        new_ids = set(reader.chunk_ids(reader.stream("a")))
    assert not old_ids & new_ids
    other = make_vault(vault.store, create=False)
    assert restore(other, old_id) == restore(other, new_id) == {"a": data}
    assert other.describe().key_generations == (1, 2)
    third_id = backup(other, {"a": data})
    assert other.point(third_id).stats.new_stored_size == 0


def test_tampered_config_is_detected(make_vault: VaultFactory) -> None:
    vault = make_vault()
    store = vault.store
    document = json.loads(store.get("config"))
    document["compression"]["level"] = 19
    # Written in the canonical form, so that only the MAC can tell.
    store.put("config", canonical_json(document))
    with pytest.raises(IntegrityError, match="MAC"):
        Vault.open(store, PassphraseProvider(PASSPHRASE))


def test_describe(make_vault: VaultFactory) -> None:
    vault = make_vault()
    backup(vault, {"a": sample_data(50_000)})
    description = vault.describe()
    assert description.vault_id == vault.vault_id
    assert description.points == 1 and description.index_chunks > 0
    assert description.created.tzinfo is not None
    assert description.damaged_objects == {}
    assert [key.kind for key in description.keys] == ["passphrase"]
