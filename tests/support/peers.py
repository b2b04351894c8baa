"""Real peers for notification tests: an SMTP server (aiosmtpd) and an HTTP endpoint.

Both run in-process on free loopback ports and record what they received, so a test
reads the emails (and parses their HTML) and the JSON posted to webhook and PagerDuty
URLs. The HTTP endpoint answers each path with a status the test may change (500 to
make a channel fail).
"""

from __future__ import annotations

import email
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


def free_port() -> int:
    """Return a loopback TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Mailbox:
    """What the SMTP server received, as parsed messages."""

    port: int
    messages: list[EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        parsed = email.message_from_bytes(content, policy=default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 OK"


@pytest.fixture
def smtp_server() -> Iterator[Mailbox]:
    """An SMTP server on a free loopback port; yields its mailbox."""
    mailbox = Mailbox(port=free_port())
    controller = Controller(mailbox, hostname="127.0.0.1", port=mailbox.port)
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()


@dataclass
class Endpoint:
    """What the HTTP endpoint received: (path, headers, JSON body) per POST, and (path,
    headers, None) per GET."""

    port: int
    received: list[tuple[str, dict[str, str], Any]] = field(default_factory=list)
    status: dict[str, int] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def bodies(self, path: str) -> list[Any]:
        return [body for where, _, body in self.received if where == path]


@pytest.fixture
def http_endpoint() -> Iterator[Endpoint]:
    """An HTTP server on a free loopback port recording every POST and GET; yields the record."""
    endpoint = Endpoint(port=0)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"null")
            endpoint.received.append((self.path, dict(self.headers.items()), body))
            status = endpoint.status.get(self.path, 202)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"status": "success"}')

        def do_GET(self) -> None:
            endpoint.received.append((self.path, dict(self.headers.items()), None))
            self.send_response(endpoint.status.get(self.path, 200))
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    endpoint.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield endpoint
    finally:
        server.shutdown()
        server.server_close()
