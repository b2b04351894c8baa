"""`strongroom serve` as a process: SIGTERM stops it cleanly (exit 0, no job left RUNNING,
leadership released), running jobs may finish within --shutdown-timeout, and a second
daemon on the same catalog refuses to schedule.

The daemon runs the real CLI entry (`strongroom.cli.app.main`) with the real signal
handling; only the job handlers are fakes (a module standing in for
`strongroom.services.jobs.handlers`), so that a job runs as long as the test needs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import pytest

from strongroom.catalog import JobState, open_catalog
from strongroom.catalog import jobs as catalog_jobs
from strongroom.catalog.leases import get_lease
from tests.support.cli import strongroom, text
from tests.support.scheduling import seed_plan, seed_resources
from tests.support.waiting import PATIENCE

pytestmark = pytest.mark.e2e

# Runs `strongroom ARGS` with fake handlers: a backup runs until the file HANDLER_RELEASE
# exists (or, without one, until cancelled), checking its cancellation token as a real
# one does.
DAEMON = """
import os, sys, types
from pathlib import Path
from strongroom.engine.context import JobResult

def backup(context):
    release = os.environ.get("HANDLER_RELEASE")
    while release is None or not Path(release).exists():
        context.cancel.raise_if_cancelled()
        context.cancel.wait(0.02)
    return JobResult({"released": True})

fake = types.ModuleType("strongroom.services.jobs.handlers")
fake.handlers = lambda context: {"backup": backup}
sys.modules["strongroom.services.jobs.handlers"] = fake
from strongroom.cli.app import main
main(sys.argv[1:])
"""


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A catalog whose every-minute rule (created two minutes ago) is due right away."""
    home = tmp_path / "home"
    created = datetime.now(UTC) - timedelta(minutes=2)
    rule = {
        "name": "minutely",
        "schedule": "cron(* * * * ? *)",
        "start_window_minutes": 60,
        "completion_window_minutes": 120,
    }
    with open_catalog(None, home) as catalog:
        seed_resources(catalog)
        seed_plan(catalog, [rule], at=created)
    return home


def start_daemon(home: Path, *args: str, release: Path | None = None) -> subprocess.Popen[bytes]:
    """Start `strongroom serve` whose backups run until ``release`` exists (or until
    cancelled, without one)."""
    environment = {**os.environ, "STRONGROOM_HOME": str(home), "COLUMNS": "200"}
    if release is not None:
        environment["HANDLER_RELEASE"] = str(release)
    return subprocess.Popen(
        [sys.executable, "-c", DAEMON, "serve", "--tick", "0.2", *args],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.fixture
def daemons() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(30)


def until_line(stream: IO[bytes], start: bytes) -> Iterator[bytes]:
    """Yield the lines of ``stream`` up to and including the first one holding ``start``."""
    for line in stream:
        yield line
        if start in line:
            return
    raise AssertionError(f"the process never wrote {start!r}")


def jobs_in(home: Path, state: JobState) -> list[str]:
    with open_catalog(None, home) as catalog, catalog.session(readonly=True) as session:
        return [job.id for job in catalog_jobs.list_jobs(session, states=[state])]


def wait_for_running(home: Path, process: subprocess.Popen[bytes], count: int = 2) -> list[str]:
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        running = jobs_in(home, JobState.RUNNING)
        if len(running) >= count:
            return running
        time.sleep(0.1)
    raise AssertionError("the daemon never started the jobs")


def test_sigterm_aborts_jobs_past_the_shutdown_timeout_and_exits_zero(
    home: Path, daemons: list[subprocess.Popen[bytes]]
) -> None:
    daemon = start_daemon(home, "--shutdown-timeout", "0.5")
    daemons.append(daemon)
    running = wait_for_running(home, daemon)

    daemon.send_signal(signal.SIGTERM)
    _, err = daemon.communicate(timeout=PATIENCE)

    assert daemon.returncode == 0, err.decode()
    assert "2 aborted" in err.decode()
    assert jobs_in(home, JobState.RUNNING) == []
    assert sorted(jobs_in(home, JobState.ABORTED)) == sorted(running)
    with open_catalog(None, home) as catalog, catalog.session(readonly=True) as session:
        lease = get_lease(session, "scheduler")
        assert lease is not None and lease.expires_at <= datetime.now(UTC)


def test_sigterm_lets_running_jobs_finish_within_the_shutdown_timeout(
    home: Path, daemons: list[subprocess.Popen[bytes]]
) -> None:
    release = home / "release"
    daemon = start_daemon(
        home, "--shutdown-timeout", str(PATIENCE), "--workers", "2", release=release
    )
    daemons.append(daemon)
    running = wait_for_running(home, daemon)

    daemon.send_signal(signal.SIGINT)
    # The jobs end once the shutdown waits for them (it says so), however late that is.
    assert daemon.stderr is not None
    before = [line.decode() for line in until_line(daemon.stderr, b"waiting up to")]
    release.touch()
    _, rest = daemon.communicate(timeout=PATIENCE)
    err = "".join(before) + rest.decode()

    assert daemon.returncode == 0, err
    assert "2 running job(s) finished, 0 aborted" in err
    assert sorted(jobs_in(home, JobState.COMPLETED)) == sorted(running)
    assert jobs_in(home, JobState.RUNNING) == []


def test_a_second_daemon_on_the_same_catalog_refuses_to_schedule(
    home: Path, daemons: list[subprocess.Popen[bytes]]
) -> None:
    first = start_daemon(home, "--shutdown-timeout", "0")
    daemons.append(first)
    wait_for_running(home, first)

    second = strongroom(home, "serve", "--once")

    assert second.returncode == 7, text(second)
    assert "another daemon schedules this catalog" in text(second)
    assert "--standby" in text(second)
    first.send_signal(signal.SIGTERM)
    first.communicate(timeout=PATIENCE)
    assert first.returncode == 0
    assert jobs_in(home, JobState.RUNNING) == []
