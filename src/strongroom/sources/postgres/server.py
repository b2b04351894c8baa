"""How the ``postgres`` source reaches a server: connections, client tools, typed errors.

:class:`PgServer` holds the resolved connection settings of one operation (the password
is resolved from its reference when the operation starts, never stored in the source).
Client tools get them as libpq environment variables (``PGPASSWORD`` never in argv) and
the database as a quoted conninfo string, so a database name is never parsed as a
connection string. :func:`classify` turns libpq, ``pg_dump`` and ``pg_restore`` messages
into the error tree; :func:`translate` does the same for psycopg exceptions.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import psycopg
from psycopg.conninfo import make_conninfo
from psycopg.rows import TupleRow

from strongroom.config.resources import PostgresResource
from strongroom.config.secrets import resolve_secret
from strongroom.errors import (
    AccessDeniedError,
    InsufficientStorageError,
    NetworkError,
    NotFoundError,
    ServiceUnavailableError,
    StrongroomError,
    ToolError,
)
from strongroom.sources import gateway

Connection = psycopg.Connection[TupleRow]

CLIENT_PACKAGE: Final = "postgresql-client"
_VERSION: Final = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")


def _mismatch(message: str) -> StrongroomError:
    return ToolError(
        message,
        retryable=False,
        hint="pg_dump must be as new as the server: install the client tools of the server's "
        "major version or newer (Debian: postgresql-client-<major>) and set bindir to them.",
    )


def _missing_role(message: str) -> StrongroomError:
    return ToolError(
        message,
        retryable=False,
        hint="Restore the roles first (roles: true) or restore without owners (no_owner: true).",
    )


_RULES: Final[tuple[tuple[re.Pattern[str], Callable[[str], StrongroomError]], ...]] = (
    (re.compile(r"server version mismatch", re.I), _mismatch),
    (
        re.compile(
            r"password authentication failed|no password supplied|authentication failed for"
            r"|FATAL:\s+role \".*\" does not exist|pg_hba\.conf rejects",
            re.I,
        ),
        AccessDeniedError,
    ),
    (re.compile(r"permission denied|must be (?:superuser|owner)", re.I), AccessDeniedError),
    (re.compile(r"database \".*\" does not exist", re.I), NotFoundError),
    (re.compile(r"ERROR:\s+role \".*\" does not exist", re.I), _missing_role),
    (
        re.compile(
            r"the database system is (?:starting up|shutting down|in recovery mode)"
            r"|too many clients|remaining connection slots are reserved",
            re.I,
        ),
        ServiceUnavailableError,
    ),
    (re.compile(r"No space left on device|could not extend file", re.I), InsufficientStorageError),
    (
        re.compile(
            r"Connection refused|could not translate host name|timeout expired|timed out"
            r"|No route to host|Network is unreachable|server closed the connection unexpectedly"
            r"|could not connect to server|Is the server running|SSL SYSCALL error"
            r"|connection to server was lost|terminating connection due to administrator command",
            re.I,
        ),
        NetworkError,
    ),
)


def classify_text(text: str, doing: str) -> StrongroomError | None:
    """Return the typed error a libpq / tool message means, or None when none applies.

    The message names what was being done and the line that matched (secrets are
    already masked by the gateway or never part of libpq messages).
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for pattern, make in _RULES:
        for line in lines:
            if pattern.search(line):
                return make(f"{doing}: {line}")
    return None


def error_summary(stderr: str, limit: int = 3) -> str:
    """The informative part of a tool's stderr: its ``error:`` lines and the command shown."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    picked = [
        line[:300]
        for line in lines
        if "error:" in line.lower() or line.startswith(("Command was:", "DETAIL:", "CONTEXT:"))
    ]
    chosen = picked[:limit] or lines[-1:] or ["no error output"]
    return " | ".join(chosen)


def classifier(doing: str) -> gateway.Classifier:
    """Return a gateway classifier for a tool run described by ``doing``.

    Known messages become typed errors; anything else a ``ToolError`` quoting the tool's
    error lines (not just its last line, which for pg_restore is often a summary).
    """

    def classify(returncode: int, stderr: str) -> StrongroomError:
        label = f"{doing} (exit code {returncode})"
        typed = classify_text(stderr, label)
        if typed is not None:
            return typed
        return ToolError(f"{label}: {error_summary(stderr)}")

    return classify


def translate(exc: psycopg.Error, doing: str) -> StrongroomError:
    """Translate a psycopg error into the error tree (a plain StrongroomError if unknown)."""
    text = str(exc)
    typed = classify_text(text, doing)
    if typed is not None:
        return typed
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return AccessDeniedError(f"{doing}: {text}")
    if isinstance(exc, psycopg.OperationalError):
        return NetworkError(f"{doing}: {text}")
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return StrongroomError(f"{doing}: {first}")


@contextmanager
def translating(doing: str) -> Iterator[None]:
    """Translate psycopg errors raised inside the block (see :func:`translate`)."""
    try:
        yield
    except psycopg.Error as exc:
        raise translate(exc, doing) from exc


def tool_version(output: str) -> tuple[int, int]:
    """Return (major, minor) from ``pg_dump --version`` style output; (0, 0) if unknown."""
    match = _VERSION.search(output)
    if match is None:
        return (0, 0)
    return (int(match.group(1)), int(match.group(2) or 0))


def server_version_text(number: int) -> str:
    """Turn ``server_version_num`` (150018) into ``"15.18"`` (``"9.6.24"`` before 10)."""
    if number >= 100000:
        return f"{number // 10000}.{number % 10000}"
    return f"{number // 10000}.{number // 100 % 100}.{number % 100}"


@dataclass(frozen=True)
class PgServer:
    """The resolved connection settings of one operation against one server."""

    host: str
    port: int
    user: str
    password: str | None = field(repr=False)
    sslmode: str | None
    connect_timeout: int
    maintenance_database: str
    bindir: Path | None

    @classmethod
    def from_settings(
        cls,
        settings: PostgresResource,
        *,
        connect_timeout: int,
        maintenance_database: str,
        bindir: Path | None,
    ) -> PgServer:
        """Resolve the password reference now (raises ``SecretError`` if it does not)."""
        password = resolve_secret(settings.password) if settings.password else None
        return cls(
            host=settings.host,
            port=settings.port,
            user=settings.user,
            password=password,
            sslmode=settings.sslmode,
            connect_timeout=connect_timeout,
            maintenance_database=maintenance_database,
            bindir=bindir,
        )

    @property
    def address(self) -> str:
        """Where the server is, for messages: ``host:port``."""
        return f"{self.host}:{self.port}"

    @property
    def secrets(self) -> list[str]:
        """Values the gateway must mask."""
        return [self.password] if self.password else []

    def environment(self) -> dict[str, str]:
        """libpq variables for a client tool: host, port, user, password, sslmode, timeout."""
        env = {
            "PGHOST": self.host,
            "PGPORT": str(self.port),
            "PGUSER": self.user,
            "PGCONNECT_TIMEOUT": str(self.connect_timeout),
            "PGAPPNAME": "strongroom",
        }
        if self.password:
            env["PGPASSWORD"] = self.password
        if self.sslmode:
            env["PGSSLMODE"] = self.sslmode
        return env

    @staticmethod
    def conninfo(database: str) -> str:
        """A conninfo string naming only the database, quoted (for ``--dbname``)."""
        return make_conninfo(dbname=database)

    def tool(self, name: str) -> str:
        """Return the path of a client tool (from ``bindir`` when set, else PATH).

        Raises ``ToolError`` naming the Debian package when it is missing.
        """
        hint = (
            f"Install the PostgreSQL client tools (Debian: apt-get install {CLIENT_PACKAGE}-<major>"
            f" matching the server) or set bindir to the folder holding {name}."
        )
        if self.bindir is not None:
            candidate = self.bindir / name
            if candidate.is_file():
                return str(candidate)
            raise ToolError(
                f"the external tool {name!r} is not in {self.bindir}", hint=hint, retryable=False
            )
        return gateway.find_tool(name, hint=hint)

    def connect(self, database: str, *, autocommit: bool = False) -> Connection:
        """Open a psycopg connection to ``database``; raises typed errors."""
        try:
            return psycopg.connect(
                host=self.host,
                port=self.port,
                user=self.user,
                password=self.password,
                dbname=database,
                sslmode=self.sslmode,
                connect_timeout=self.connect_timeout,
                application_name="strongroom",
                autocommit=autocommit,
            )
        except psycopg.Error as exc:
            raise translate(exc, f"connecting to {database!r} on {self.address}") from exc
