"""MemoryStore specifics: named stores, no persistence."""

from __future__ import annotations

from uuid import uuid4

from strongroom.storage.memory import MemoryStore


def test_named_store_is_shared_until_forgotten() -> None:
    name = f"memory-{uuid4().hex}"
    MemoryStore.named(name).put("config", b"{}")

    assert MemoryStore.named(name) is MemoryStore.named(name)
    assert MemoryStore.named(name).get("config") == b"{}"
    assert MemoryStore.named(name).url == f"memory://{name}"

    MemoryStore.forget(name)
    assert list(MemoryStore.named(name).list()) == []
    MemoryStore.forget(name)


def test_capabilities() -> None:
    assert not MemoryStore().capabilities.persistent
    assert not MemoryStore().capabilities.overlapping_names
    assert MemoryStore(overlapping_names=True).capabilities.overlapping_names


def test_stored_bytes_are_a_copy() -> None:
    store = MemoryStore()
    data = bytearray(b"mutable")

    store.put("data/1", data)  # type: ignore[arg-type]
    data[0] = ord("M")

    assert store.get("data/1") == b"mutable"
