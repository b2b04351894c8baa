"""Limits that protect the server: failed logins per client address, request body size."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import datetime, timedelta
from typing import Any, Final

from strongroom.errors import ThrottlingError
from strongroom.logs import get_logger

_logger = get_logger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_MAX_FAILURES: Final = 10
DEFAULT_FAILURE_WINDOW: Final = timedelta(minutes=5)
DEFAULT_MAX_BODY_BYTES: Final = 1024 * 1024


class FailedLogins:
    """Counts refused tokens per client address; an address with ``max_failures`` in the
    last ``window`` is refused (429) before its token is even looked at, until the oldest
    failure leaves the window. Thread-safe; memory is bounded by ``max_addresses``."""

    def __init__(
        self,
        *,
        max_failures: int = DEFAULT_MAX_FAILURES,
        window: timedelta = DEFAULT_FAILURE_WINDOW,
        max_addresses: int = 10_000,
    ) -> None:
        self.max_failures = max_failures
        self.window = window
        self.max_addresses = max_addresses
        self._failures: dict[str, deque[datetime]] = {}
        self._lock = threading.Lock()

    def check(self, address: str, now: datetime) -> None:
        """Return if ``address`` may try a token now. Raises ThrottlingError (logged) if not."""
        with self._lock:
            failures = self._recent(address, now)
            if len(failures) < self.max_failures:
                return
            retry_at = failures[0] + self.window
        _logger.warning("API login refused: too many failed logins", extra={"client": address})
        seconds = max(1, int((retry_at - now).total_seconds()))
        raise ThrottlingError(
            f"too many refused API tokens from {address}; try again in {seconds} s",
            hint="Check the token; each refused one counts against this address.",
        )

    def failed(self, address: str, now: datetime) -> None:
        """Count one refused token from ``address`` (logged without the token)."""
        with self._lock:
            if address not in self._failures and len(self._failures) >= self.max_addresses:
                self._forget_oldest()
            self._recent(address, now).append(now)
        _logger.warning("API login failed", extra={"client": address})

    def _recent(self, address: str, now: datetime) -> deque[datetime]:
        failures = self._failures.setdefault(address, deque())
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        return failures

    def _forget_oldest(self) -> None:
        # Dicts keep insertion order: the first address is the one seen longest ago.
        del self._failures[next(iter(self._failures))]


class BodySizeLimit:
    """ASGI middleware: a request body over ``max_bytes`` is answered 413 and never read on.

    Checks ``Content-Length`` up front, then reads the body (at most ``max_bytes``) before
    the application runs, so a chunked body is counted too.
    """

    def __init__(self, app: ASGIApp, max_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._refuse(send)
                return
        # Read the body (up to the limit) before the app sees it: a chunked body with no
        # Content-Length is refused as soon as it passes the limit, and never read further.
        chunks: list[Message] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                await self.app(scope, _replay([message], receive), send)
                return
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                await self._refuse(send)
                return
            chunks.append(message)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(chunks, receive), send)

    async def _refuse(self, send: Send) -> None:
        body = (
            b'{"error": {"code": "RequestTooLarge", "message": "the request body is over '
            + str(self.max_bytes).encode()
            + b' bytes", "hint": "Send a smaller body.", "retryable": false}}'
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that hands out ``messages`` first, then waits on the real one."""
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
