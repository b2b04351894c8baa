"""FaultyStore: failures on the Nth call, a disk that fills up, bits flipped on the way out."""

from __future__ import annotations

import pytest

from strongroom.errors import (
    ConfigError,
    ConflictError,
    InsufficientStorageError,
    NetworkError,
    ThrottlingError,
)
from strongroom.storage.faulty import FaultyStore
from strongroom.storage.memory import MemoryStore


@pytest.fixture
def memory() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def store(memory: MemoryStore) -> FaultyStore:
    return FaultyStore(memory)


def test_the_nth_put_fails_and_writes_nothing(store: FaultyStore, memory: MemoryStore) -> None:
    failure = NetworkError("cable pulled")
    store.fail("put", failure, nth=2)

    store.put("data/1", b"one")
    with pytest.raises(NetworkError) as raised:
        store.put("data/2", b"two")
    store.put("data/3", b"three")

    assert raised.value is failure
    assert sorted(info.name for info in memory.list()) == ["data/1", "data/3"]


def test_nth_counts_from_when_the_fault_is_set(store: FaultyStore) -> None:
    store.put("data/1", b"one")
    store.fail("put", ThrottlingError("slow down"), nth=1, times=2)

    for name in ("data/2", "data/3"):
        with pytest.raises(ThrottlingError):
            store.put(name, b"x")
    store.put("data/4", b"x")


@pytest.mark.parametrize("operation", ["get", "stat", "delete", "list"])
def test_other_operations_can_fail(store: FaultyStore, operation: str) -> None:
    store.put("data/1", b"one")
    store.fail(operation, ThrottlingError("slow down"))

    with pytest.raises(ThrottlingError):
        if operation == "list":
            list(store.list())
        else:
            getattr(store, operation)("data/1")
    assert store.get("data/1") == b"one"


def test_a_full_disk_refuses_what_does_not_fit(store: FaultyStore, memory: MemoryStore) -> None:
    store.fill_after(100)

    store.put("data/1", b"x" * 60)
    with pytest.raises(InsufficientStorageError) as full:
        store.put("data/2", b"x" * 50)
    store.put("data/3", b"x" * 40)
    with pytest.raises(InsufficientStorageError):
        store.put("data/4", b"x")

    assert not full.value.retryable
    assert sorted(info.name for info in memory.list()) == ["data/1", "data/3"]
    store.heal()
    store.put("data/4", b"x" * 1000)


def test_space_of_a_failed_put_is_given_back(store: FaultyStore) -> None:
    store.put("locks/1", b"holder")
    store.fill_after(10)

    with pytest.raises(ConflictError):
        store.put("locks/1", b"intruder", exclusive=True)
    store.put("data/1", b"x" * 10)


def test_corruption_flips_one_bit_of_what_get_returns(
    store: FaultyStore, memory: MemoryStore
) -> None:
    data = bytes(range(16))
    store.put("data/1", data)
    store.put("data/2", data)
    store.corrupt("data/1", bit=13)  # byte 1, bit 5

    damaged = store.get("data/1")

    assert damaged != data
    assert damaged[1] == data[1] ^ 0b0010_0000
    assert damaged[:1] + damaged[2:] == data[:1] + data[2:]
    assert store.get("data/1", 1, 2) == damaged[1:3]
    assert store.get("data/1", 2) == data[2:]  # the flipped byte is not in this range
    assert store.get("data/2") == data
    assert memory.get("data/1") == data  # the stored bytes stay intact
    store.heal()
    assert store.get("data/1") == data


@pytest.mark.parametrize(
    ("operation", "nth", "times"), [("rename", 1, 1), ("put", 0, 1), ("put", 1, 0)]
)
def test_bad_faults_are_refused(store: FaultyStore, operation: str, nth: int, times: int) -> None:
    with pytest.raises(ConfigError):
        store.fail(operation, ThrottlingError("x"), nth=nth, times=times)


def test_negative_bit_is_refused(store: FaultyStore) -> None:
    with pytest.raises(ConfigError):
        store.corrupt("data/1", bit=-1)
