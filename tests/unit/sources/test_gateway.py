"""The subprocess gateway, with real child processes (sh, python)."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

from strongroom.errors import AbortedError, AccessDeniedError, TimeoutError_, ToolError
from strongroom.sources import gateway


def test_run_returns_stdout_and_exit_record() -> None:
    result, output = gateway.run(["sh", "-c", "printf hello; echo warn >&2"])
    assert output == b"hello"
    assert result.returncode == 0
    assert result.stderr == "warn"


def test_stream_yields_bounded_blocks_of_large_output() -> None:
    size = 5 * 1024 * 1024 + 3
    code = f"import sys; sys.stdout.buffer.write(b'x' * {size})"
    tool = gateway.ToolStream([sys.executable, "-c", code], block_size=64 * 1024)
    with tool as blocks:
        lengths = [len(block) for block in blocks]
    assert sum(lengths) == size
    assert max(lengths) <= 64 * 1024
    assert tool.result is not None and tool.result.returncode == 0


def test_nonzero_exit_is_a_tool_error_with_the_last_stderr_line() -> None:
    with pytest.raises(ToolError, match=r"exited with code 3: zq-last-line"):
        gateway.run(["sh", "-c", "echo zq-first-line >&2; echo zq-last-line >&2; exit 3"])


def test_classifier_maps_exit_to_a_typed_error() -> None:
    def classify(code: int, stderr: str) -> AccessDeniedError | None:
        return AccessDeniedError("password refused") if "password" in stderr else None

    with pytest.raises(AccessDeniedError):
        gateway.run(["sh", "-c", "echo 'bad password' >&2; exit 1"], classify=classify)


def test_secrets_from_env_are_masked_in_errors_and_never_in_argv() -> None:
    secret = "pa55-w0rd-xyz"
    with pytest.raises(ToolError) as raised:
        gateway.run(
            ["sh", "-c", 'echo "login with $PGPASSWORD failed" >&2; exit 2'],
            env={"PGPASSWORD": secret},
            secrets=[secret],
        )
    assert secret not in str(raised.value)
    assert "***" in str(raised.value)


def test_missing_tool_names_it_with_a_hint() -> None:
    with pytest.raises(ToolError) as raised:
        gateway.find_tool("definitely-not-a-tool-xyz", hint="apt-get install xyz")
    assert "definitely-not-a-tool-xyz" in str(raised.value)
    assert raised.value.hint == "apt-get install xyz"
    assert not raised.value.retryable


def test_cancel_terminates_the_tool() -> None:
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    started = time.monotonic()
    with pytest.raises(AbortedError):
        gateway.run(["sleep", "3600"], cancel=cancel)
    # Not a speed check: only a tool that was not stopped runs for the hour (a loaded
    # machine takes seconds, not an hour, to stop it).
    assert time.monotonic() - started < 1800


def test_timeout_is_a_retryable_timeout() -> None:
    with pytest.raises(TimeoutError_) as raised:
        gateway.run(["sleep", "30"], timeout=0.3)
    assert raised.value.retryable


def test_leaving_the_stream_early_kills_the_tool() -> None:
    tool = gateway.ToolStream(["sh", "-c", "yes"], block_size=1024)
    with pytest.raises(RuntimeError), tool as blocks:
        next(blocks)
        raise RuntimeError("consumer failed")
    assert tool.result is None


def test_run_to_file_writes_stdout_to_the_file(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    with target.open("wb") as handle:
        gateway.run_to_file(["sh", "-c", "printf abc"], stdout=handle)
    assert target.read_bytes() == b"abc"
