"""An RDB snapshot read through Redis's replication protocol, as ``redis-cli --rdb`` does.

redis-py has no API for this (a replica's side of the protocol is not a command with a
reply: after ``PSYNC`` the server sends keep-alive newlines while it forks and saves, then
the RDB as a bulk of a stated length or, with diskless replication, as a stream closed by
a 40-byte end marker). So :class:`ReplicaLink` speaks it on its own socket:

1. ``AUTH`` (user and password), ``REPLCONF capa eof`` (we read the diskless format) and
   ``REPLCONF rdb-only 1`` (Redis 7: the server closes the link after the RDB instead of
   going on with the replication stream; refused by older servers, which is harmless);
2. ``PSYNC ? -1``: the server answers ``+FULLRESYNC <replication id> <offset>``, the
   consistency point of the snapshot;
3. the payload: ``$<length>\\r\\n`` then that many bytes, or ``$EOF:<mark>\\r\\n`` then
   bytes up to the 40-byte mark.

A server that refuses PSYNC (an ACL user without it, a managed service that renamed or
disabled it) raises :class:`SnapshotRefusedError`, whose hint says to use logical mode.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Final

from strongroom.errors import (
    AccessDeniedError,
    IntegrityError,
    NetworkError,
    SnapshotRefusedError,
    StrongroomError,
    TimeoutError_,
)
from strongroom.sources.redis.client import RedisServer, denied_command

BLOCK_SIZE: Final = 1024 * 1024
_MARK_SIZE: Final = 40
_LOGICAL_HINT: Final = (
    "Set mode: logical for this resource (key by key, as managed services allow), or "
    "fallback_to_logical: true to do that whenever the snapshot is refused."
)


@dataclass(frozen=True)
class FullResync:
    """The consistency point the server announced for the snapshot."""

    replication_id: str
    offset: int


def _encode(*parts: bytes | str) -> bytes:
    items = [part.encode() if isinstance(part, str) else part for part in parts]
    out = [f"*{len(items)}\r\n".encode()]
    for item in items:
        out += [f"${len(item)}\r\n".encode(), item, b"\r\n"]
    return b"".join(out)


class ReplicaLink:
    """One connection acting as a replica that only wants the RDB; use it as a context."""

    def __init__(self, server: RedisServer) -> None:
        self.server = server
        self._socket: socket.socket | None = None
        self._buffer = bytearray()

    def __enter__(self) -> ReplicaLink:
        where = f"connecting to {self.server.address}"
        try:
            if self.server.socket is not None:
                raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                raw.settimeout(self.server.connect_timeout)
                raw.connect(self.server.socket)
            else:
                raw = socket.create_connection(
                    (self.server.host, self.server.port), timeout=self.server.connect_timeout
                )
            if self.server.tls:
                raw = ssl.create_default_context().wrap_socket(
                    raw, server_hostname=self.server.host
                )
            raw.settimeout(self.server.timeout)
        except TimeoutError as exc:
            raise TimeoutError_(f"{where}: no answer in time") from exc
        except OSError as exc:
            raise NetworkError(f"{where}: {exc.strerror or exc}") from exc
        self._socket = raw
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    # -- the wire --------------------------------------------------------------------------

    def _receive(self) -> bytes:
        assert self._socket is not None  # noqa: S101 - used inside the context only
        try:
            data = self._socket.recv(BLOCK_SIZE)
        except TimeoutError as exc:
            raise TimeoutError_(f"reading from {self.server.address}: no data in time") from exc
        except OSError as exc:
            raise NetworkError(f"reading from {self.server.address}: {exc}") from exc
        if not data:
            raise NetworkError(f"{self.server.address} closed the connection")
        return data

    def _send(self, data: bytes) -> None:
        assert self._socket is not None  # noqa: S101 - used inside the context only
        try:
            self._socket.sendall(data)
        except OSError as exc:
            raise NetworkError(f"writing to {self.server.address}: {exc}") from exc

    def _line(self) -> bytes:
        """The next reply line without CRLF; keep-alive newlines before it are skipped."""
        while True:
            while self._buffer[:1] == b"\n":
                del self._buffer[:1]
            end = self._buffer.find(b"\r\n")
            if end >= 0:
                line = bytes(self._buffer[:end])
                del self._buffer[: end + 2]
                return line
            self._buffer += self._receive()

    def _command(self, *parts: bytes | str) -> bytes:
        self._send(_encode(*parts))
        return self._line()

    # -- the protocol ----------------------------------------------------------------------

    def start(self) -> FullResync:
        """Log in and ask for a full resynchronisation; return its consistency point.

        Raises ``AccessDeniedError`` for a refused login, :class:`SnapshotRefusedError`
        when PSYNC or REPLCONF is refused (naming the command), typed network errors.
        """
        if self.server.password is not None:
            login = [self.server.username] if self.server.username else []
            reply = self._command("AUTH", *login, self.server.password)
            if not reply.startswith(b"+"):
                raise AccessDeniedError(
                    f"logging in to {self.server.address}: {reply[1:].decode(errors='replace')}",
                    hint="Check username and the password reference of the resource.",
                )
        self._refused_if_error(self._command("REPLCONF", "capa", "eof", "capa", "psync2"))
        self._command("REPLCONF", "rdb-only", "1")  # Redis 7+; older servers refuse: fine
        reply = self._command("PSYNC", "?", "-1")
        self._refused_if_error(reply)
        words = reply.decode(errors="replace").split()
        if len(words) != 3 or words[0] != "+FULLRESYNC":
            raise SnapshotRefusedError(
                f"{self.server.address} answered PSYNC with {reply[:80]!r}, not FULLRESYNC",
                hint=_LOGICAL_HINT,
            )
        return FullResync(replication_id=words[1], offset=int(words[2]))

    def _refused_if_error(self, reply: bytes) -> None:
        if not reply.startswith(b"-"):
            return
        text = reply[1:].decode(errors="replace")
        command = denied_command(text)
        if command is not None:
            raise SnapshotRefusedError(
                f"{self.server.address} refuses a snapshot: the ACL user may not run the "
                f"{command.upper()} command ({text})",
                hint=_LOGICAL_HINT,
            )
        if text.startswith(("NOAUTH", "WRONGPASS")):
            raise AccessDeniedError(f"logging in to {self.server.address}: {text}")
        raise SnapshotRefusedError(
            f"{self.server.address} refuses a snapshot: {text}", hint=_LOGICAL_HINT
        )

    def payload(self) -> Iterator[bytes]:
        """Yield the RDB's bytes in blocks. Raises ``IntegrityError`` if the link ends early."""
        header = self._line()
        if not header.startswith(b"$"):
            self._refused_if_error(header)
            raise StrongroomError(f"unexpected reply before the RDB: {header[:80]!r}")
        if header.startswith(b"$EOF:"):
            yield from self._until_mark(header[5:])
        else:
            yield from self._counted(int(header[1:]))

    def _counted(self, length: int) -> Iterator[bytes]:
        remaining = length
        try:
            while remaining:
                if not self._buffer:
                    self._buffer += self._receive()
                block = bytes(self._buffer[:remaining])
                del self._buffer[: len(block)]
                remaining -= len(block)
                yield block
        except NetworkError as exc:
            raise IntegrityError(
                f"the RDB from {self.server.address} ended after {length - remaining} of "
                f"{length} bytes: {exc}",
                retryable=True,
            ) from exc

    def _until_mark(self, mark: bytes) -> Iterator[bytes]:
        if len(mark) != _MARK_SIZE:
            raise StrongroomError(f"a diskless RDB end mark of {len(mark)} bytes")
        # Hold back the last 40 bytes: they may be (part of) the end mark.
        held = bytes(self._buffer)
        self._buffer.clear()
        try:
            while True:
                if held.endswith(mark):
                    if len(held) > _MARK_SIZE:
                        yield held[:-_MARK_SIZE]
                    return
                if len(held) > _MARK_SIZE:
                    yield held[:-_MARK_SIZE]
                    held = held[-_MARK_SIZE:]
                held += self._receive()
        except NetworkError as exc:
            raise IntegrityError(
                f"the diskless RDB from {self.server.address} ended before its end mark: {exc}",
                retryable=True,
            ) from exc
