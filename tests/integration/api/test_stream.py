"""The live event stream over real HTTP: events in order, and no stream left behind when
its client goes away (before reading anything, or half way)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from strongroom.api.app import create_app
from strongroom.api.auth import ApiState
from strongroom.api.server import ApiServer, serve_api
from strongroom.catalog.types import JobKind
from strongroom.engine.events import EventBus
from strongroom.engine.jobs import JobService
from strongroom.engine.states import JobStateMachine
from strongroom.services.access.roles import Role
from strongroom.services.access.tokens import TokenService
from strongroom.services.context import AppContext
from tests.support.waiting import wait_for


@pytest.fixture
def served(context: AppContext) -> Iterator[tuple[ApiServer, ApiState]]:
    app = create_app(context, poll_seconds=0.05)
    server = serve_api(app, "127.0.0.1:0")
    yield server, app.state.strongroom
    server.stop()


def a_queued_job(context: AppContext, events: int) -> str:
    """A job no worker runs, with ``events`` events published about it."""
    bus = EventBus(context.catalog, context.clock)
    job_id = JobService(JobStateMachine(context.catalog, bus, context.clock)).create_job(
        JobKind.DELETE
    )
    for number in range(events):
        bus.publish("test.progress", job_id, {"number": number, "padding": "x" * 200})
    return job_id


def open_stream(port: int, token: str, job_id: str) -> socket.socket:
    connection = socket.create_connection(("127.0.0.1", port), timeout=30)
    connection.sendall(
        f"GET /api/v1/jobs/{job_id}/events/stream HTTP/1.1\r\nHost: test\r\n"
        f"Authorization: Bearer {token}\r\n\r\n".encode()
    )
    return connection


def read_until(connection: socket.socket, marker: bytes) -> bytes:
    received = b""
    while marker not in received:
        chunk = connection.recv(4096)
        assert chunk, f"the stream closed before {marker!r}: {received[-300:]!r}"
        received += chunk
    return received


@pytest.mark.parametrize("events", [0, 3000])
def test_a_client_that_goes_away_leaves_no_stream_behind(
    context: AppContext, served: tuple[ApiServer, ApiState], events: int
) -> None:
    server, state = served
    token = TokenService(context).create(Role.VIEWER).token
    job_id = a_queued_job(context, events)
    connection = open_stream(server.port, token, job_id)
    head = read_until(connection, b"following the job")
    assert b"200 OK" in head
    assert b"text/event-stream" in head
    if events:
        # Read a few events, then stop reading: the server waits on the full socket
        # buffer instead of queueing the rest, and notices when the client is gone.
        read_until(connection, b'"number":5,')
    assert state.open_streams == 1
    connection.close()
    wait_for(lambda: state.open_streams == 0)


def test_events_arrive_in_order_and_the_stream_ends_with_the_job(
    context: AppContext, served: tuple[ApiServer, ApiState]
) -> None:
    import httpx

    server, state = served
    token = TokenService(context).create(Role.VIEWER).token
    job_id = a_queued_job(context, 150)  # more than one page of events
    JobService(
        JobStateMachine(context.catalog, EventBus(context.catalog, context.clock), context.clock)
    ).cancel(job_id, "not needed")
    numbers = []
    ended = False
    url = f"http://127.0.0.1:{server.port}/api/v1/jobs/{job_id}/events/stream"
    with httpx.stream(
        "GET", url, headers={"Authorization": f"Bearer {token}"}, timeout=60
    ) as stream:
        event_type = ""
        for line in stream.iter_lines():
            if line.startswith("event: "):
                event_type = line.removeprefix("event: ")
                ended = ended or event_type == "end"
            elif line.startswith("data: ") and event_type == "test.progress":
                numbers.append(int(line.split('"number":')[1].split(",")[0]))
    assert numbers == list(range(150))
    assert ended
    wait_for(lambda: state.open_streams == 0)
