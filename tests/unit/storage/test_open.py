"""open_store: URL forms, and the one composition of wrappers."""

from __future__ import annotations

from pathlib import Path
from uuid import uuid4

import pytest

from strongroom.errors import ConfigError
from strongroom.storage.local import LocalStore
from strongroom.storage.memory import MemoryStore
from strongroom.storage.metered import MeteredStore
from strongroom.storage.open import open_store, redact_url
from strongroom.storage.retry import RetryingStore
from strongroom.storage.s3 import S3Connection, S3Store


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


def test_an_s3_url_opens_the_bucket_and_prefix_it_names() -> None:
    store = open_store(
        "s3://backups.example-1/prod/vault",
        retry=False,
        metered=False,
        s3=S3Connection(endpoint_url="http://127.0.0.1:1", region="eu-west-1"),
    )

    assert isinstance(store, S3Store)
    assert (store.bucket, store.prefix, store.url) == (
        "backups.example-1",
        "prod/vault/",
        "s3://backups.example-1/prod/vault",
    )
    assert store.key("data/ab/1") == "prod/vault/data/ab/1"


def test_credentials_in_an_s3_url_are_refused_and_never_shown() -> None:
    with pytest.raises(ConfigError) as refused:
        open_store("s3://AKIAEXAMPLE:hunter2@bucket/vault")

    assert "access_key_id" in refused.value.hint
    assert "hunter2" not in str(refused.value)


@pytest.mark.parametrize(
    "url", ["s3://", "s3://UPPER/x", "s3://ab/x", "s3://bucket/a//b", "s3://bucket/x?region=eu"]
)
def test_bad_s3_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError):
        open_store(url, s3=S3Connection(endpoint_url="http://127.0.0.1:1"))


def test_s3_settings_for_another_scheme_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        open_store(tmp_path.as_uri(), s3=S3Connection())

    assert "not an s3:// URL" in str(refused.value)


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
