"""MeteredStore: calls, errors, time and bytes per operation, in consistent snapshots."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import FrozenInstanceError

import pytest

from strongroom.errors import BlobNotFoundError, ThrottlingError
from strongroom.storage.base import OPERATIONS, BlobStore
from strongroom.storage.faulty import FaultyStore
from strongroom.storage.memory import MemoryStore
from strongroom.storage.metered import MeteredStore, OperationStats, StoreStats


class Ticks:
    """A clock that advances one second every time it is read."""

    def __init__(self) -> None:
        self._seconds = itertools.count()

    def __call__(self) -> float:
        return float(next(self._seconds))


@pytest.fixture
def faulty() -> FaultyStore:
    return FaultyStore(MemoryStore())


@pytest.fixture
def store(faulty: FaultyStore) -> MeteredStore:
    return MeteredStore(faulty, clock=Ticks())


def test_a_new_store_has_zero_totals(store: MeteredStore) -> None:
    assert store.stats() == StoreStats()
    assert set(store.stats().by_operation()) == set(OPERATIONS)


def test_calls_bytes_and_time_are_counted(store: MeteredStore) -> None:
    store.put("data/1", b"12345")
    store.put("data/2", b"123")
    assert store.get("data/1") == b"12345"
    assert store.get("data/1", 1, 2) == b"23"
    store.stat("data/2")
    store.delete("data/2")

    stats = store.stats()

    assert stats.put == OperationStats(calls=2, errors=0, seconds=2.0)
    assert stats.get == OperationStats(calls=2, errors=0, seconds=2.0)
    assert stats.stat == OperationStats(calls=1, errors=0, seconds=1.0)
    assert stats.delete == OperationStats(calls=1, errors=0, seconds=1.0)
    assert stats.bytes_written == 8
    assert stats.bytes_read == 7


def test_errors_are_counted_and_move_no_bytes(store: MeteredStore, faulty: FaultyStore) -> None:
    faulty.fail("put", ThrottlingError("slow down"))

    with pytest.raises(ThrottlingError):
        store.put("data/1", b"12345")
    with pytest.raises(BlobNotFoundError):
        store.get("data/1")

    stats = store.stats()
    assert stats.put == OperationStats(calls=1, errors=1, seconds=1.0)
    assert stats.get == OperationStats(calls=1, errors=1, seconds=1.0)
    assert stats.bytes_written == 0
    assert stats.bytes_read == 0


def test_a_listing_counts_once_with_the_time_inside_the_store(store: MeteredStore) -> None:
    for index in range(3):
        store.put(f"data/{index}", b"x")

    listing = store.list("data/")
    assert store.stats().list.calls == 0  # counted when the iteration ends
    names = [info.name for info in listing]

    assert sorted(names) == ["data/0", "data/1", "data/2"]
    # Four reads of the inner iterator (three names, then the end), one tick each.
    assert store.stats().list == OperationStats(calls=1, errors=0, seconds=4.0)


def test_a_listing_stopped_early_is_not_an_error(store: MeteredStore) -> None:
    store.put("data/1", b"x")
    store.put("data/2", b"x")

    listing = store.list()
    next(listing)
    listing.close()  # type: ignore[attr-defined]

    assert store.stats().list == OperationStats(calls=1, errors=0, seconds=1.0)


def test_a_failed_listing_is_an_error(store: MeteredStore, faulty: FaultyStore) -> None:
    faulty.fail("list", ThrottlingError("slow down"))

    with pytest.raises(ThrottlingError):
        list(store.list())

    assert store.stats().list == OperationStats(calls=1, errors=1, seconds=1.0)


def test_snapshots_do_not_change(store: MeteredStore) -> None:
    before = store.stats()
    store.put("data/1", b"x")

    assert before.put.calls == 0
    assert store.stats().put.calls == 1
    with pytest.raises(FrozenInstanceError):
        before.bytes_read = 1  # type: ignore[misc]


def test_totals_are_exact_under_concurrency() -> None:
    store = MeteredStore(MemoryStore())

    def work(worker: int) -> None:
        for index in range(100):
            name = f"data/{worker}/{index}"
            store.put(name, b"0123456789")
            store.get(name)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(work, range(8)))

    stats = store.stats()
    assert stats.put.calls == stats.get.calls == 800
    assert stats.bytes_written == stats.bytes_read == 8000
    assert stats.put.seconds > 0


def test_wrapper_shows_the_wrapped_store(store: MeteredStore, faulty: FaultyStore) -> None:
    assert isinstance(store, BlobStore)
    assert store.url == faulty.url
    assert store.capabilities == faulty.capabilities
    assert store.inner is faulty
