"""Open a blob store from its URL: the one place where the wrappers are composed.

URL forms::

    file:///absolute/path    LocalStore (file://localhost/absolute/path works too)
    memory://name            MemoryStore.named(name): one store per name in a process
    s3://bucket/prefix       not yet: UnsupportedError

The result is ``MeteredStore(RetryingStore(base))``: metrics see each call once, as the
caller made it, with the time spent retrying included.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final
from urllib.parse import SplitResult, unquote, urlsplit

from strongroom.errors import ConfigError, UnsupportedError
from strongroom.storage.base import BlobStore
from strongroom.storage.local import LocalStore
from strongroom.storage.memory import MemoryStore
from strongroom.storage.metered import MeteredStore
from strongroom.storage.retry import RetryingStore

_URL_HINT = "Use file:///absolute/path for a vault on this machine."

SERVED_SCHEMES: Final = frozenset({"file", "memory"})
"""The URL schemes :func:`open_store` can open today; ``validate`` and ``apply`` refuse a
vault on any other (an ``s3://`` vault until the S3 store exists)."""


def open_store(url: str, *, retry: bool = True, metered: bool = True) -> BlobStore:
    """Return the store ``url`` names, wrapped for retries and metrics unless told not to.

    Raises ``ConfigError`` for a malformed URL or an unknown scheme and
    ``UnsupportedError`` for a scheme strongroom knows but cannot serve yet (``s3``).
    """
    store = _open_base(url)
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


def _open_base(url: str) -> BlobStore:
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ConfigError(f"malformed blob store URL {redact_url(url)!r}: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme == "file":
        return LocalStore(_local_path(url, parts))
    if scheme == "memory":
        name = parts.netloc + parts.path
        if not name or parts.query or parts.fragment:
            raise ConfigError(f"memory store URL {url!r} needs a name: memory://name")
        return MemoryStore.named(name)
    if scheme == "s3":
        raise UnsupportedError(
            f"S3 blob stores are not supported yet: {redact_url(url)}",
            hint="S3-compatible storage comes in a later release; use a file:// vault for now.",
        )
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
