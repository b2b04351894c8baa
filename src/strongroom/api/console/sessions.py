"""Console sessions: a login with an API token becomes a session cookie.

The cookie holds a random session id, never the token. The server keeps, per session, the
token it was opened with and a CSRF token for its forms. Every request authenticates the
session's token again (``resolve_principal``), so a revoked or expired token ends every
session opened with it at the next click; logging out forgets the session at once.

Sessions live in the serving process's memory: a restart of ``strongroom serve`` logs
everyone out, which is the safe failure. A session also ends after ``idle`` without a
request and ``lifetime`` after login, whichever comes first.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

SESSION_COOKIE: Final = "strongroom_session"
LOGIN_CSRF_COOKIE: Final = "strongroom_login_csrf"
COOKIE_PATH: Final = "/console"
DEFAULT_IDLE: Final = timedelta(hours=1)
DEFAULT_LIFETIME: Final = timedelta(hours=12)
MAX_SESSIONS: Final = 10_000
"""Past this many open sessions the oldest is forgotten first (a bound on memory)."""


@dataclass
class ConsoleSession:
    """One logged-in browser: its id (the cookie), token and CSRF token are secrets."""

    id: str = field(repr=False)
    token: str = field(repr=False)
    csrf: str = field(repr=False)
    created_at: datetime
    seen_at: datetime


class SessionStore:
    """The open sessions of one application, safe to use from several threads."""

    def __init__(
        self, *, idle: timedelta = DEFAULT_IDLE, lifetime: timedelta = DEFAULT_LIFETIME
    ) -> None:
        self.idle = idle
        self.lifetime = lifetime
        self._sessions: dict[str, ConsoleSession] = {}
        self._lock = threading.Lock()

    def open(self, token: str, now: datetime) -> ConsoleSession:
        """Return a new session for ``token`` (already authenticated by the caller)."""
        session = ConsoleSession(
            id=secrets.token_urlsafe(32),
            token=token,
            csrf=secrets.token_urlsafe(32),
            created_at=now,
            seen_at=now,
        )
        with self._lock:
            while len(self._sessions) >= MAX_SESSIONS:
                oldest = min(self._sessions.values(), key=lambda item: item.seen_at)
                del self._sessions[oldest.id]
            self._sessions[session.id] = session
        return session

    def find(self, session_id: str | None, now: datetime) -> ConsoleSession | None:
        """Return the live session of ``session_id`` (noting this use), or None when there
        is none or it timed out (then it is forgotten)."""
        if not session_id:
            return None
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return None
            if now - session.seen_at > self.idle or now - session.created_at > self.lifetime:
                del self._sessions[session_id]
                return None
            session.seen_at = now
            return session

    def close(self, session_id: str | None) -> None:
        """Forget ``session_id`` (logout, or its token was refused); no error if unknown."""
        if session_id:
            with self._lock:
                self._sessions.pop(session_id, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)


def same_secret(given: str | None, expected: str) -> bool:
    """Compare a submitted CSRF token with the expected one in constant time."""
    return given is not None and secrets.compare_digest(given.encode(), expected.encode())
