"""Every store strongroom ships, and the composed ``open_store`` results, pass the suite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest

from strongroom.storage.base import BlobStore
from strongroom.storage.faulty import FaultyStore
from strongroom.storage.local import LocalStore
from strongroom.storage.memory import MemoryStore
from strongroom.storage.open import open_store
from tests.unit.storage.conformance import BlobStoreConformance


class TestMemoryStore(BlobStoreConformance):
    @pytest.fixture
    def store(self) -> BlobStore:
        return MemoryStore()


class TestMemoryStoreWithOverlappingNames(BlobStoreConformance):
    @pytest.fixture
    def store(self) -> BlobStore:
        return MemoryStore(overlapping_names=True)


class TestLocalStore(BlobStoreConformance):
    @pytest.fixture
    def store(self, tmp_path: Path) -> BlobStore:
        return LocalStore(tmp_path / "vault")


class TestOpenedMemoryStore(BlobStoreConformance):
    @pytest.fixture
    def store(self) -> Iterator[BlobStore]:
        name = f"conformance-{uuid4().hex}"
        yield open_store(f"memory://{name}")
        MemoryStore.forget(name)


class TestOpenedLocalStore(BlobStoreConformance):
    @pytest.fixture
    def store(self, tmp_path: Path) -> BlobStore:
        return open_store((tmp_path / "vault").as_uri())


class TestFaultyStoreWithoutFaults(BlobStoreConformance):
    @pytest.fixture
    def store(self, tmp_path: Path) -> BlobStore:
        return FaultyStore(LocalStore(tmp_path / "vault"))
