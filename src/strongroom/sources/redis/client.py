"""How the ``redis`` source reaches a server: clients, raw pipelines, typed errors.

:class:`RedisServer` holds the resolved connection settings of one operation (the password
is resolved from its reference when the operation starts, never kept in the settings).
:func:`translating` turns redis-py's exceptions into the error tree, naming the command an
ACL user may not run. :func:`pipeline` sends many commands in one write and reads their
replies in order on one connection: redis-py's ``Pipeline`` builds several Python objects
per command, which costs more than the server's work for small keys.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, cast
from urllib.parse import unquote, urlsplit

import hiredis
import redis
import redis.exceptions

from strongroom.config.resources import RedisResource
from strongroom.config.secrets import resolve_secret
from strongroom.errors import (
    AccessDeniedError,
    NetworkError,
    ServiceUnavailableError,
    StrongroomError,
    TimeoutError_,
)

Command = Sequence[bytes | str | int]
_NOPERM_COMMAND: Final = re.compile(r"permissions? to run the '([^']+)' command")
_LOADING: Final = "LOADING"


@dataclass(frozen=True)
class RedisServer:
    """Where one server listens and how to log in (the password already resolved).

    ``host``/``port`` for TCP (``tls`` for ``rediss://``), or ``socket`` for ``unix://``.
    """

    host: str = "localhost"
    port: int = 6379
    socket: str | None = None
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    connect_timeout: float = 10.0
    timeout: float | None = 300.0

    @classmethod
    def from_settings(
        cls, settings: RedisResource, *, connect_timeout: float = 10.0
    ) -> RedisServer:
        """Resolve a resource's URL and password reference (``SecretError`` if unset)."""
        parts = urlsplit(settings.url)
        password = None if settings.password is None else resolve_secret(settings.password)
        username = settings.username
        if username is None and parts.username:
            username = unquote(parts.username)
        if parts.scheme == "unix":
            return cls(
                socket=parts.path,
                username=username,
                password=password,
                connect_timeout=connect_timeout,
            )
        return cls(
            host=parts.hostname or "localhost",
            port=parts.port or 6379,
            tls=parts.scheme == "rediss",
            username=username,
            password=password,
            connect_timeout=connect_timeout,
        )

    @property
    def address(self) -> str:
        """The server's address for messages (never the password)."""
        return self.socket if self.socket is not None else f"{self.host}:{self.port}"

    def client(self, db: int = 0) -> redis.Redis:
        """Return a redis-py client for database ``db`` (connects on first use)."""
        common: dict[str, Any] = {
            "db": db,
            "username": self.username,
            "password": self.password,
            "socket_connect_timeout": self.connect_timeout,
            "socket_timeout": self.timeout,
            "retry": None,
        }
        if self.socket is not None:
            return redis.Redis(unix_socket_path=self.socket, **common)
        return redis.Redis(host=self.host, port=self.port, ssl=self.tls, **common)

    def with_port(self, port: int, *, host: str | None = None) -> RedisServer:
        """The same login on another server (a cluster node, a scratch server)."""
        return RedisServer(
            host=host or self.host,
            port=port,
            tls=self.tls,
            username=self.username,
            password=self.password,
            connect_timeout=self.connect_timeout,
            timeout=self.timeout,
        )


def denied_command(message: str) -> str | None:
    """Return the command a ``NOPERM`` reply names (lower case), or None."""
    match = _NOPERM_COMMAND.search(message)
    return None if match is None else match.group(1).lower()


def translate(exc: redis.exceptions.RedisError, doing: str) -> StrongroomError:
    """Translate a redis-py error raised while ``doing`` into the error tree."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, redis.exceptions.AuthenticationError | redis.exceptions.AuthorizationError):
        return AccessDeniedError(
            f"{doing}: the server refused the login ({text})",
            hint="Check username and the password reference of the resource.",
        )
    if isinstance(exc, redis.exceptions.NoPermissionError):
        command = denied_command(text)
        named = f"the {command.upper()} command" if command else "a command"
        return AccessDeniedError(
            f"{doing}: the ACL user may not run {named} ({text})",
            hint=f"Allow {named} for the user (ACL SETUSER ... +{command or '<command>'})."
            if command
            else "Check the user's ACL rules (ACL GETUSER).",
        )
    if isinstance(exc, redis.exceptions.TimeoutError):
        return TimeoutError_(f"{doing}: the server did not answer in time ({text})")
    if isinstance(exc, redis.exceptions.BusyLoadingError) or text.startswith(_LOADING):
        return ServiceUnavailableError(f"{doing}: the server is loading its data ({text})")
    if isinstance(exc, redis.exceptions.ConnectionError):
        return NetworkError(f"{doing}: cannot reach the server ({text})")
    if isinstance(exc, redis.exceptions.ResponseError) and "WRONGPASS" in text:
        return AccessDeniedError(f"{doing}: the server refused the login ({text})")
    return StrongroomError(f"{doing}: {text}")


@contextmanager
def translating(doing: str) -> Iterator[None]:
    """Translate redis-py errors raised inside the block (``raise ... from exc``)."""
    try:
        yield
    except redis.exceptions.RedisError as exc:
        raise translate(exc, doing) from exc


def _pack_command(command: Command) -> bytes:
    """One command in RESP (hiredis's packer: redis-py's costs several times more per key)."""
    # hiredis's stub types the argument as a 1-tuple; it takes any length.
    return bytes(hiredis.pack_command(cast(Any, tuple(command))))


class _RawConnection(Protocol):
    """The part of a redis-py connection :func:`pipeline` uses (untyped in redis-py)."""

    def send_packed_command(self, command: list[bytes], check_health: bool = True) -> None: ...

    def read_response(self, disable_decoding: bool = False) -> Any: ...

    def disconnect(self) -> None: ...


class RawPipe:
    """One connection on which commands are sent and their replies read separately.

    Sending the next batch before reading (or handling) the previous one's replies keeps
    the server busy while Python works. Error replies come back in their place as
    ``ResponseError`` values, never raised; connection errors raise redis-py's exceptions
    (the connection is then dropped, not reused).
    """

    def __init__(self, connection: _RawConnection) -> None:
        self._connection = connection

    def send(self, commands: Sequence[Command]) -> None:
        """Send ``commands`` in one write."""
        self._connection.send_packed_command([b"".join(map(_pack_command, commands))])

    def receive(self, count: int) -> list[Any]:
        """Read the next ``count`` replies."""
        replies: list[Any] = []
        read = self._connection.read_response
        for _ in range(count):
            try:
                replies.append(read(disable_decoding=True))
            except redis.exceptions.ResponseError as error:
                replies.append(error)
        return replies


@contextmanager
def raw_pipe(client: redis.Redis) -> Iterator[RawPipe]:
    """Hold one connection of ``client`` as a :class:`RawPipe` for the block."""
    pool = client.connection_pool
    pooled = pool.get_connection()
    connection = cast(_RawConnection, pooled)
    try:
        yield RawPipe(connection)
    except BaseException:
        connection.disconnect()
        raise
    finally:
        pool.release(pooled)


def pipeline(client: redis.Redis, commands: Sequence[Command]) -> list[Any]:
    """Send ``commands`` in one write on one connection; return the replies in order.

    An error reply is returned in its place (a ``ResponseError``), never raised, so the
    caller decides per command; connection errors raise redis-py's exceptions.
    """
    with raw_pipe(client) as pipe:
        pipe.send(commands)
        return pipe.receive(len(commands))
