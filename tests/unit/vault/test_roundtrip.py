"""Recovery points written and read back: sizes, many streams, APIs, metadata."""

from __future__ import annotations

import io
import shutil
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from strongroom.errors import ConfigError, NotFoundError
from strongroom.keys import PassphraseProvider
from strongroom.storage.local import LocalStore
from strongroom.storage.memory import MemoryStore
from strongroom.vault import Vault, VaultSettings
from strongroom.vault.manifest import INLINE_CHUNKS

from .conftest import (
    FAST_KDF,
    OPTIONS,
    PASSPHRASE,
    SMALL,
    VaultFactory,
    backup,
    restore,
    sample_data,
)

SIZES = [0, 1, 1023, 1024, 1025, 4096, 16384, 16385, 100_000, 300_000, 1_000_003]


@pytest.mark.parametrize("size", SIZES)
def test_round_trip_of_one_stream(make_vault: VaultFactory, size: int) -> None:
    vault = make_vault()
    data = sample_data(size, seed=size)
    point_id = backup(vault, {"stream": data})
    assert restore(vault, point_id) == {"stream": data}


def test_many_streams_and_metadata(make_vault: VaultFactory) -> None:
    vault = make_vault()
    streams = {f"base/{number}": sample_data(number * 997, seed=number) for number in range(12)}
    streams["empty"] = b""
    streams["unicode name ✓"] = b"x"
    before = datetime.now(UTC)
    point_id = backup(vault, streams, metadata={"lsn": "0/1", "n": [1, 2]}, tags={"plan": "daily"})
    point = vault.point(point_id)
    assert [record.name for record in point.streams] == list(streams)
    assert point.metadata == {"lsn": "0/1", "n": [1, 2]}
    assert point.tags == {"plan": "daily"}
    assert before <= point.created <= datetime.now(UTC)
    assert point.created.tzinfo is not None
    assert point.stats.logical_size == sum(len(data) for data in streams.values())
    assert restore(vault, point_id) == streams


def test_long_streams_use_list_chunks(make_vault: VaultFactory) -> None:
    vault = make_vault()
    data = sample_data(2_000_000, seed=7)
    point_id = backup(vault, {"long": data, "short": b"abc"})
    records = {record.name: record for record in vault.point(point_id).streams}
    assert records["long"].chunk_count > INLINE_CHUNKS
    assert records["long"].chunks is None and records["long"].chunk_lists
    assert records["short"].chunks is not None and records["short"].chunk_lists is None
    assert restore(vault, point_id)["long"] == data


def test_other_process_reads_with_its_own_cache(make_vault: VaultFactory) -> None:
    vault = make_vault()
    data = sample_data(500_000)
    point_id = backup(vault, {"a": data})
    other = make_vault(vault.store, create=False)
    assert restore(other, point_id) == {"a": data}
    assert [point.id for point in other.points()] == [point_id]


def test_stream_apis(make_vault: VaultFactory) -> None:
    vault = make_vault()
    data = sample_data(200_000, seed=3)
    with vault.writer(OPTIONS) as writer:
        record = writer.add_stream("file", io.BytesIO(data))
        writer.add_stream("iterable", [data[:10], b"", data[10:]])
        writer.add_stream("reader", io.BufferedReader(io.BytesIO(data)))
        point_id = writer.commit()
    assert record.size == len(data)
    with vault.reader(point_id) as reader:
        names = [record.name for record in reader.streams()]
        assert names == ["file", "iterable", "reader"]
        for name in names:
            with reader.open_stream(name) as stream:
                assert stream.read(5) == data[:5]
                assert stream.read() == data[5:]
        out = io.BytesIO()
        with reader.open_stream("file") as stream:
            shutil.copyfileobj(stream, out)
        assert out.getvalue() == data
        with pytest.raises(NotFoundError):
            reader.stream("nope")


def test_reading_one_stream_touches_only_its_packs(make_vault: VaultFactory) -> None:
    vault = make_vault()
    streams = {"a": sample_data(300_000, seed=1), "b": sample_data(300_000, seed=2)}
    point_id = backup(vault, streams)
    with vault.reader(point_id) as reader:
        record = reader.stream("b")
        ids = list(reader.chunk_ids(record))
        assert b"".join(reader.iter_stream("b")) == streams["b"]
    assert ids and all(vault.parts.index.locate(chunk_id) for chunk_id in ids)


@pytest.mark.parametrize("size", [250_000, 5_000_000])
def test_streams_written_from_threads_at_once(make_vault: VaultFactory, size: int) -> None:
    vault = make_vault()
    streams = {f"part-{number}": sample_data(size, seed=number) for number in range(4)}
    with vault.writer(OPTIONS) as writer:

        def write(name: str) -> None:
            with writer.open_stream(name) as stream:
                data = streams[name]
                for start in range(0, len(data), 7000):
                    stream.write(data[start : start + 7000])

        threads = [threading.Thread(target=write, args=(name,)) for name in streams]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        point_id = writer.commit()
    assert restore(vault, point_id) == streams


def test_streams_after_streams_reuse_windows_and_keep_their_bytes(
    make_vault: VaultFactory,
) -> None:
    """Later streams of a writer start in windows earlier streams left (a window is 4 MiB
    here): none of their bytes may leak from one stream into another."""
    vault = make_vault()
    sizes = [5 << 20, 10, (9 << 20) + 7, 0, (4 << 20) + 1, 3 << 20, 1]
    streams = {f"s{number}": sample_data(size, seed=number) for number, size in enumerate(sizes)}
    with vault.writer(OPTIONS) as writer:
        for number, (name, data) in enumerate(streams.items()):
            if number % 2:
                writer.add_stream(name, io.BytesIO(data))
                continue
            with writer.open_stream(name) as stream:
                for start in range(0, len(data), 999_983):
                    stream.write(data[start : start + 999_983])
        point_id = writer.commit()
    assert restore(vault, point_id) == streams


def test_window_pool_keeps_a_few_whole_windows() -> None:
    from strongroom.vault.stream_writer import WindowPool

    pool = WindowPool(window_size=8)
    assert pool.take() is None
    pool.give(bytearray(4))  # a window that never grew whole is not kept
    assert pool.take() is None
    windows = [bytearray(8) for _ in range(6)]
    for window in windows:
        pool.give(window)
    taken = [pool.take() for _ in range(6)]
    assert [id(window) for window in taken[:4]] == [id(window) for window in windows[3::-1]]
    assert taken[4:] == [None, None]  # at most four are kept


def test_duplicate_and_bad_stream_names(make_vault: VaultFactory) -> None:
    vault = make_vault()
    with vault.writer(OPTIONS) as writer:
        writer.add_stream("a", [b"1"])
        with pytest.raises(ConfigError):
            writer.open_stream("a")
        with pytest.raises(ConfigError):
            writer.open_stream("")
        stream = writer.open_stream("open")
        with pytest.raises(ConfigError, match="close stream"):
            writer.commit()
        stream.close()
        writer.commit()


def test_metadata_must_be_json(make_vault: VaultFactory) -> None:
    vault = make_vault()
    with vault.writer(OPTIONS) as writer, pytest.raises(ConfigError):
        writer.commit(metadata={"when": datetime.now(UTC)})
    assert vault.points() == []


def test_empty_point(make_vault: VaultFactory) -> None:
    vault = make_vault()
    point_id = backup(vault, {})
    assert vault.point(point_id).streams == []


def test_points_are_listed_oldest_first_and_deletable(make_vault: VaultFactory) -> None:
    vault = make_vault()
    ids = [backup(vault, {"s": sample_data(1000, seed=n)}) for n in range(3)]
    assert [point.id for point in vault.points()] == ids
    vault.delete_point(ids[1])
    assert [point.id for point in vault.points()] == [ids[0], ids[2]]
    with pytest.raises(NotFoundError):
        vault.point(ids[1])
    with pytest.raises(ConfigError):
        vault.point("not-an-id")


def test_local_store_round_trip(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "vault")
    with Vault.create(
        store, PassphraseProvider(PASSPHRASE), SMALL, kdf=FAST_KDF, cache_dir=tmp_path / "c"
    ) as vault:
        data = sample_data(400_000)
        point_id = backup(vault, {"x": data})
    with Vault.open(LocalStore(tmp_path / "vault"), PassphraseProvider(PASSPHRASE)) as vault:
        assert restore(vault, point_id) == {"x": data}
        assert vault.verify(read_data=True).ok


def test_uncompressed_vault(make_vault: VaultFactory) -> None:
    vault = make_vault(settings=SMALL.model_copy(update={"compression": "none"}))
    data = b"a" * 100_000
    point_id = backup(vault, {"x": data})
    assert vault.point(point_id).stats.stored_size > 16_384
    assert restore(vault, point_id) == {"x": data}


@pytest.mark.parametrize("name", ["", "a\x00b", "\ud800", "x" * 4097])
def test_invalid_stream_names(make_vault: VaultFactory, name: str) -> None:
    vault = make_vault()
    with vault.writer(OPTIONS) as writer, pytest.raises(ConfigError):
        writer.open_stream(name)


def test_invalid_settings_write_nothing() -> None:
    store = MemoryStore()
    bad = VaultSettings(chunk_min_size=8192, chunk_avg_size=4096, chunk_max_size=16384)
    with pytest.raises(ConfigError, match="chunk"):
        Vault.create(store, PassphraseProvider(PASSPHRASE), bad, kdf=FAST_KDF)
    assert list(store.list()) == []


def test_a_stream_after_a_large_one_starts_in_its_windows(
    make_vault: VaultFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from strongroom.vault.stream_writer import WindowPool

    taken: list[bool] = []
    real_take = WindowPool.take

    def take(pool: WindowPool) -> bytearray | None:
        window = real_take(pool)
        taken.append(window is not None)
        return window

    monkeypatch.setattr(WindowPool, "take", take)
    vault = make_vault()
    streams = {"first": sample_data(9 << 20, seed=1), "second": sample_data(5 << 20, seed=2)}

    with vault.writer(OPTIONS) as writer:
        writer.add_stream("first", io.BytesIO(streams["first"]))
        taken.clear()
        writer.add_stream("second", io.BytesIO(streams["second"]))
        point_id = writer.commit()

    assert taken[0] is True  # the second stream began in a window the first one left
    assert restore(vault, point_id) == streams
