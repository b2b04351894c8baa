"""RetryingStore: transient errors are retried with capped, jittered backoff; final ones never."""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator, Sequence

import pytest

from strongroom.errors import (
    AccessDeniedError,
    BlobNotFoundError,
    BusyError,
    ConfigError,
    ConflictError,
    InsufficientStorageError,
    ServiceUnavailableError,
    StrongroomError,
    ThrottlingError,
    TimeoutError_,
)
from strongroom.storage.base import BlobInfo, BlobStore
from strongroom.storage.faulty import FaultyStore
from strongroom.storage.memory import MemoryStore
from strongroom.storage.retry import RetryingStore, should_retry


class UpperBound(random.Random):
    """A "random" source that always picks the largest wait allowed."""

    def uniform(self, a: float, b: float) -> float:
        return b


@pytest.fixture
def faulty() -> FaultyStore:
    return FaultyStore(MemoryStore())


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def store(faulty: FaultyStore, sleeps: list[float]) -> RetryingStore:
    return RetryingStore(faulty, attempts=4, base_delay=0.5, max_delay=30, sleep=sleeps.append)


class Collect(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__()
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def retry_log() -> Iterator[list[logging.LogRecord]]:
    records: list[logging.LogRecord] = []
    handler = Collect(records)
    logger = logging.getLogger("strongroom.storage.retry")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield records
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_transient_errors_are_retried_until_success(
    store: RetryingStore,
    faulty: FaultyStore,
    sleeps: list[float],
    retry_log: list[logging.LogRecord],
) -> None:
    faulty.inner.put("data/1", b"bytes")
    faulty.fail("get", ThrottlingError("slow down"), times=2)

    assert store.get("data/1") == b"bytes"

    assert len(sleeps) == 2
    assert 0 <= sleeps[0] <= 0.5
    assert 0 <= sleeps[1] <= 1.0
    assert [record.levelno for record in retry_log] == [logging.WARNING, logging.WARNING]
    message = retry_log[0].getMessage()
    assert "get 'data/1'" in message
    assert "ThrottlingException" in message
    assert "attempt 1 of 4" in message


@pytest.mark.parametrize("operation", ["put", "stat", "delete"])
def test_every_operation_is_retried(
    store: RetryingStore, faulty: FaultyStore, sleeps: list[float], operation: str
) -> None:
    faulty.inner.put("data/1", b"bytes")
    faulty.fail(operation, ServiceUnavailableError("try later"))

    getattr(store, operation)("data/1", *([b"new"] if operation == "put" else []))

    assert len(sleeps) == 1


def test_gives_up_after_the_last_attempt(
    store: RetryingStore, faulty: FaultyStore, sleeps: list[float]
) -> None:
    failure = TimeoutError_("took too long")
    faulty.fail("stat", failure, times=10)

    with pytest.raises(TimeoutError_) as raised:
        store.stat("data/1")

    assert raised.value is failure
    assert len(sleeps) == 3


@pytest.mark.parametrize(
    "error",
    [
        BlobNotFoundError("gone"),
        ConflictError("exists"),
        InsufficientStorageError("full"),
        InsufficientStorageError("full, flagged retryable by mistake", retryable=True),
        AccessDeniedError("no", retryable=True),
        ConfigError("bad"),
        StrongroomError("unknown failure"),
    ],
)
def test_final_errors_are_never_retried(
    store: RetryingStore, faulty: FaultyStore, sleeps: list[float], error: StrongroomError
) -> None:
    faulty.fail("put", error)

    with pytest.raises(type(error)):
        store.put("data/1", b"bytes")

    assert sleeps == []
    assert not should_retry(error)


def test_a_retryable_conflict_is_retried(
    store: RetryingStore, faulty: FaultyStore, sleeps: list[float]
) -> None:
    faulty.fail("put", BusyError("bucket busy"))

    store.put("data/1", b"bytes")

    assert faulty.inner.get("data/1") == b"bytes"
    assert len(sleeps) == 1


def test_missing_blob_is_reported_at_once(store: RetryingStore, sleeps: list[float]) -> None:
    with pytest.raises(BlobNotFoundError):
        store.get("missing")

    assert sleeps == []


def test_other_exceptions_pass_through_unretried(sleeps: list[float]) -> None:
    class Broken(MemoryStore):
        def stat(self, name: str) -> BlobInfo:
            raise ValueError("a bug, not an outage")

    store = RetryingStore(Broken(), sleep=sleeps.append)

    with pytest.raises(ValueError, match="a bug"):
        store.stat("x")
    assert sleeps == []


def test_exclusive_put_whose_first_attempt_landed_succeeds(sleeps: list[float]) -> None:
    class LandsThenTimesOut(MemoryStore):
        answered = False

        def put(self, name: str, data: bytes, *, exclusive: bool = False) -> None:
            super().put(name, data, exclusive=exclusive)
            if not self.answered:
                self.answered = True
                raise TimeoutError_("the answer was lost")

    inner = LandsThenTimesOut()
    store = RetryingStore(inner, sleep=sleeps.append)

    store.put("locks/1", b"mine", exclusive=True)

    assert inner.get("locks/1") == b"mine"
    assert len(sleeps) == 1


def test_backoff_doubles_up_to_the_cap(faulty: FaultyStore) -> None:
    store = RetryingStore(faulty, base_delay=0.5, max_delay=3.0, rng=UpperBound())

    assert [store.delay(retry) for retry in range(1, 7)] == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]


def test_jitter_spreads_waits_over_the_whole_window(faulty: FaultyStore) -> None:
    store = RetryingStore(faulty, base_delay=1.0, max_delay=8.0, rng=random.Random(7))

    waits = [store.delay(4) for _ in range(200)]

    assert all(0 <= wait <= 8.0 for wait in waits)
    assert min(waits) < 1.0
    assert max(waits) > 7.0


def test_interrupted_listing_restarts_without_repeating_names(sleeps: list[float]) -> None:
    class BreaksOnce(MemoryStore):
        broken = False

        def list(self, prefix: str = "") -> Iterator[BlobInfo]:
            infos = sorted(super().list(prefix), key=lambda info: info.name)
            if not self.broken:
                self.broken = True
                return self._break_after(infos[:2])
            return iter(infos)

        @staticmethod
        def _break_after(infos: Sequence[BlobInfo]) -> Iterator[BlobInfo]:
            yield from infos
            raise ServiceUnavailableError("connection reset")

    inner = BreaksOnce()
    for index in range(5):
        inner.put(f"data/{index}", b"x" * index)
    store = RetryingStore(inner, sleep=sleeps.append)

    listed = [info.name for info in store.list("data/")]

    assert listed == [f"data/{index}" for index in range(5)]
    assert len(sleeps) == 1


def test_failed_listing_gives_up_after_the_last_attempt(
    store: RetryingStore, faulty: FaultyStore, sleeps: list[float]
) -> None:
    faulty.fail("list", ThrottlingError("slow down"), times=4)

    with pytest.raises(ThrottlingError):
        list(store.list())
    assert len(sleeps) == 3


def test_invalid_prefix_is_refused_at_the_call(store: RetryingStore) -> None:
    with pytest.raises(ConfigError):
        store.list("/absolute")


@pytest.mark.parametrize("settings", [{"attempts": 0}, {"base_delay": -1.0}, {"max_delay": -0.1}])
def test_bad_settings_are_refused(faulty: FaultyStore, settings: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        RetryingStore(faulty, **settings)  # type: ignore[arg-type]


def test_wrapper_shows_the_wrapped_store(store: RetryingStore, faulty: FaultyStore) -> None:
    assert isinstance(store, BlobStore)
    assert store.url == faulty.url
    assert store.capabilities == faulty.capabilities
    assert store.inner is faulty
