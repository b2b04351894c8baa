"""The one subprocess gateway: every external tool (pg_dump, mariadb-dump, ...) runs here.

It never uses a shell, passes secrets only through the environment (never argv), streams
stdout to the caller in blocks without buffering it whole, keeps a bounded tail of stderr
for the error message (masked), honours cancellation and timeouts, and maps failures to
the error tree: a missing tool is a ``ToolError`` with an install hint, a non-zero exit is
classified by the caller's ``classify`` function (or a plain ``ToolError``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from strongroom.errors import AbortedError, StrongroomError, TimeoutError_, ToolError
from strongroom.logs import get_logger, mask, register_secret

log = get_logger(__name__)

BLOCK_SIZE = 1024 * 1024
_STDERR_TAIL_LINES = 40

Classifier = Callable[[int, str], StrongroomError | None]
"""Given the exit code and the stderr tail, return a typed error (or None for a ToolError)."""


@dataclass(frozen=True)
class ToolRun:
    """What a finished tool run left: its exit code and the (masked) tail of its stderr."""

    argv: tuple[str, ...]
    returncode: int
    stderr: str


def find_tool(name: str, *, hint: str = "") -> str:
    """Return the absolute path of an external tool, or raise ``ToolError`` with a hint."""
    path = shutil.which(name)
    if path is None:
        raise ToolError(
            f"the external tool {name!r} is not installed or not on PATH",
            hint=hint or f"Install {name} (e.g. with apt-get) and retry.",
            retryable=False,
        )
    return path


class _Process:
    """A started tool with a stderr reader thread and a watchdog for cancel/timeout."""

    def __init__(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        stdin: int | IO[bytes] | None,
        stdout: int | IO[bytes] | None,
        cancel: threading.Event | None,
        timeout: float | None,
    ) -> None:
        self.argv = tuple(argv)
        self.name = Path(self.argv[0]).name
        self.stderr_tail: deque[str] = deque(maxlen=_STDERR_TAIL_LINES)
        self.cancelled = False
        self.timed_out = False
        log.debug("running %s", mask(" ".join(self.argv)))
        try:
            self.process = subprocess.Popen(
                self.argv,
                stdin=stdin,
                stdout=stdout,
                stderr=subprocess.PIPE,
                env={**os.environ, **env},
            )
        except FileNotFoundError as error:
            raise ToolError(f"cannot run {self.argv[0]!r}: not found", retryable=False) from error
        self._stderr_thread = threading.Thread(target=self._read_stderr, daemon=True)
        self._stderr_thread.start()
        self._done = threading.Event()
        self._watchdog = threading.Thread(target=self._watch, args=(cancel, timeout), daemon=True)
        self._watchdog.start()

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None  # noqa: S101 - Popen was given stderr=PIPE
        for raw in self.process.stderr:
            line = mask(raw.decode(errors="replace").rstrip())
            if line:
                self.stderr_tail.append(line)
                log.debug("%s: %s", self.name, line)

    def _watch(self, cancel: threading.Event | None, timeout: float | None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._done.wait(0.1):
            if cancel is not None and cancel.is_set():
                self.cancelled = True
            elif deadline is not None and time.monotonic() > deadline:
                self.timed_out = True
            else:
                continue
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
            return

    def finish(self, classify: Classifier | None) -> ToolRun:
        returncode = self.process.wait()
        self._done.set()
        self._stderr_thread.join()
        self._watchdog.join()
        stderr = "\n".join(self.stderr_tail)
        name = self.name
        if self.cancelled:
            raise AbortedError(f"{name} was cancelled")
        if self.timed_out:
            raise TimeoutError_(f"{name} did not finish in time")
        if returncode != 0:
            error = classify(returncode, stderr) if classify else None
            if error is None:
                last = stderr.splitlines()[-1] if stderr else "no error output"
                error = ToolError(f"{name} exited with code {returncode}: {last}")
            raise error
        return ToolRun(self.argv, returncode, stderr)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self._done.set()


class ToolStream:
    """A running tool whose stdout is read in blocks; use it as a context manager.

    ``with ToolStream([...]) as blocks:`` yields an iterator over stdout in blocks of up
    to ``block_size`` bytes. The exit status is checked when the block ends (raising a
    ``ToolError``, what ``classify`` returns, ``AbortedError`` on cancel or
    ``TimeoutError_``); leaving the block with an exception kills the tool. Afterwards
    ``result`` holds the finished run. Secrets are masked in every log line and message.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        secrets: Sequence[str] = (),
        stdin: IO[bytes] | None = None,
        classify: Classifier | None = None,
        cancel: threading.Event | None = None,
        timeout: float | None = None,
        block_size: int = BLOCK_SIZE,
    ) -> None:
        for secret in secrets:
            register_secret(secret)
        self._start = (argv, env or {}, stdin, cancel, timeout)
        self._classify = classify
        self._block_size = block_size
        self._process: _Process | None = None
        self.result: ToolRun | None = None

    def __enter__(self) -> Iterator[bytes]:
        argv, env, stdin, cancel, timeout = self._start
        self._process = _Process(argv, env, stdin, subprocess.PIPE, cancel, timeout)
        stdout = self._process.process.stdout
        assert stdout is not None  # noqa: S101 - Popen was given stdout=PIPE
        return iter(lambda: stdout.read(self._block_size), b"")

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        assert self._process is not None  # noqa: S101 - __enter__ ran
        if kind is not None:
            self._process.kill()
            return
        stdout = self._process.process.stdout
        if stdout is not None:
            while stdout.read(self._block_size):  # drain what the caller left so it can exit
                pass
        self.result = self._process.finish(self._classify)


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    secrets: Sequence[str] = (),
    stdin: IO[bytes] | None = None,
    classify: Classifier | None = None,
    cancel: threading.Event | None = None,
    timeout: float | None = None,
) -> tuple[ToolRun, bytes]:
    """Run a tool to completion; return its run record and its whole stdout (small outputs).

    Raises as :class:`ToolStream` does.
    """
    tool = ToolStream(
        argv,
        env=env,
        secrets=secrets,
        stdin=stdin,
        classify=classify,
        cancel=cancel,
        timeout=timeout,
    )
    with tool as blocks:
        output = b"".join(blocks)
    assert tool.result is not None  # noqa: S101 - set when the block ends without error
    return tool.result, output


def run_to_file(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    secrets: Sequence[str] = (),
    stdin: IO[bytes] | None = None,
    stdout: IO[bytes] | None = None,
    classify: Classifier | None = None,
    cancel: threading.Event | None = None,
    timeout: float | None = None,
) -> ToolRun:
    """Run a tool whose stdout goes to a file object (or is discarded); check its exit."""
    for secret in secrets:
        register_secret(secret)
    target: int | IO[bytes] = stdout if stdout is not None else subprocess.DEVNULL
    process = _Process(argv, env or {}, stdin, target, cancel, timeout)
    return process.finish(classify)
