"""How the ``mysql`` source reaches a server: connections, client tools, typed errors.

:class:`MyServer` holds the resolved connection settings of one operation (the password is
resolved from its reference when the operation starts). Client tools (``mariadb-dump`` or
``mysqldump``, ``mariadb`` or ``mysql``) get host, port or socket and user as options and
the password as ``MYSQL_PWD`` in their environment, never in argv. Server errors carry a
numeric code in every client (``ERROR 1045 (28000)``, ``Got error: 2003:``, PyMySQL's
``args[0]``); :func:`error_for_code` maps the codes to the error tree.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pymysql
import pymysql.connections

from strongroom.config.resources import MysqlResource
from strongroom.config.secrets import resolve_secret
from strongroom.errors import (
    AccessDeniedError,
    InsufficientStorageError,
    NetworkError,
    NotFoundError,
    ServiceUnavailableError,
    StrongroomError,
    TimeoutError_,
    ToolError,
)
from strongroom.sources import gateway

if TYPE_CHECKING:
    Connection = pymysql.connections.Connection[Any]
else:  # the class is generic only in its type stubs
    Connection = pymysql.connections.Connection

CLIENT_PACKAGE: Final = "mariadb-client"
DUMP_TOOLS: Final = ("mariadb-dump", "mysqldump")
CLIENT_TOOLS: Final = ("mariadb", "mysql")

_CODE: Final = re.compile(r"(?:ERROR |Got error: |error: |^)(\d{4})\b")
_ACCESS: Final = frozenset({1044, 1045, 1142, 1143, 1227, 1370, 1698, 1862})
_NOT_FOUND: Final = frozenset({1049, 1146, 1305})
_NETWORK: Final = frozenset({2002, 2003, 2004, 2005, 2006, 2013, 2026, 2055})
_BUSY: Final = frozenset({1040, 1203, 1053})
_TIMEOUT: Final = frozenset({1205, 3024})
_STORAGE: Final = frozenset({1021, 1114, 3})
_SANDBOX_REFUSED: Final = re.compile(r"Unknown command '\\-'")


def quote_name(name: str) -> str:
    """Quote an identifier with backticks (a backtick inside is doubled)."""
    return "`" + name.replace("`", "``") + "`"


def error_for_code(code: int, message: str) -> StrongroomError | None:
    """Return the typed error a MySQL/MariaDB error code means, or None."""
    if code in _ACCESS:
        return AccessDeniedError(message)
    if code in _NOT_FOUND:
        return NotFoundError(message)
    if code in _NETWORK:
        return NetworkError(message)
    if code in _BUSY:
        return ServiceUnavailableError(message)
    if code in _TIMEOUT:
        return TimeoutError_(message)
    if code in _STORAGE:
        return InsufficientStorageError(message)
    return None


def classify_text(text: str, doing: str) -> StrongroomError | None:
    """Map a client tool's stderr to a typed error (by error code), or None."""
    for line in (line.strip() for line in text.splitlines()):
        if _SANDBOX_REFUSED.search(line):
            return ToolError(
                f"{doing}: {line}",
                retryable=False,
                hint="The client does not know MariaDB's sandbox line; strongroom strips it "
                "for clients without --sandbox, so report this as a bug.",
            )
        match = _CODE.search(line)
        if match is not None:
            typed = error_for_code(int(match.group(1)), f"{doing}: {line}")
            if typed is not None:
                return typed
    return None


def classifier(doing: str) -> gateway.Classifier:
    """A gateway classifier: typed errors by code, else a ``ToolError`` with the stderr."""

    def classify(returncode: int, stderr: str) -> StrongroomError:
        label = f"{doing} (exit code {returncode})"
        typed = classify_text(stderr, label)
        if typed is not None:
            return typed
        lines = [line.strip() for line in stderr.splitlines() if line.strip()]
        return ToolError(f"{label}: {' | '.join(lines[-3:]) or 'no error output'}")

    return classify


def translate(exc: pymysql.MySQLError, doing: str) -> StrongroomError:
    """Translate a PyMySQL error into the error tree."""
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else 0
    message = f"{doing}: {exc.args[1] if len(exc.args) > 1 else exc}"
    typed = error_for_code(code, f"{message} (error {code})")
    if typed is not None:
        return typed
    if isinstance(exc, pymysql.OperationalError) and code >= 2000:
        return NetworkError(message)
    return StrongroomError(f"{message} (error {code})")


@contextmanager
def translating(doing: str) -> Iterator[None]:
    """Translate PyMySQL errors raised inside the block (see :func:`translate`)."""
    try:
        yield
    except pymysql.MySQLError as exc:
        raise translate(exc, doing) from exc


@dataclass(frozen=True)
class MyServer:
    """The resolved connection settings of one operation against one server."""

    host: str
    port: int
    socket: str | None
    user: str
    password: str | None = field(repr=False)
    connect_timeout: int
    bindir: Path | None

    @classmethod
    def from_settings(
        cls, settings: MysqlResource, *, connect_timeout: int, bindir: Path | None
    ) -> MyServer:
        """Resolve the password reference now (raises ``SecretError`` if it does not)."""
        return cls(
            host=settings.host,
            port=settings.port,
            socket=str(settings.socket) if settings.socket else None,
            user=settings.user,
            password=resolve_secret(settings.password) if settings.password else None,
            connect_timeout=connect_timeout,
            bindir=bindir,
        )

    @property
    def address(self) -> str:
        """Where the server is, for messages."""
        return self.socket or f"{self.host}:{self.port}"

    @property
    def secrets(self) -> list[str]:
        """Values the gateway must mask."""
        return [self.password] if self.password else []

    def environment(self) -> dict[str, str]:
        """The password for a client tool (``MYSQL_PWD``), when there is one."""
        return {"MYSQL_PWD": self.password} if self.password else {}

    def client_options(self, *, timeout: bool = False) -> list[str]:
        """Where and as whom a client tool connects (no secret).

        ``timeout`` adds ``--connect-timeout`` (the ``mariadb`` client knows it, the dump
        tool does not).
        """
        where = (
            [f"--socket={self.socket}", "--protocol=SOCKET"]
            if self.socket
            else [f"--host={self.host}", f"--port={self.port}", "--protocol=TCP"]
        )
        options = [*where, f"--user={self.user}"]
        if timeout:
            options.append(f"--connect-timeout={self.connect_timeout}")
        return options

    def tool(self, names: tuple[str, ...]) -> str:
        """Return the first of ``names`` found in ``bindir`` (when set) or on PATH.

        Raises ``ToolError`` naming the Debian package when none is there.
        """
        hint = (
            f"Install the client tools (Debian: apt-get install {CLIENT_PACKAGE}) or set "
            f"bindir to the folder holding {' or '.join(names)}."
        )
        for name in names:
            if self.bindir is not None:
                if (self.bindir / name).is_file():
                    return str(self.bindir / name)
                continue
            try:
                return gateway.find_tool(name, hint=hint)
            except ToolError:
                continue
        where = f"in {self.bindir}" if self.bindir is not None else "on PATH"
        raise ToolError(f"none of {', '.join(names)} is installed {where}", hint=hint)

    def connect(self, database: str | None = None) -> Connection:
        """Open a PyMySQL connection (utf8mb4, autocommit); raises typed errors."""
        options: dict[str, Any] = {
            "user": self.user,
            "password": self.password or "",
            "database": database,
            "charset": "utf8mb4",
            "autocommit": True,
            "connect_timeout": self.connect_timeout,
        }
        if self.socket:
            options["unix_socket"] = self.socket
        else:
            options.update(host=self.host, port=self.port)
        try:
            return pymysql.connect(**options)
        except pymysql.MySQLError as exc:
            raise translate(exc, f"connecting to {self.address}") from exc
