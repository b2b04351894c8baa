"""A scratch Redis server strongroom starts for a restore test (or to read an RDB).

:func:`scratch_server` starts ``redis-server`` (through the subprocess gateway) on a free
loopback port, with its data folder in the operation's scratch folder, a random password
and persistence off. Given an RDB file it starts from it, so the server's own loader
checks the file (its CRC64 included) and the keys can then be read like any server's.
The server is shut down (``SHUTDOWN NOSAVE``) on every path out of the block.
"""

from __future__ import annotations

import re
import secrets
import shutil
import socket
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Final

import redis
import redis.exceptions

from strongroom.errors import IntegrityError, ServiceUnavailableError, UnsupportedError
from strongroom.sources import gateway
from strongroom.sources.base import SourceContext
from strongroom.sources.redis.client import RedisServer

SERVER_TOOL: Final = "redis-server"
DUMP_FILE: Final = "dump.rdb"
_POLL_SECONDS: Final = 0.05
_BAD_RDB: Final = ("Bad file format", "Wrong RDB checksum", "Short read", "Fatal error loading")
_NEWER_RDB: Final = "Can't handle RDB format version"
_PORT_TAKEN: Final = "Could not create server TCP listening socket"


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _major_version(tool: str) -> int:
    """The major version of a redis-server binary (``Redis server v=7.0.15 ...``)."""
    _, output = gateway.run([tool, "--version"], timeout=30)
    match = re.search(rb"v=(\d+)\.", output)
    return int(match.group(1)) if match else 0


def _log_problem(log_path: Path, rdb: Path | None) -> None:
    """Raise the typed error a scratch server's log shows, if it shows one."""
    try:
        text = log_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return
    for line in text.splitlines():
        if _PORT_TAKEN in line:
            raise ServiceUnavailableError(f"the scratch redis-server could not listen: {line}")
        if _NEWER_RDB in line:
            raise UnsupportedError(
                f"the scratch redis-server cannot read the RDB: {line.strip()}",
                hint="Run the restore test where a redis-server at least as new as the "
                "backed-up server is installed.",
            )
        if rdb is not None and any(marker in line for marker in _BAD_RDB):
            raise IntegrityError(f"the RDB {rdb.name} does not load: {line.strip()}")


@contextmanager
def scratch_server(
    context: SourceContext,
    *,
    rdb: Path | None = None,
    start_timeout: float = 600.0,
    settings: Sequence[str] = (),
    password: str | None = None,
) -> Iterator[RedisServer]:
    """Start a scratch server (from ``rdb`` when given); yield how to reach it.

    ``settings`` are more configuration lines (``name value``) for the server;
    ``password`` is its password (default: a random one).

    ``rdb`` is moved into the server's folder. Raises ``ToolError`` when redis-server is
    not installed, ``IntegrityError`` when the RDB does not load, ``UnsupportedError``
    when its version is too new for the local server, ``ServiceUnavailableError`` when
    the server does not answer within ``start_timeout`` seconds.
    """
    tool = gateway.find_tool(
        SERVER_TOOL, hint="Install redis-server (apt-get install redis-server) for restore tests."
    )
    folder = Path(context.scratch) / f"redis-scratch-{secrets.token_hex(4)}"
    folder.mkdir(mode=0o700, parents=True)
    if rdb is not None:
        shutil.move(rdb, folder / DUMP_FILE)
    password = password or secrets.token_urlsafe(24)
    # DEBUG DIGEST-VALUE compares values whatever their encoding (see compare.py); from
    # Redis 7 DEBUG is off unless enabled, before it the option does not exist.
    debug = ["enable-debug-command local"] if _major_version(tool) >= 7 else []
    port = free_port()
    log_path = folder / "redis.log"
    config = folder / "redis.conf"
    config.write_text(
        "\n".join(
            [
                "bind 127.0.0.1",
                f"port {port}",
                "protected-mode yes",
                "daemonize no",
                f"dir {folder}",
                f"dbfilename {DUMP_FILE}",
                f"logfile {log_path}",
                'save ""',
                "appendonly no",
                "databases 16",
                *debug,
                *settings,
                f"requirepass {password}",
                "",
            ]
        ),
        encoding="utf-8",
    )
    config.chmod(0o600)
    server = RedisServer(host="127.0.0.1", port=port, password=password, timeout=None)
    with gateway.ToolStream([tool, str(config)], cancel=context.cancel) as output:
        del output  # logs go to the log file; the gateway drains stdout at the end
        client = server.client()
        try:
            _wait_until_ready(client, log_path, rdb, start_timeout, context)
            yield server
        finally:
            _shut_down(client)


def _shut_down(client: redis.Redis) -> None:
    """SHUTDOWN NOSAVE; raise when the server may still run (the gateway then kills it)."""
    try:
        client.shutdown(nosave=True)
    except redis.exceptions.AuthenticationError as exc:
        raise ServiceUnavailableError("the scratch redis-server refused SHUTDOWN") from exc
    except redis.exceptions.ConnectionError:
        pass  # it is gone: the connection dropped as it exited
    except redis.exceptions.RedisError as exc:
        raise ServiceUnavailableError("the scratch redis-server refused SHUTDOWN") from exc
    finally:
        client.close()


def _wait_until_ready(
    client: redis.Redis,
    log_path: Path,
    rdb: Path | None,
    start_timeout: float,
    context: SourceContext,
) -> None:
    deadline = time.monotonic() + start_timeout
    while True:
        context.check_cancelled()
        try:
            client.ping()
            return
        except (redis.exceptions.ConnectionError, redis.exceptions.BusyLoadingError):
            _log_problem(log_path, rdb)
            if time.monotonic() > deadline:
                raise ServiceUnavailableError(
                    f"the scratch redis-server did not answer within {start_timeout:.0f} s; "
                    f"its log is {log_path}"
                ) from None
            time.sleep(_POLL_SECONDS)
