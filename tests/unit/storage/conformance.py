"""The conformance suite every blob store must pass (restic's ``internal/backend/test``).

Subclass :class:`BlobStoreConformance` in a test module and give it a ``store`` fixture
that returns a new, empty store::

    class TestMyStore(BlobStoreConformance):
        @pytest.fixture
        def store(self, tmp_path: Path) -> BlobStore:
            return MyStore(tmp_path)

The class name does not start with ``Test``, so pytest collects only the subclasses.
Behaviour a store may legitimately lack is read from its ``capabilities``.
"""

from __future__ import annotations

import random
import string
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strongroom.errors import BlobNotFoundError, ConfigError, ConflictError, NotFoundError
from strongroom.storage.base import BlobInfo, BlobStore, StoreCapabilities

NAME_CHARACTERS = string.ascii_letters + string.digits + "._-"

valid_segments = st.text(alphabet=NAME_CHARACTERS, min_size=1, max_size=40).filter(
    lambda segment: segment not in {".", ".."}
)
valid_names = st.lists(valid_segments, min_size=1, max_size=4).map("/".join)
invalid_names = st.one_of(
    st.just(""),
    valid_names.map(lambda name: "/" + name),
    valid_names.map(lambda name: name + "/"),
    st.tuples(valid_names, valid_names).map("//".join),
    st.tuples(valid_names, st.sampled_from([".", ".."])).map("/".join),
    st.tuples(st.sampled_from([".", ".."]), valid_names).map("/".join),
    st.tuples(
        st.text(alphabet=NAME_CHARACTERS, max_size=5),
        st.characters(exclude_characters=NAME_CHARACTERS + "/"),
        st.text(alphabet=NAME_CHARACTERS, max_size=5),
    ).map("".join),
    st.sampled_from(["a\n", "a\nb", "a\x00", "a b", "a\\b", "a~", "ä", "a/./b", "a/../b"]),
    st.text(alphabet=NAME_CHARACTERS, min_size=256, max_size=300),
    st.lists(st.just("x" * 200), min_size=6, max_size=6).map("/".join),
)

# Each hypothesis example reuses the one store of the test and cleans up after itself;
# each subclass runs the same test on another store, which is the point of the suite.
_store_examples = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.differing_executors],
)


def blob(size: int, seed: int = 0) -> bytes:
    """Return ``size`` reproducible pseudo-random bytes."""
    return random.Random(seed).randbytes(size)


def names(store: BlobStore, prefix: str = "") -> list[str]:
    """Return the sorted names ``store.list(prefix)`` yields."""
    return sorted(info.name for info in store.list(prefix))


class BlobStoreConformance:
    """The contract of :class:`strongroom.storage.base.BlobStore`, as tests."""

    @pytest.fixture
    def store(self) -> BlobStore:
        raise NotImplementedError("a conformance subclass provides the store fixture")

    def test_satisfies_the_protocol(self, store: BlobStore) -> None:
        assert isinstance(store, BlobStore)
        assert isinstance(store.capabilities, StoreCapabilities)
        assert "://" in store.url
        assert names(store) == []

    def test_put_get_round_trip(self, store: BlobStore) -> None:
        store.put("config", b"vault configuration")
        store.put("data/ab/abcdef", b"\x00\x01\xff" * 100)

        assert store.get("config") == b"vault configuration"
        assert store.get("data/ab/abcdef") == b"\x00\x01\xff" * 100

    def test_empty_blob(self, store: BlobStore) -> None:
        store.put("empty", b"")

        assert store.get("empty") == b""
        assert store.get("empty", 0, 10) == b""
        assert store.stat("empty") == BlobInfo("empty", 0)
        assert list(store.list()) == [BlobInfo("empty", 0)]

    def test_large_blob(self, store: BlobStore) -> None:
        data = blob(20 * 1024 * 1024, seed=20)
        store.put("data/large", data)

        assert store.stat("data/large").size == len(data)
        assert store.get("data/large") == data
        assert store.get("data/large", 10_000_000, 1_000_000) == data[10_000_000:11_000_000]

    @pytest.mark.parametrize(
        ("offset", "length"),
        [
            (0, 10),  # start
            (0, None),  # everything
            (0, 1000),  # exactly everything
            (400, 200),  # middle
            (990, None),  # the end
            (990, 10),  # the last bytes exactly
            (995, 10),  # runs past the end: fewer bytes
            (999, 1),  # last byte
            (1000, None),  # at the end: nothing
            (1000, 5),  # at the end: nothing
            (5000, 10),  # past the end: nothing
            (10, 0),  # zero length
            (1000, 0),  # zero length at the end
        ],
    )
    def test_ranged_get(self, store: BlobStore, offset: int, length: int | None) -> None:
        data = blob(1000, seed=1)
        store.put("ranged", data)

        end = None if length is None else offset + length
        assert store.get("ranged", offset, length) == data[offset:end]

    def test_huge_length_returns_what_is_there(self, store: BlobStore) -> None:
        store.put("ranged", b"0123456789")

        assert store.get("ranged", 4, 2**50) == b"456789"

    @pytest.mark.parametrize(("offset", "length"), [(-1, None), (0, -1), (-5, 3)])
    def test_negative_range_is_refused(
        self, store: BlobStore, offset: int, length: int | None
    ) -> None:
        store.put("ranged", b"0123456789")

        with pytest.raises(ConfigError):
            store.get("ranged", offset, length)

    def test_stat_size(self, store: BlobStore) -> None:
        store.put("index/1", blob(12345))

        assert store.stat("index/1") == BlobInfo("index/1", 12345)

    def test_list_with_and_without_prefix(self, store: BlobStore) -> None:
        contents = {
            "data/1": b"a",
            "data/2/x": b"bb",
            "datax/1": b"ccc",
            "index/1": b"dddd",
            "top": b"",
        }
        for name, data in contents.items():
            store.put(name, data)

        assert sorted(store.list(), key=lambda info: info.name) == [
            BlobInfo(name, len(contents[name])) for name in sorted(contents)
        ]
        assert names(store, "data/") == ["data/1", "data/2/x"]
        assert names(store, "data") == ["data/1", "data/2/x", "datax/1"]
        assert names(store, "data/2") == ["data/2/x"]
        assert names(store, "data/2/") == ["data/2/x"]
        assert names(store, "d") == ["data/1", "data/2/x", "datax/1"]
        assert names(store, "top") == ["top"]
        assert names(store, "nothing/") == []
        assert names(store, "data/3") == []

    @pytest.mark.parametrize("prefix", ["/", "/data", "data//", "../", "a\n", "a b/"])
    def test_list_refuses_invalid_prefix_at_the_call(self, store: BlobStore, prefix: str) -> None:
        with pytest.raises(ConfigError):
            store.list(prefix)

    def test_delete_is_idempotent(self, store: BlobStore) -> None:
        store.delete("never/written")
        store.put("snapshots/1", b"manifest")
        store.put("snapshots/2", b"other")

        store.delete("snapshots/1")
        store.delete("snapshots/1")

        assert names(store) == ["snapshots/2"]
        with pytest.raises(BlobNotFoundError):
            store.get("snapshots/1")

    @pytest.mark.parametrize("name", ["missing", "data/missing", "a/b/c/d"])
    def test_missing_blob(self, store: BlobStore, name: str) -> None:
        store.put("data/present", b"x")

        with pytest.raises(BlobNotFoundError) as get_error:
            store.get(name)
        with pytest.raises(BlobNotFoundError):
            store.get(name, 0, 1)
        with pytest.raises(BlobNotFoundError):
            store.stat(name)
        assert isinstance(get_error.value, NotFoundError)
        assert not get_error.value.retryable

    def test_folder_is_not_a_blob(self, store: BlobStore) -> None:
        store.put("data/ab/1", b"x")

        for folder in ("data", "data/ab"):
            with pytest.raises(BlobNotFoundError):
                store.get(folder)
            with pytest.raises(BlobNotFoundError):
                store.stat(folder)
            store.delete(folder)
        assert names(store) == ["data/ab/1"]

    def test_overwrite_replaces_the_blob(self, store: BlobStore) -> None:
        store.put("locks/1", b"first version, longer")
        store.put("locks/1", b"second")

        assert store.get("locks/1") == b"second"
        assert store.stat("locks/1").size == len(b"second")
        assert names(store) == ["locks/1"]

    def test_exclusive_put_creates_a_new_blob(self, store: BlobStore) -> None:
        store.put("locks/new", b"mine", exclusive=True)

        assert store.get("locks/new") == b"mine"

    def test_exclusive_put_conflict_leaves_the_original(self, store: BlobStore) -> None:
        store.put("locks/1", b"original")

        with pytest.raises(ConflictError) as conflict:
            store.put("locks/1", b"intruder", exclusive=True)

        assert not conflict.value.retryable
        assert store.get("locks/1") == b"original"
        assert names(store) == ["locks/1"]

    def test_reput_of_identical_bytes_succeeds(self, store: BlobStore) -> None:
        data = blob(4096, seed=3)
        store.put("data/same", data)
        store.put("data/same", data)
        store.put("data/same", data, exclusive=True)

        assert store.get("data/same") == data
        assert list(store.list()) == [BlobInfo("data/same", 4096)]

    def test_overlapping_names(self, store: BlobStore) -> None:
        store.put("a", b"blob a")
        store.put("c/d", b"blob c/d")

        if store.capabilities.overlapping_names:
            store.put("a/b", b"blob a/b")
            store.put("c", b"blob c")
            assert names(store) == ["a", "a/b", "c", "c/d"]
            assert store.get("a/b") == b"blob a/b"
            return
        for name in ("a/b", "a/b/x", "c"):
            with pytest.raises(ConflictError) as conflict:
                store.put(name, b"overlapping")
            assert not conflict.value.retryable
        with pytest.raises(BlobNotFoundError):
            store.get("a/b")
        with pytest.raises(BlobNotFoundError):
            store.stat("a/b")
        store.delete("a/b")
        assert names(store) == ["a", "c/d"]
        assert store.get("a") == b"blob a"

        store.delete("c/d")
        store.put("c", b"blob c")  # once its folder is empty, the name is free
        assert names(store) == ["a", "c"]

    def test_concurrent_puts_of_distinct_names(self, store: BlobStore) -> None:
        contents = {
            f"data/{index % 4}/{index:03d}": blob(1000 + index, index) for index in range(64)
        }

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda item: store.put(*item), contents.items()))

        assert names(store) == sorted(contents)
        for name, data in contents.items():
            assert store.get(name) == data

    def test_concurrent_puts_of_one_name_leave_one_whole_version(self, store: BlobStore) -> None:
        versions = [blob(256 * 1024, seed) for seed in range(8)]

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda data: store.put("contended", data), versions))

        if store.capabilities.atomic_put:
            assert store.get("contended") in versions
        assert names(store) == ["contended"]

    @_store_examples
    @given(name=valid_names, data=st.binary(max_size=300))
    def test_valid_names_round_trip(self, store: BlobStore, name: str, data: bytes) -> None:
        store.put(name, data)
        try:
            assert store.get(name) == data
            assert store.stat(name) == BlobInfo(name, len(data))
            assert list(store.list(name)) == [BlobInfo(name, len(data))]
        finally:
            store.delete(name)
        assert names(store) == []

    @_store_examples
    @given(name=invalid_names)
    def test_invalid_names_are_refused(self, store: BlobStore, name: str) -> None:
        for call in (
            lambda: store.put(name, b"data"),
            lambda: store.put(name, b"data", exclusive=True),
            lambda: store.get(name),
            lambda: store.stat(name),
            lambda: store.delete(name),
        ):
            with pytest.raises(ConfigError):
                call()
        assert names(store) == []
