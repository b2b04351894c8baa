"""Measurement for the source benchmarks: wall, CPU seconds, peak RSS, server CPU.

``measure.run`` reports wall time and peak RSS; these benchmarks also need the CPU seconds
(user + system) that ``wait4`` returns for the command and every descendant it waited for
(a shell pipeline run through ``sh -c`` counts all its members), because on a small shared
machine CPU seconds are steadier than wall time. Peak RSS comes from GNU time (see
:data:`GNU_TIME` for why not from ``wait4``): the largest member of a pipeline. Work a PostgreSQL server does for a client
(``COPY`` for pg_dump, checksum queries, index builds in a restore) runs in server
processes, not in the client's tree: :func:`server_cpu_seconds` reads it from the
postmaster's accounting. ``measure.py`` is owned elsewhere and stays as it is; its
``table``, ``tree_size`` and ``require`` are reused from there.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from measure import require, table, tree_size

__all__ = [
    "Sample",
    "human",
    "require",
    "run",
    "server_cpu_seconds",
    "table",
    "tree_size",
]

_TICKS = os.sysconf("SC_CLK_TCK")
GNU_TIME = "/usr/bin/time"
"""GNU time reports the command's own peak RSS. ``wait4`` in this process cannot: a child
inherits the peak of the process it was spawned from (Linux keeps the old address space's
high-water mark across ``exec``), so a benchmark holding 600 MiB would report at least
600 MiB for every tool it runs. GNU time is small, so what it measures is the command's."""


@dataclass(frozen=True)
class Sample:
    """One measured run: wall and CPU seconds, peak RSS in MiB, server CPU, stdout."""

    seconds: float
    cpu_seconds: float
    peak_rss_mib: float
    stdout: str
    server_cpu_seconds: float | None = None


def run(
    command: Sequence[str] | str,
    *,
    env: Mapping[str, str] | None = None,
    server_pid: int | None = None,
) -> Sample:
    """Run ``command`` (a shell string runs under ``sh -c``); raise if it fails.

    Output goes to temporary files, so neither pipe can fill up and block the command.
    With ``server_pid`` (a postmaster) the server CPU spent meanwhile is measured too.
    """
    argv = ["sh", "-c", command] if isinstance(command, str) else list(command)
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.NamedTemporaryFile("r") as rss,
    ):
        server_before = server_cpu_seconds(server_pid) if server_pid else None
        started = time.perf_counter()
        process = subprocess.Popen(
            [GNU_TIME, "--format=%M", f"--output={rss.name}", *argv],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env={**os.environ, **(env or {})},
        )
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        server = None
        if server_pid and server_before is not None:
            server = server_cpu_seconds(server_pid) - server_before
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode(errors="replace")
        peak_kib = rss.read().strip().splitlines()[-1:]
    if process.returncode != 0:
        raise RuntimeError(f"{argv!r} failed ({process.returncode}): {stderr[-3000:]}")
    return Sample(
        seconds=seconds,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        peak_rss_mib=int(peak_kib[0]) / 1024 if peak_kib and peak_kib[0].isdigit() else 0.0,
        stdout=stdout,
        server_cpu_seconds=server,
    )


def server_cpu_seconds(postmaster_pid: int) -> float:
    """CPU seconds of a PostgreSQL server: the postmaster, its exited backends (reaped by
    it, so in its ``cutime``/``cstime``) and the backends still running.

    Includes what other clients of the same server did meanwhile: an upper bound on a
    shared server.
    """

    def fields(pid: int) -> list[str]:
        text = Path(f"/proc/{pid}/stat").read_text()
        return text[text.rindex(")") + 2 :].split()

    own = fields(postmaster_pid)
    ticks = sum(int(value) for value in own[11:15])  # utime stime cutime cstime
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = fields(int(entry.name))
        except (OSError, ValueError):
            continue
        if stat[1] == str(postmaster_pid):  # ppid
            ticks += int(stat[11]) + int(stat[12])
    return ticks / _TICKS


def human(size: float | None) -> str:
    """Bytes as B/KiB/MiB/GiB with one decimal; ``-`` for None."""
    if size is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"
