"""The metrics endpoint: Prometheus' text exposition over HTTP, on an address of choice.

Kept apart from the collector so the REST API can mount the same registry instead
(:func:`exposition` gives the text and its content type).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest, start_http_server
from prometheus_client.registry import CollectorRegistry

from strongroom.errors import ConfigError


def parse_address(address: str) -> tuple[str, int]:
    """Return (host, port) of ``HOST:PORT`` (``[::1]:9464`` for IPv6).

    Raises ConfigError naming the expected form.
    """
    host, separator, port = address.rpartition(":")
    host = host.strip("[]")
    if not separator or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(
            f"a metrics address is HOST:PORT (for example 127.0.0.1:9464), not {address!r}"
        )
    return host, int(port)


def exposition(registry: CollectorRegistry) -> tuple[bytes, str]:
    """Return the registry's metrics in the text exposition format and its content type."""
    return generate_latest(registry), CONTENT_TYPE_LATEST


@dataclass
class MetricsServer:
    """A running endpoint; :meth:`stop` shuts it down."""

    server: WSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        """The port it listens on (useful with port 0)."""
        return int(self.server.server_address[1])

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def serve_metrics(registry: CollectorRegistry, address: str) -> MetricsServer:
    """Serve ``registry`` at ``http://ADDRESS/metrics`` in a background thread.

    Raises ConfigError for a malformed address or one that cannot be bound.
    """
    host, port = parse_address(address)
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as error:
        raise ConfigError(f"cannot serve metrics on {address}: {error.strerror}") from error
    return MetricsServer(server, thread)
