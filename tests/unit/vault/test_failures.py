"""A backup that fails (full disk, store errors, source errors, abandonment) leaves the
vault consistent: earlier points intact, no half point visible."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from strongroom.errors import (
    ConfigError,
    InsufficientStorageError,
    ServiceUnavailableError,
    ToolError,
)
from strongroom.keys import PassphraseProvider
from strongroom.storage.base import BlobStore
from strongroom.storage.faulty import FaultyStore
from strongroom.storage.memory import MemoryStore
from strongroom.vault import Vault

from .conftest import FAST_KDF, OPTIONS, PASSPHRASE, SMALL, backup, restore, sample_data

_OPENED: list[Vault] = []


@pytest.fixture
def faulty() -> Iterator[FaultyStore]:
    yield FaultyStore(MemoryStore())
    while _OPENED:
        _OPENED.pop().close()


def _vault(store: BlobStore) -> Vault:
    vault = Vault.create(store, PassphraseProvider(PASSPHRASE), SMALL, kdf=FAST_KDF)
    _OPENED.append(vault)
    return vault


def _open(store: BlobStore) -> Vault:
    vault = Vault.open(store, PassphraseProvider(PASSPHRASE))
    _OPENED.append(vault)
    return vault


def test_store_fills_mid_backup(faulty: FaultyStore) -> None:
    vault = _vault(faulty)
    first = backup(vault, {"a": sample_data(200_000, seed=1)})
    faulty.fill_after(300_000)
    with pytest.raises(InsufficientStorageError):
        backup(vault, {"big": sample_data(3_000_000, seed=2)})
    faulty.heal()
    assert [point.id for point in vault.points()] == [first]
    report = vault.verify(read_data=True)
    assert report.ok
    # packs of the failed backup that no fragment lists were removed again
    listed = {pack.name for pack in vault.parts.index.packs()}
    assert {info.name for info in faulty.list("data/")} == listed
    second = backup(vault, {"big": sample_data(3_000_000, seed=2)})
    assert restore(vault, second)["big"] == sample_data(3_000_000, seed=2)


class _NoManifests(MemoryStore):
    """A store that is full when the manifest comes."""

    def put(self, name: str, data: bytes, *, exclusive: bool = False) -> None:
        if name.startswith("manifests/"):
            raise InsufficientStorageError("full")
        super().put(name, data, exclusive=exclusive)


def test_manifest_put_fails(faulty: FaultyStore) -> None:
    store = _NoManifests()
    vault = _vault(store)
    writer = vault.writer(OPTIONS)
    writer.add_stream("a", [sample_data(100_000)])
    with pytest.raises(InsufficientStorageError):
        writer.commit()
    assert writer.state == "aborted"
    assert vault.points() == []
    assert list(store.list("index/"))  # packs and index stay: garbage, not damage
    assert vault.verify(read_data=True).ok


def test_upload_error_fails_the_writer(faulty: FaultyStore) -> None:
    vault = _vault(faulty)
    faulty.fail("put", ServiceUnavailableError("down"), times=1000)
    with vault.writer(OPTIONS) as writer:
        with pytest.raises(ServiceUnavailableError):
            writer.add_stream("a", [sample_data(1_000_000)])
        with pytest.raises(ServiceUnavailableError):
            writer.open_stream("b")
    assert writer.state == "aborted"
    faulty.heal()
    assert vault.points() == []


def test_source_error_abandons_the_stream(faulty: FaultyStore) -> None:
    vault = _vault(faulty)

    def failing_source() -> object:
        yield sample_data(100_000)
        raise ToolError("pg_dump exited 1")

    with vault.writer(OPTIONS) as writer:
        with pytest.raises(ToolError):
            writer.add_stream("dump", failing_source())  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match="abandoned"):
            writer.commit()
    assert vault.points() == []


def test_leaving_without_commit_aborts(faulty: FaultyStore) -> None:
    vault = _vault(faulty)
    with vault.writer(OPTIONS) as writer:
        writer.add_stream("a", [sample_data(500_000)])
    assert writer.state == "aborted"
    assert vault.points() == []
    with pytest.raises(ConfigError):
        writer.commit()
    report = vault.verify(read_data=True)
    assert report.ok


def test_crash_before_commit_leaves_garbage_only(faulty: FaultyStore) -> None:
    vault = _vault(faulty)
    first = backup(vault, {"a": b"first"})
    writer = vault.writer(OPTIONS)
    with writer.open_stream("big") as stream:
        stream.write(sample_data(2_000_000))
    # the process dies here: no commit, no abort
    other = _open(faulty)
    assert [point.id for point in other.points()] == [first]
    assert other.verify(read_data=True).ok
    writer.abort()


def test_two_writers_at_once(faulty: FaultyStore) -> None:
    vault = _vault(faulty)
    other = _open(faulty)
    shared = sample_data(400_000, seed=9)
    one, two = vault.writer(OPTIONS), other.writer(OPTIONS)
    one.add_stream("x", [shared, b"one"])
    two.add_stream("x", [shared, b"two"])
    first, second = one.commit(), two.commit()
    assert restore(vault, first) == {"x": shared + b"one"}
    assert restore(other, second) == {"x": shared + b"two"}
    assert restore(_open(faulty), first) == {"x": shared + b"one"}
    assert vault.verify(read_data=True).ok


def test_interrupted_create_does_not_block_the_next(faulty: FaultyStore) -> None:
    faulty.fail("put", InsufficientStorageError("full"), nth=3)  # keys, datakeys, then config
    with pytest.raises(InsufficientStorageError):
        _vault(faulty)
    assert list(faulty.list("datakeys/"))
    vault = _vault(faulty)
    point_id = backup(vault, {"a": b"after a failed create"})
    reopened = _open(faulty)
    assert restore(reopened, point_id) == {"a": b"after a failed create"}
    assert reopened.describe().key_generations == (1,)
