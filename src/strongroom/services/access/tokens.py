"""API tokens: issued once, stored as a hash, expiring, revocable, checked per request.

A token reads ``srt_<id>_<secret>``: ``id`` (12 hex digits) is public and names the row;
``secret`` is 256 random bits (URL-safe base64). The catalog keeps only the SHA-256 of
the secret, compared in constant time. A secret of 256 random bits needs no slow hash:
nothing can be guessed from its SHA-256.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import select

from strongroom.catalog.models import ApiToken
from strongroom.errors import AuthenticationError, ConfigError, ConflictError, NotFoundError
from strongroom.services.access.roles import Principal, Role
from strongroom.services.audit.trail import REFUSED, record, record_alone
from strongroom.services.context import Actor, AppContext

TOKEN_PREFIX: Final = "srt_"  # noqa: S105 (a public marker, not a secret)
LAST_USED_PRECISION: Final = timedelta(minutes=1)
"""``last_used_at`` is written at most this often per token: a request must not be a write."""

_ID_HEX_DIGITS: Final = 12
_SECRET_BYTES: Final = 32


@dataclass(frozen=True)
class TokenView:
    """One token as ``token list`` shows it (never its secret or hash)."""

    id: str
    name: str
    role: str
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    def state(self, now: datetime) -> str:
        """``active``, ``expired`` or ``revoked``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"

    def as_json(self, now: datetime) -> dict[str, Any]:
        """The token as JSON (the shape of ``token list --output json``)."""
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role,
            "state": self.state(now),
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "expires_at": _iso(self.expires_at),
            "revoked_at": _iso(self.revoked_at),
            "last_used_at": _iso(self.last_used_at),
        }


@dataclass(frozen=True)
class IssuedToken:
    """A token just made: its row and the full token text, shown this once."""

    view: TokenView
    token: str


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _view(row: ApiToken) -> TokenView:
    return TokenView(
        id=row.id,
        name=row.name,
        role=row.role,
        created_at=row.created_at,
        created_by=row.created_by,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
    )


def hash_secret(secret: str) -> str:
    """The stored form of a token's secret: SHA-256, hex."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def split_token(token: str) -> tuple[str, str] | None:
    """Return (id, secret) of a well-formed token text, or None."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    token_id, separator, secret = token[len(TOKEN_PREFIX) :].partition("_")
    if not separator or len(token_id) != _ID_HEX_DIGITS or not secret:
        return None
    if any(character not in "0123456789abcdef" for character in token_id):
        return None
    return token_id, secret


class TokenService:
    """Issues, lists, revokes and checks the API tokens of one context's catalog."""

    def __init__(self, context: AppContext) -> None:
        self.context = context

    def create(
        self, role: Role, *, name: str | None = None, expires_in: timedelta | None = None
    ) -> IssuedToken:
        """Make a token with ``role`` (named ``name``, default the role), valid for
        ``expires_in`` (None: until revoked); recorded in the audit trail.

        Raises ConfigError for an empty name or a non-positive lifetime.
        """
        if expires_in is not None and expires_in <= timedelta(0):
            raise ConfigError("a token's lifetime must be positive (e.g. --expires-in 30d)")
        label = (name if name is not None else role.value).strip()
        if not label or len(label) > 200:
            raise ConfigError("a token's name is 1 to 200 characters")
        now = self.context.now()
        token_id = secrets.token_hex(_ID_HEX_DIGITS // 2)
        secret = secrets.token_urlsafe(_SECRET_BYTES)
        row = ApiToken(
            id=token_id,
            name=label,
            role=role.value,
            secret_hash=hash_secret(secret),
            created_at=now,
            created_by=self.context.actor.name,
            expires_at=now + expires_in if expires_in is not None else None,
        )
        with self.context.catalog.session() as session:
            session.add(row)
            session.flush()
            record(
                session,
                actor=self.context.actor,
                at=now,
                action="token.create",
                subject=token_id,
                details={"name": label, "role": role.value, "expires_at": _iso(row.expires_at)},
            )
        return IssuedToken(_view(row), f"{TOKEN_PREFIX}{token_id}_{secret}")

    def list(self) -> list[TokenView]:
        """Every token, revoked and expired ones too, oldest first."""
        with self.context.catalog.session(readonly=True) as session:
            rows = session.scalars(select(ApiToken).order_by(ApiToken.created_at, ApiToken.id))
            return [_view(row) for row in rows]

    def revoke(self, token_id: str) -> TokenView:
        """Revoke a token now; recorded in the audit trail.

        Raises NotFoundError for an unknown id, ConflictError for one already revoked.
        """
        now = self.context.now()
        with self.context.catalog.session() as session:
            row = session.get(ApiToken, token_id.removeprefix(TOKEN_PREFIX), with_for_update=True)
            if row is None:
                raise NotFoundError(
                    f"no API token {token_id!r}", hint="'strongroom token list' shows the ids."
                )
            if row.revoked_at is not None:
                raise ConflictError(f"API token {row.id} was revoked on {row.revoked_at:%Y-%m-%d}")
            row.revoked_at = now
            row.revoked_by = self.context.actor.name
            record(
                session,
                actor=self.context.actor,
                at=now,
                action="token.revoke",
                subject=row.id,
                details={"name": row.name, "role": row.role},
            )
            return _view(row)

    def authenticate(self, token: str, *, origin: str) -> Principal:
        """Return the principal ``token`` stands for, noting when it was used.

        ``origin`` (the client address) goes into the audit entry of a refusal. Raises
        AuthenticationError for a malformed, unknown, expired or revoked token; the
        message never contains the token.
        """
        now = self.context.now()
        parts = split_token(token)
        row_id = parts[0] if parts is not None else None
        why = "malformed token"
        if parts is not None:
            token_id, secret = parts
            with self.context.catalog.session(readonly=True) as session:
                row = session.get(ApiToken, token_id)
                found = _view(row) if row is not None else None
                stored_hash = row.secret_hash if row is not None else hash_secret("")
            # Compared even for an unknown id, so the time taken tells nothing.
            matches = hmac.compare_digest(stored_hash, hash_secret(secret))
            if found is None or not matches:
                why = "unknown token"
            elif found.state(now) != "active":
                why = f"{found.state(now)} token"
            else:
                self._note_use(found, now)
                return Principal(
                    name=f"token:{found.name}:{found.id}", role=Role(found.role), token_id=found.id
                )
        record_alone(
            self.context,
            action="api.authenticate",
            subject=row_id or "-",
            outcome=REFUSED,
            reason=why,
            actor=Actor(name="anonymous", origin=origin),
        )
        raise AuthenticationError(f"the API token was refused ({why})")

    def _note_use(self, token: TokenView, now: datetime) -> None:
        if token.last_used_at is not None and now - token.last_used_at < LAST_USED_PRECISION:
            return
        with self.context.catalog.session() as session:
            row = session.get(ApiToken, token.id)
            if row is not None:
                row.last_used_at = now
