"""open_store: URL forms, and the one composition of wrappers."""

from __future__ import annotations

from pathlib import Path
from uuid import uuid4

import pytest

from strongroom.errors import ConfigError, UnsupportedError
from strongroom.storage.local import LocalStore
from strongroom.storage.memory import MemoryStore
from strongroom.storage.metered import MeteredStore
from strongroom.storage.open import open_store, redact_url
from strongroom.storage.retry import RetryingStore


def test_file_url_gives_metered_retrying_local_store(tmp_path: Path) -> None:
    store = open_store(tmp_path.as_uri())

    assert isinstance(store, MeteredStore)
    assert isinstance(store.inner, RetryingStore)
    assert isinstance(store.inner.inner, LocalStore)
    assert store.inner.inner.root == tmp_path
    assert store.url == tmp_path.as_uri()


@pytest.mark.parametrize(
    ("retry", "metered", "layers"),
    [
        (True, True, [MeteredStore, RetryingStore, LocalStore]),
        (True, False, [RetryingStore, LocalStore]),
        (False, True, [MeteredStore, LocalStore]),
        (False, False, [LocalStore]),
    ],
)
def test_wrappers_can_be_left_out(
    tmp_path: Path, retry: bool, metered: bool, layers: list[type]
) -> None:
    store: object = open_store(tmp_path.as_uri(), retry=retry, metered=metered)

    found = []
    while store is not None:
        found.append(type(store))
        store = getattr(store, "inner", None)
    assert found == layers


def test_file_url_forms(tmp_path: Path) -> None:
    spaced = tmp_path / "with space"

    assert open_store(f"file://localhost{tmp_path}", retry=False, metered=False).url == (
        tmp_path.as_uri()
    )
    local = open_store(spaced.as_uri(), retry=False, metered=False)
    assert isinstance(local, LocalStore)
    assert local.root == spaced


def test_data_written_through_the_composed_store_is_on_disk(tmp_path: Path) -> None:
    open_store(tmp_path.as_uri()).put("data/1", b"bytes")

    assert LocalStore(tmp_path).get("data/1") == b"bytes"


def test_same_memory_name_is_the_same_store() -> None:
    name = f"open-{uuid4().hex}"
    try:
        open_store(f"memory://{name}").put("config", b"{}")

        assert open_store(f"memory://{name}").get("config") == b"{}"
        assert open_store(f"memory://{name}", retry=False, metered=False) is MemoryStore.named(name)
        assert list(open_store(f"memory://other-{name}").list()) == []
    finally:
        MemoryStore.forget(name)
        MemoryStore.forget(f"other-{name}")


def test_s3_is_not_supported_yet() -> None:
    with pytest.raises(UnsupportedError) as unsupported:
        open_store("s3://AKIAEXAMPLE:hunter2@minio.local/bucket/vault")

    assert "later release" in unsupported.value.hint
    assert "hunter2" not in str(unsupported.value)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://host/vault",
        "/absolute/path/without/scheme",
        "relative/path",
        "",
        "file://relative/path",
        "file:relative/path",
        "file:///path?query=1",
        "memory://",
        "http://[::1/broken",
    ],
)
def test_bad_urls_are_config_errors_naming_the_url(url: str) -> None:
    with pytest.raises(ConfigError) as bad:
        open_store(url)

    if url and "[" not in url:
        assert url.split("?")[0] in str(bad.value)


def test_errors_never_show_passwords() -> None:
    with pytest.raises(ConfigError) as bad:
        open_store("ftp://user:hunter2@host/vault?token=abc")

    assert "hunter2" not in str(bad.value)
    assert "abc" not in str(bad.value)
    assert "ftp://user:***@host/vault" in str(bad.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("s3://key:secret@host/bucket", "s3://key:***@host/bucket"),
        ("s3://key@host/bucket", "s3://key@host/bucket"),
        ("s3://host/bucket?secret=1", "s3://host/bucket?***"),
        ("file:///srv/vault", "file:///srv/vault"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown
