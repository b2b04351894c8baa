"""Deduplication: unchanged data is not stored twice, changed data costs little."""

from __future__ import annotations

import random

from .conftest import VaultFactory, backup, restore, sample_data


def test_second_backup_of_same_data_stores_no_new_chunks(make_vault: VaultFactory) -> None:
    vault = make_vault()
    data = sample_data(2_000_000, seed=11)
    first = vault.point(backup(vault, {"db": data}))
    second_id = backup(vault, {"db": data})
    second = vault.point(second_id)
    assert first.stats.new_stored_size > 0
    assert second.stats.new_chunk_count == 0
    assert second.stats.new_stored_size == 0
    assert second.stats.stored_size == first.stats.stored_size
    assert restore(vault, second_id) == {"db": data}


def test_one_percent_change_stores_little(make_vault: VaultFactory) -> None:
    vault = make_vault()
    data = bytearray(sample_data(2_000_000, seed=12))
    first = vault.point(backup(vault, {"db": bytes(data)}))
    rng = random.Random(5)
    for _ in range(10):  # 10 edits of 2 KB: 1% of the stream
        position = rng.randrange(len(data) - 2000)
        data[position : position + 2000] = rng.randbytes(2000)
    second_id = backup(vault, {"db": bytes(data)})
    second = vault.point(second_id)
    assert 0 < second.stats.new_stored_size < first.stats.new_stored_size * 0.15
    assert restore(vault, second_id) == {"db": bytes(data)}


def test_insertion_shifts_only_nearby_chunks(make_vault: VaultFactory) -> None:
    vault = make_vault()
    data = sample_data(1_000_000, seed=13)
    first = vault.point(backup(vault, {"db": data}))
    shifted = data[:500_000] + b"inserted!" + data[500_000:]
    second = vault.point(backup(vault, {"db": shifted}))
    assert second.stats.new_chunk_count <= 4
    assert second.stats.new_stored_size < first.stats.new_stored_size * 0.1


def test_duplicates_within_one_point_are_stored_once(make_vault: VaultFactory) -> None:
    vault = make_vault()
    data = sample_data(300_000, seed=14)
    point = vault.point(backup(vault, {"a": data, "b": data, "zeros": bytes(1_000_000)}))
    single = make_vault()
    alone = single.point(backup(single, {"a": data}))
    assert point.stats.new_stored_size < alone.stats.new_stored_size + 10_000


def test_chunk_ids_are_keyed_per_vault(make_vault: VaultFactory) -> None:
    data = sample_data(200_000, seed=15)
    ids = []
    for _ in range(2):
        vault = make_vault()
        point_id = backup(vault, {"x": data})
        with vault.reader(point_id) as reader:
            ids.append(set(reader.chunk_ids(reader.stream("x"))))
    assert ids[0] and not ids[0] & ids[1]


def test_stored_bytes_do_not_contain_the_plaintext(make_vault: VaultFactory) -> None:
    vault = make_vault()
    marker = b"TOP-SECRET-MARKER-" * 100
    backup(vault, {"secret": marker + sample_data(50_000)})
    for info in vault.store.list():
        blob = vault.store.get(info.name)
        assert b"TOP-SECRET-MARKER" not in blob
