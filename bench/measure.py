"""Run a command (or a shell pipeline) and measure wall time, CPU time and peak RSS.

CPU time comes from ``wait4``: user + system seconds of the process and of every
descendant it waited for (a pipeline run through ``sh -c`` sums its members). CPU seconds
barely change when other work loads the machine, so they are the stable measure where wall
time is noisy. Peak RSS comes from GNU time, which runs the command (see :data:`GNU_TIME`
for why not from ``wait4``): the largest resident set of the command or, for a pipeline,
of its largest member.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

GNU_TIME = "/usr/bin/time"
"""GNU time reports the command's own peak RSS. ``wait4`` in this process cannot: a child
inherits the peak of the process it was spawned from (Linux keeps the old address space's
high-water mark across ``exec``), so a benchmark that held 600 MiB would report at least
600 MiB for every tool it runs. GNU time is small, so what it measures is the command's."""


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
    # Output goes to temporary files, so neither pipe can fill up and block the command.
    with (
        (stdin_path or Path(os.devnull)).open("rb") as stdin,
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.NamedTemporaryFile("r") as rss,
    ):
        started = time.perf_counter()
        process = subprocess.Popen(
            [GNU_TIME, "--format=%M", f"--output={rss.name}", *argv],
            stdin=stdin,
            stdout=subprocess.DEVNULL if stdout_to_null else out,
            stderr=err,
            env=environment,
        )
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode(errors="replace")
        peak_kib = rss.read().strip().splitlines()[-1:]
    if process.returncode != 0:
        raise RuntimeError(f"{argv!r} failed ({process.returncode}): {stderr[-2000:]}")
    cpu = usage.ru_utime + usage.ru_stime
    if not (peak_kib and peak_kib[0].isdigit()):
        raise RuntimeError(f"{GNU_TIME} reported no peak RSS for {argv!r}")
    return Measurement(seconds, cpu, int(peak_kib[0]) / 1024, stdout)


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
