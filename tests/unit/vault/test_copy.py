"""Copying a recovery point to another vault: same bytes under the destination's keys,
deduplicated there, the source untouched, nothing committed on any failure."""

from __future__ import annotations

from datetime import timedelta

import pytest

from strongroom.errors import BusyError, ConfigError, IntegrityError, NotFoundError
from strongroom.keys import PassphraseProvider
from strongroom.storage.memory import MemoryStore
from strongroom.vault import Vault
from strongroom.vault.copy import COPY_OF_KEY, copy_point
from strongroom.vault.format import DATA_PREFIX, MANIFESTS_PREFIX

from .conftest import VaultFactory, abandoned_lease, backup, restore, sample_data

DATA_A = sample_data(400_000, seed=201)
DATA_B = sample_data(250_000, seed=202)


def _objects(vault: Vault) -> dict[str, bytes]:
    store = vault.store
    assert isinstance(store, MemoryStore)
    return {info.name: store.get(info.name) for info in store.list("")}


def _manifests(vault: Vault) -> list[str]:
    return [info.name for info in vault.store.list(MANIFESTS_PREFIX)]


def _pair(make_vault: VaultFactory) -> tuple[Vault, Vault]:
    source = make_vault()
    destination = make_vault(provider=PassphraseProvider("another passphrase for the DR"))
    return source, destination


def test_a_copy_restores_the_same_bytes_under_the_destination_keys(
    make_vault: VaultFactory,
) -> None:
    source, destination = _pair(make_vault)
    point_id = backup(
        source, {"a": DATA_A, "b": DATA_B, "empty": b""}, metadata={"rows": 3}, tags={"k": "v"}
    )
    before = _objects(source)
    outcome = copy_point(
        source, point_id, destination, tags={"k": "v", "copy": "yes"}, link={"vault": "main"}
    )
    assert restore(destination, outcome.point.id) == {"a": DATA_A, "b": DATA_B, "empty": b""}
    assert outcome.point.id != point_id
    assert outcome.point.tags == {"k": "v", "copy": "yes"}
    assert outcome.point.metadata["rows"] == 3
    assert outcome.point.metadata[COPY_OF_KEY] == {
        "vault": "main",
        "point_id": point_id,
        "vault_id": source.vault_id,
        "created": source.point(point_id).manifest.created,
    }
    assert outcome.bytes_copied == len(DATA_A) + len(DATA_B)
    assert _objects(source) == before  # the source is only read
    # Nothing in the destination can be opened with the source's keys.
    source_packs = {name for name in before if name.startswith(DATA_PREFIX)}
    assert not source_packs & set(_objects(destination))
    assert destination.verify(read_data=True).ok


def test_a_second_copy_deduplicates_against_the_destination(make_vault: VaultFactory) -> None:
    source, destination = _pair(make_vault)
    first = copy_point(source, backup(source, {"a": DATA_A}), destination, tags={}, link={})
    second = copy_point(
        source, backup(source, {"a": DATA_A, "b": DATA_B}), destination, tags={}, link={}
    )
    assert first.stats.new_stored_size > 0
    # Only the new stream's data is stored again.
    assert second.stats.new_stored_size < first.stats.new_stored_size
    assert restore(destination, second.point.id) == {"a": DATA_A, "b": DATA_B}


def test_damaged_source_data_commits_nothing_and_names_the_pack(
    make_vault: VaultFactory,
) -> None:
    source, destination = _pair(make_vault)
    point_id = backup(source, {"a": DATA_A})
    store = source.store
    assert isinstance(store, MemoryStore)
    pack = next(info.name for info in store.list(DATA_PREFIX))
    data = bytearray(store.get(pack))
    data[len(data) // 2] ^= 0x01
    store.put(pack, bytes(data))
    with pytest.raises(IntegrityError) as raised:
        copy_point(source, point_id, destination, tags={}, link={})
    assert point_id in raised.value.message
    assert "'a'" in raised.value.message
    assert _manifests(destination) == []
    assert destination.points() == []


def test_a_missing_pack_commits_nothing_and_names_it(make_vault: VaultFactory) -> None:
    source, destination = _pair(make_vault)
    point_id = backup(source, {"a": DATA_A})
    pack = next(info.name for info in source.store.list(DATA_PREFIX))
    source.store.delete(pack)
    with pytest.raises(IntegrityError, match=pack.rsplit("/", 1)[-1][:16]):
        copy_point(source, point_id, destination, tags={}, link={})
    assert _manifests(destination) == []


def test_a_missing_source_point(make_vault: VaultFactory) -> None:
    source, destination = _pair(make_vault)
    with pytest.raises(NotFoundError):
        copy_point(source, "ab" * 32, destination, tags={}, link={})
    assert _manifests(destination) == []


def test_a_copy_into_the_same_vault_is_refused(make_vault: VaultFactory) -> None:
    source = make_vault()
    point_id = backup(source, {"a": b"x"})
    with pytest.raises(ConfigError, match="same vault"):
        copy_point(source, point_id, source, tags={}, link={})
    assert len(_manifests(source)) == 1


def test_a_destination_held_by_gc_refuses_the_copy(make_vault: VaultFactory) -> None:
    source, destination = _pair(make_vault)
    point_id = backup(source, {"a": DATA_A})
    abandoned_lease(destination.vault_leases(), "exclusive", "gc")
    with pytest.raises(BusyError) as raised:
        copy_point(source, point_id, destination, tags={}, link={})
    assert raised.value.retryable
    assert _manifests(destination) == []


def test_a_cancelled_copy_commits_nothing_and_gc_removes_its_packs(
    make_vault: VaultFactory,
) -> None:
    source, destination = _pair(make_vault)
    point_id = backup(source, {"a": DATA_A, "b": DATA_B})
    calls = 0

    class Stop(Exception):
        pass

    def check() -> None:
        nonlocal calls
        calls += 1
        if calls > 20:
            raise Stop

    with pytest.raises(Stop):
        copy_point(source, point_id, destination, tags={}, link={}, check=check)
    assert _manifests(destination) == []
    destination.gc(grace=timedelta(0))
    assert [info.name for info in destination.store.list(DATA_PREFIX)] == []
