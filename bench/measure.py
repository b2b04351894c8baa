"""Run a command (or a shell pipeline) and measure wall time, CPU time and peak RSS.

CPU time and peak RSS come from ``wait4``: user + system seconds of the process and of
every descendant it waited for (a pipeline run through ``sh -c`` sums its members), and the
largest resident set among them. CPU seconds barely change when other work loads the
machine, so they are the stable measure where wall time is noisy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Measurement:
    """Wall seconds, CPU seconds (user + system), peak resident set in MiB, and what the
    command printed on stdout."""

    seconds: float
    cpu_seconds: float
    peak_rss_mib: float
    stdout: str


def run(
    command: Sequence[str] | str,
    *,
    env: Mapping[str, str | None] | None = None,
    stdin_path: Path | None = None,
    stdout_to_null: bool = False,
) -> Measurement:
    """Run ``command`` (a shell string runs under ``sh -c``); raise if it fails.

    ``env`` is added to this process's environment; a None value removes that variable.
    """
    argv = ["sh", "-c", command] if isinstance(command, str) else list(command)
    environment = {**os.environ, **(env or {})}
    environment = {name: value for name, value in environment.items() if value is not None}
    stdin = stdin_path.open("rb") if stdin_path else subprocess.DEVNULL
    stdout = subprocess.DEVNULL if stdout_to_null else subprocess.PIPE
    started = time.perf_counter()
    try:
        process = subprocess.Popen(
            argv,
            stdin=stdin,
            stdout=stdout,
            stderr=subprocess.PIPE,
            env=environment,
        )
        out = process.stdout.read() if process.stdout else b""
        err = process.stderr.read() if process.stderr else b""
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    finally:
        if stdin_path and not isinstance(stdin, int):
            stdin.close()
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"{argv!r} failed ({process.returncode}): {err.decode()[-2000:]}")
    cpu = usage.ru_utime + usage.ru_stime
    return Measurement(seconds, cpu, usage.ru_maxrss / 1024, out.decode())


def best(measurements: Sequence[Measurement]) -> Measurement:
    """Combine repeated runs: the fastest wall time, the least CPU, the highest peak RSS."""
    fastest = min(measurements, key=lambda measured: measured.seconds)
    return Measurement(
        fastest.seconds,
        min(measured.cpu_seconds for measured in measurements),
        max(measured.peak_rss_mib for measured in measurements),
        fastest.stdout,
    )


def load_average() -> str:
    """The 1-minute load average, to tell a quiet machine from a busy one."""
    return f"{os.getloadavg()[0]:.2f}"


def tree_size(path: Path) -> int:
    """Bytes of every file under ``path``."""
    return sum(entry.stat().st_size for entry in path.rglob("*") if entry.is_file())


def require(*tools: str) -> None:
    """Install the Debian packages that provide missing tools (as root), or raise."""
    packages = {"borg": "borgbackup", "restic": "restic", "zstd": "zstd"}
    missing = [packages.get(tool, tool) for tool in tools if shutil.which(tool) is None]
    if not missing:
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env)


def table(title: str, columns: list[str], rows: list[list[str]]) -> str:
    """A plain-text table (Markdown-compatible) for the terminal and issue notes."""
    widths = [
        max(len(str(cell)) for cell in column) for column in zip(columns, *rows, strict=False)
    ]

    def line(cells: list[str]) -> str:
        return (
            "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=False)) + " |"
        )

    separator = "|" + "|".join("-" * (width + 2) for width in widths) + "|"
    return "\n".join(
        [f"### {title}", "", line(columns), separator, *[line(row) for row in rows], ""]
    )
