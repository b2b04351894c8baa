"""Retry a blob store's transient failures with exponential backoff and full jitter.

Only errors that say ``retryable`` are retried; a missing blob, an exclusive-put conflict,
a full disk, refused access and invalid input are final however they are flagged. Every
method of the contract is idempotent, so repeating one is safe; a listing that fails part
way is started again and names already yielded are not yielded twice.
"""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from strongroom.errors import (
    AccessDeniedError,
    ConfigError,
    InsufficientStorageError,
    NotFoundError,
    StrongroomError,
    is_retryable,
)
from strongroom.logs import get_logger
from strongroom.storage.base import BlobInfo, BlobStore, StoreCapabilities, check_prefix

T = TypeVar("T")

_NEVER_RETRIED = (NotFoundError, InsufficientStorageError, AccessDeniedError, ConfigError)

_log = get_logger(__name__)


def should_retry(error: BaseException) -> bool:
    """Tell whether a store operation that raised ``error`` may succeed when repeated."""
    return is_retryable(error) and not isinstance(error, _NEVER_RETRIED)


class RetryingStore:
    """Wraps a store; repeats an operation up to ``attempts`` times in all.

    The wait before retry ``n`` (1-based) is uniform in
    ``[0, min(max_delay, base_delay * 2 ** (n - 1))]`` seconds ("full jitter"), so many
    clients failing together do not retry together.
    """

    def __init__(
        self,
        inner: BlobStore,
        *,
        attempts: int = 5,
        base_delay: float = 0.5,
        max_delay: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if attempts < 1:
            raise ConfigError(f"retry attempts must be at least 1, not {attempts}")
        if base_delay < 0 or max_delay < 0:
            raise ConfigError(f"retry delays must not be negative: {base_delay}, {max_delay}")
        self._inner = inner
        self._attempts = attempts
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._sleep = sleep
        self._rng = rng if rng is not None else secrets.SystemRandom()

    @property
    def inner(self) -> BlobStore:
        """The wrapped store."""
        return self._inner

    @property
    def capabilities(self) -> StoreCapabilities:
        """The wrapped store's capabilities."""
        return self._inner.capabilities

    @property
    def url(self) -> str:
        """The wrapped store's URL."""
        return self._inner.url

    def put(self, name: str, data: bytes, *, exclusive: bool = False) -> None:
        """``put`` on the wrapped store, retried."""
        self._call("put", name, lambda: self._inner.put(name, data, exclusive=exclusive))

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        """``get`` on the wrapped store, retried."""
        return self._call("get", name, lambda: self._inner.get(name, offset, length))

    def stat(self, name: str) -> BlobInfo:
        """``stat`` on the wrapped store, retried."""
        return self._call("stat", name, lambda: self._inner.stat(name))

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        """``list`` on the wrapped store; a failed listing restarts, skipping names seen."""
        check_prefix(prefix)
        return self._list(prefix)

    def delete(self, name: str) -> None:
        """``delete`` on the wrapped store, retried."""
        self._call("delete", name, lambda: self._inner.delete(name))

    def delay(self, retry: int) -> float:
        """Return a random wait before retry number ``retry`` (1-based), in seconds."""
        ceiling = min(self._max_delay, self._base_delay * 2 ** (retry - 1))
        return self._rng.uniform(0, ceiling)

    def _call(self, operation: str, name: str, call: Callable[[], T]) -> T:
        failures = 0
        while True:
            try:
                return call()
            except StrongroomError as exc:
                failures += 1
                if not self._pause(operation, name, exc, failures):
                    raise

    def _list(self, prefix: str) -> Iterator[BlobInfo]:
        # Names are remembered so that a restarted listing does not repeat them.
        seen: set[str] = set()
        failures = 0
        while True:
            try:
                for info in self._inner.list(prefix):
                    if info.name not in seen:
                        seen.add(info.name)
                        yield info
            except StrongroomError as exc:
                failures += 1
                if not self._pause("list", prefix, exc, failures):
                    raise
            else:
                return

    def _pause(self, operation: str, target: str, error: StrongroomError, failures: int) -> bool:
        """Wait before the next attempt and return True, or return False to give up."""
        if failures >= self._attempts or not should_retry(error):
            return False
        wait = self.delay(failures)
        _log.warning(
            "storage %s %r on %s failed (%s: %s), attempt %d of %d; retrying in %.2fs",
            operation,
            target,
            self.url,
            error.code,
            error,
            failures,
            self._attempts,
            wait,
            extra={
                "operation": operation,
                "target": target,
                "store": self.url,
                "error_code": error.code,
                "attempt": failures,
            },
        )
        self._sleep(wait)
        return True
