"""Open a blob store from its URL: the one place where the wrappers are composed.

URL forms::

    file:///absolute/path    LocalStore (file://localhost/absolute/path works too)
    memory://name            MemoryStore.named(name): one store per name in a process
    s3://bucket/prefix       S3Store: objects under the prefix of the bucket, reached by the
                             ``s3`` connection settings given (endpoint, credentials …)

The result is ``MeteredStore(RetryingStore(base))``: metrics see each call once, as the
caller made it, with the time spent retrying included.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Final
from urllib.parse import SplitResult, unquote, urlsplit

from strongroom.errors import ConfigError
from strongroom.storage.base import BlobStore
from strongroom.storage.local import LocalStore
from strongroom.storage.memory import MemoryStore
from strongroom.storage.metered import MeteredStore
from strongroom.storage.retry import RetryingStore

if TYPE_CHECKING:
    from strongroom.storage.s3 import S3Connection

_URL_HINT = (
    "Use file:///absolute/path for a vault on this machine, s3://bucket/prefix for a bucket."
)

SERVED_SCHEMES: Final = frozenset({"file", "memory", "s3"})
"""The URL schemes :func:`open_store` can open; ``validate`` and ``apply`` refuse a vault
on any other."""


def open_store(
    url: str, *, retry: bool = True, metered: bool = True, s3: S3Connection | None = None
) -> BlobStore:
    """Return the store ``url`` names, wrapped for retries and metrics unless told not to.

    ``s3`` says how to reach an ``s3://`` store (unset: AWS defaults and the standard
    credential chain); it must be unset for other schemes. Raises ``ConfigError`` for a
    malformed URL, an unknown scheme or ``s3`` settings given to another scheme.
    """
    store = _open_base(url, s3)
    if retry:
        store = RetryingStore(store)
    if metered:
        store = MeteredStore(store)
    return store


def redact_url(url: str) -> str:
    """Return ``url`` with any password and query replaced by ``***``, for messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<malformed URL>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user, has_password, _ = userinfo.partition(":")
        netloc = f"{user}:***@{host}" if has_password else netloc
    return parts._replace(netloc=netloc, query="***" if parts.query else "").geturl()


def _open_base(url: str, s3: S3Connection | None) -> BlobStore:
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ConfigError(f"malformed blob store URL {redact_url(url)!r}: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme == "s3":
        if parts.username is not None or parts.password is not None:
            raise ConfigError(
                f"S3 URL {redact_url(url)!r} must not hold credentials",
                hint="Give them as s3.access_key_id and s3.secret_access_key references.",
            )
        from strongroom.storage.s3 import S3Store  # boto3 loads only for an S3 vault

        return S3Store.from_url(url, s3)
    if s3 is not None:
        raise ConfigError(f"S3 connection settings given for {redact_url(url)!r}, not an s3:// URL")
    if scheme == "file":
        return LocalStore(_local_path(url, parts))
    if scheme == "memory":
        name = parts.netloc + parts.path
        if not name or parts.query or parts.fragment:
            raise ConfigError(f"memory store URL {url!r} needs a name: memory://name")
        return MemoryStore.named(name)
    raise ConfigError(f"unknown blob store URL {redact_url(url)!r}", hint=_URL_HINT)


def _local_path(url: str, parts: SplitResult) -> Path:
    path = Path(unquote(parts.path))
    if parts.netloc not in {"", "localhost"} or parts.query or parts.fragment:
        raise ConfigError(
            f"file URL {redact_url(url)!r} must be file:///absolute/path (three slashes)",
            hint=_URL_HINT,
        )
    if not path.is_absolute():
        raise ConfigError(f"file URL {url!r} needs an absolute path", hint=_URL_HINT)
    return path
