"""Serving the API with uvicorn on a thread of the daemon's process.

Off by default. A loopback address (``127.0.0.1:8470``, ``[::1]:8470``, ``localhost``) is
served as asked; any other address is refused unless the operator says ``allow_remote``,
and then should come with TLS (``tls_cert``/``tls_key``) or sit behind a reverse proxy
that terminates TLS (see ``docs/api.md``, "Deployment").
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import uvicorn
from fastapi import FastAPI

from strongroom.errors import ConfigError
from strongroom.logs import get_logger

_logger = get_logger(__name__)
START_TIMEOUT_SECONDS: Final = 30.0


def parse_api_address(address: str) -> tuple[str, int]:
    """Return (host, port) of ``HOST:PORT`` (``[::1]:8470`` for IPv6).

    Raises ConfigError naming the expected form.
    """
    host, separator, port = address.rpartition(":")
    host = host.strip("[]")
    if not separator or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError(
            f"an API address is HOST:PORT (for example 127.0.0.1:8470), not {address!r}"
        )
    return host, int(port)


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (an address of 127/8, ::1, or localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_api_address(
    address: str, *, allow_remote: bool, tls_cert: Path | None, tls_key: Path | None
) -> tuple[str, int]:
    """Return (host, port) to serve on, after the rules of the module docstring.

    Raises ConfigError for a malformed address, a non-loopback one without
    ``allow_remote``, or a TLS certificate without its key (or the other way round).
    """
    host, port = parse_api_address(address)
    if (tls_cert is None) != (tls_key is None):
        raise ConfigError("TLS needs both a certificate file and its key file")
    if not is_loopback(host) and not allow_remote:
        raise ConfigError(
            f"the API address {address} is reachable from other machines",
            hint="Serve on 127.0.0.1 behind a TLS reverse proxy, or pass --allow-remote "
            "(with --tls-cert-file and --tls-key-file) to accept it.",
        )
    return host, port


def _bind(host: str, port: int, address: str) -> socket.socket:
    """Bind the listening socket here, so a bad address is a ConfigError, not an exit."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(2048)
    except OSError as error:
        listener.close()
        raise ConfigError(f"cannot serve the API on {address}: {error.strerror}") from error
    return listener


def _route_uvicorn_logs() -> None:
    """Send uvicorn's logs (errors, the access log) through strongroom's one handler, at
    its level, masked like every other line."""
    ours = logging.getLogger("strongroom")
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers = list(ours.handlers)
        logger.setLevel(ours.level)
        logger.propagate = False


@dataclass
class ApiServer:
    """A running API server; :meth:`stop` shuts it down."""

    server: uvicorn.Server
    thread: threading.Thread

    @property
    def port(self) -> int:
        """The port it listens on (useful with port 0)."""
        sockets = self.server.servers[0].sockets
        return int(sockets[0].getsockname()[1])

    def stop(self) -> None:
        """Stop accepting requests, finish the ones in flight (briefly) and return."""
        self.server.should_exit = True
        self.thread.join(timeout=10)


def serve_api(
    app: FastAPI,
    address: str,
    *,
    allow_remote: bool = False,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
) -> ApiServer:
    """Serve ``app`` on ``address`` in a background thread; return once it listens.

    Raises ConfigError for an address refused by :func:`check_api_address` or one that
    cannot be bound.
    """
    host, port = check_api_address(
        address, allow_remote=allow_remote, tls_cert=tls_cert, tls_key=tls_key
    )
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,  # strongroom.logs configures logging; uvicorn's loggers propagate
        lifespan="off",
        ssl_certfile=str(tls_cert) if tls_cert else None,
        ssl_keyfile=str(tls_key) if tls_key else None,
        timeout_graceful_shutdown=5,
    )
    listener = _bind(host, port, address)
    _route_uvicorn_logs()
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [listener]}, name="strongroom-api", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    if not server.started:
        server.should_exit = True
        thread.join(timeout=5)
        listener.close()
        raise ConfigError(f"the API server on {address} did not start; see the log")
    _logger.info("API listening", extra={"address": address})
    return ApiServer(server, thread)
