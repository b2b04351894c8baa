"""Streams between a recovery point and the external tools of the database sources.

:class:`ToolRunner` runs every tool of one database operation through the gateway with the
server's environment (which carries the password) and secrets, the source's classifier of
failures, the job's cancellation and the per-run timeout; :meth:`ToolRunner.stream_into`
copies a tool's stdout into one sink stream (a dump, no copy on disk) and
:meth:`ToolRunner.feed` feeds a stream into a tool's stdin.

:func:`run_with_input` feeds a stream into a tool's stdin (``pg_restore``, ``psql``,
``mariadb``): a restore hands a stream of the vault to a client tool without a copy on
disk. The tool runs (through :func:`strongroom.sources.gateway.run_to_file`) in a helper
thread with the read end of a pipe as its stdin, while the caller's thread writes the
blocks into the write end. Writes are non-blocking and polled, so a tool that exits
early (an error, or it needed no more input) never leaves the writer stuck on a full
pipe. The tool's own error wins over a broken pipe; an error on the feeding side (a
damaged stream, a cancel) stops the tool. :class:`CheckedBlocks` hashes a stream as it
is read so the caller can compare it with the SHA-256 recorded at backup time;
:func:`write_stream` writes a small stream (globals, accounts) whole.
"""

from __future__ import annotations

import hashlib
import os
import select
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypedDict

from strongroom.errors import AbortedError, IntegrityError
from strongroom.sources import gateway
from strongroom.sources.base import (
    Check,
    JsonObject,
    SourceContext,
    StreamReader,
    StreamSink,
    iter_stream,
)

_POLL_SECONDS = 0.2
BLOCK_SIZE = 1024 * 1024


class _ToolGone(Exception):
    """The tool stopped reading (it exited); the writer stops and reports the tool's result."""


def run_with_input(
    argv: Sequence[str],
    blocks: Iterable[bytes],
    *,
    env: Mapping[str, str] | None = None,
    secrets: Sequence[str] = (),
    classify: gateway.Classifier | None = None,
    cancel: threading.Event | None = None,
    timeout: float | None = None,
) -> gateway.ToolRun:
    """Run ``argv`` with ``blocks`` as its stdin (stdout discarded); return its run record.

    Raises what the gateway raises for the tool (a typed error from ``classify``,
    ``ToolError``, ``AbortedError`` when ``cancel`` is set, ``TimeoutError_``), or what
    iterating ``blocks`` raised (the tool is then stopped).
    """
    read_fd, write_fd = os.pipe()
    stop = threading.Event()
    outcome: dict[str, BaseException | gateway.ToolRun] = {}

    def work() -> None:
        try:
            with os.fdopen(read_fd, "rb", buffering=0) as stdin:
                outcome["run"] = gateway.run_to_file(
                    argv,
                    env=env,
                    secrets=secrets,
                    stdin=stdin,
                    classify=classify,
                    cancel=stop,
                    timeout=timeout,
                )
        except BaseException as exc:  # noqa: BLE001 - handed to the calling thread below
            outcome["error"] = exc

    thread = threading.Thread(target=work, name=f"feed-{Path(argv[0]).name}", daemon=True)
    thread.start()
    os.set_blocking(write_fd, False)
    remaining = iter(blocks)
    gone = False
    try:
        try:
            for block in remaining:
                _write_all(write_fd, block, thread, cancel, stop)
        except _ToolGone:
            gone = True
        finally:
            os.close(write_fd)
        while thread.is_alive():
            if cancel is not None and cancel.is_set():
                stop.set()
            thread.join(_POLL_SECONDS)
    except BaseException:
        stop.set()
        thread.join()
        raise
    error = outcome.get("error")
    if isinstance(error, BaseException):
        if stop.is_set() and cancel is not None and cancel.is_set():
            raise AbortedError(f"{Path(argv[0]).name} was cancelled") from error
        raise error
    result = outcome["run"]
    assert isinstance(result, gateway.ToolRun)  # noqa: S101 - set when no error was recorded
    if gone:  # the tool needed no more input: read the rest so hashing callers see it all
        for _block in remaining:
            pass
    return result


def _write_all(
    descriptor: int,
    block: bytes,
    thread: threading.Thread,
    cancel: threading.Event | None,
    stop: threading.Event,
) -> None:
    view = memoryview(block)
    while view:
        if cancel is not None and cancel.is_set():
            stop.set()
            raise AbortedError("the operation was cancelled")
        if not thread.is_alive():
            raise _ToolGone
        _, writable, _ = select.select([], [descriptor], [], _POLL_SECONDS)
        if not writable:
            continue
        try:
            written = os.write(descriptor, view)
        except BlockingIOError:
            continue
        except BrokenPipeError:
            raise _ToolGone from None
        view = view[written:]


def read_whole(reader: StreamReader, name: str, recorded: JsonObject | None) -> bytes:
    """Read a small stream whole, checking its recorded SHA-256; raises ``IntegrityError``."""
    with reader.open_stream(name) as stream:
        data = b"".join(iter_stream(stream, BLOCK_SIZE))
    if recorded is not None and hashlib.sha256(data).hexdigest() != recorded.get("sha256"):
        raise IntegrityError(f"stream {name} does not match the SHA-256 recorded at backup time")
    return data


class CheckedBlocks:
    """Iterate a stream's blocks while hashing them; :meth:`check` compares the digest."""

    def __init__(self, reader: StreamReader, name: str, recorded: JsonObject | None) -> None:
        self.reader = reader
        self.name = name
        self.recorded = recorded
        self.digest = hashlib.sha256()

    def __iter__(self) -> Iterator[bytes]:
        with self.reader.open_stream(self.name) as stream:
            for block in iter_stream(stream, BLOCK_SIZE):
                self.digest.update(block)
                yield block

    def check(self) -> Check:
        """The stream's SHA-256 as recorded and as read."""
        expected = None if self.recorded is None else self.recorded.get("sha256")
        return Check(f"stream {self.name} sha256", expected, self.digest.hexdigest())


def write_stream(sink: StreamSink, name: str, data: bytes, context: SourceContext) -> JsonObject:
    """Write ``data`` as one stream; return its ``size`` and ``sha256``."""
    with sink.open_stream(name) as stream:
        stream.write(data)
    context.progress(len(data))
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


class ToolServer(Protocol):
    """A database server as its tools see it."""

    @property
    def secrets(self) -> list[str]:
        """Values the gateway must mask (the password)."""
        ...

    def environment(self) -> dict[str, str]:
        """Variables a client tool needs (the password goes here, never into argv)."""
        ...


class _ToolOptions(TypedDict):
    """The gateway's keyword arguments that every run of one :class:`ToolRunner` shares."""

    env: Mapping[str, str]
    secrets: Sequence[str]
    classify: gateway.Classifier
    cancel: threading.Event | None
    timeout: float | None


@dataclass(frozen=True)
class ToolRunner:
    """Runs the tools of one operation against one server (see the module docstring).

    ``classifier`` turns what was being done into the gateway's classifier of a failed
    run (exit code and stderr to a typed error).
    """

    server: ToolServer
    classifier: Callable[[str], gateway.Classifier]
    cancel: threading.Event | None
    timeout: float | None

    def _options(self, doing: str, cancel: threading.Event | None = None) -> _ToolOptions:
        return _ToolOptions(
            env=self.server.environment(),
            secrets=self.server.secrets,
            classify=self.classifier(doing),
            cancel=cancel or self.cancel,
            timeout=self.timeout,
        )

    def run(self, argv: Sequence[str], doing: str) -> tuple[gateway.ToolRun, bytes]:
        """Run a tool to its end; return its run record and its (small) stdout."""
        return gateway.run(argv, **self._options(doing))

    def run_to_file(
        self, argv: Sequence[str], doing: str, *, cancel: threading.Event | None = None
    ) -> gateway.ToolRun:
        """Run a tool whose stdout is discarded; ``cancel`` replaces the runner's own."""
        return gateway.run_to_file(argv, **self._options(doing, cancel))

    def feed(self, argv: Sequence[str], blocks: Iterable[bytes], doing: str) -> gateway.ToolRun:
        """Run a tool with ``blocks`` as its stdin; see :func:`run_with_input`."""
        return run_with_input(argv, blocks, **self._options(doing))

    def stream_into(
        self,
        argv: Sequence[str],
        doing: str,
        sink: StreamSink,
        name: str,
        context: SourceContext,
        watch: Callable[[bytes], None] | None = None,
    ) -> JsonObject:
        """Copy a tool's stdout into the sink stream ``name``; return its size and SHA-256.

        ``watch`` sees every block (to read what a dump says about itself). Raises what
        the gateway raises for the tool, or what the sink raises (the tool is then stopped).
        """
        digest = hashlib.sha256()
        size = 0
        tool = gateway.ToolStream(argv, block_size=BLOCK_SIZE, **self._options(doing))
        with sink.open_stream(name) as stream, tool as blocks:
            for block in blocks:
                stream.write(block)
                digest.update(block)
                size += len(block)
                if watch is not None:
                    watch(block)
                context.progress(len(block))
        return {"size": size, "sha256": digest.hexdigest()}
