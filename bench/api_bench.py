"""API benchmark: list endpoints on a catalog of 100k recovery points and 1M job events.

    .venv/bin/python bench/api_bench.py [--points 100000] [--events 1000000]
        [--requests 200] [--catalog URL] [--work DIR] [--keep]

Generates a catalog (a SQLite file under ``--work``, or the empty database ``--catalog``
names, e.g. a PostgreSQL one) with bulk inserts: 100 resources over 2 vaults, one backup
job per recovery point (``--points``), and ``--events`` job events spread over those
jobs (small payloads: the benchmark is about the lists, not about JSON size). Then it
starts ``strongroom serve --api-address 127.0.0.1:PORT`` on that catalog, as a user
would, and times ``--requests`` sequential requests (a page of 100) per scenario: the
first page and a deep page (a cursor half way down) of recovery points and jobs, filtered
lists, a job's events and the other lists. Prints p50/p95/p99 and the server's resident
set (now and at its peak), with the load average; the target is p95 < 100 ms.

Then the web console, logged in through its login form (``console_scenarios``): the
overview page (target < 300 ms) and two long lists, each render with its whole
server-side work (session, token check, queries, template).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import insert, select

from measure import load_average, table
from strongroom.api.paging import encode_cursor
from strongroom.catalog.models import EventRecord, Job, RecoveryPoint, Resource, Vault
from strongroom.catalog.types import JobKind, JobState, PointState, Tier
from strongroom.services.access.roles import Role
from strongroom.services.access.tokens import TokenService
from strongroom.services.context import AppContext

RESOURCES = 100
CONSOLE_TARGET_MS = 300.0
CONSOLE_PAGES = (
    ("overview", "/console/"),
    ("a resource and its points", "/console/resources/db-042"),
    ("jobs: FAILED backups", "/console/jobs?kind=backup&state=FAILED"),
)
"""The web console's pages timed after the API's lists: the overview (target < 300 ms)
and two long lists. A vault's page is left out: the generated vaults are catalog rows
without a real vault's settings, whose lifecycle preview cannot be computed."""
BATCH = 10_000
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Scenario:
    """One request to repeat: a name and a path (with query) under /api/v1."""

    name: str
    path: str


@dataclass(frozen=True)
class Timing:
    """Latencies of one scenario, in milliseconds."""

    name: str
    status: int
    milliseconds: list[float]

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.milliseconds)
        return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def batches(count: int) -> Iterator[range]:
    for start in range(0, count, BATCH):
        yield range(start, min(count, start + BATCH))


def generate(context: AppContext, points: int, events: int) -> None:
    """Fill the catalog with bulk inserts (one transaction per batch)."""
    catalog = context.catalog
    with catalog.session() as session:
        vaults = [
            Vault(name=f"vault-{n}", url=f"file:///srv/v{n}", created_at=T0, updated_at=T0)
            for n in range(2)
        ]
        resources = [
            Resource(
                name=f"db-{n:03d}",
                type="postgres",
                tags={"team": f"t{n % 7}"},
                created_at=T0,
                updated_at=T0,
            )
            for n in range(RESOURCES)
        ]
        session.add_all([*vaults, *resources])
        session.flush()
        vault_ids = [vault.id for vault in vaults]
        resource_ids = [resource.id for resource in resources]
    job_ids = [str(uuid.UUID(int=number + 1)) for number in range(points)]
    for chunk in batches(points):
        job_rows, point_rows = [], []
        for number in chunk:
            created = T0 + timedelta(minutes=number)
            resource_id = resource_ids[number % RESOURCES]
            vault_id = vault_ids[number % 2]
            job_rows.append(
                {
                    "id": job_ids[number],
                    "kind": JobKind.BACKUP,
                    "resource_id": resource_id,
                    "vault_id": vault_id,
                    "state": JobState.COMPLETED if number % 50 else JobState.FAILED,
                    "params": {},
                    "allow_partial": False,
                    "attempt": 1,
                    "max_attempts": 3,
                    "retry_interval_seconds": 300.0,
                    "retry_backoff_rate": 2.0,
                    "created_at": created,
                    "updated_at": created + timedelta(seconds=40),
                    "started_at": created + timedelta(seconds=1),
                    "finished_at": created + timedelta(seconds=40),
                    "result": {"point_id": f"p{number:09d}", "logical_size": 1 << 20},
                }
            )
            point_rows.append(
                {
                    "id": f"p{number:09d}",
                    "vault_id": vault_id,
                    "resource_id": resource_id,
                    "job_id": job_ids[number],
                    "state": PointState.AVAILABLE,
                    "created_at": created,
                    "completed_at": created + timedelta(seconds=40),
                    "logical_size": 1 << 20,
                    "stored_size": 1 << 18,
                    "tags": {"BackupType": "daily"},
                    "tier": Tier.WARM,
                    "legal_hold": False,
                    "metadata_": {"tables": {"orders": number}},
                }
            )
        with catalog.session() as session:
            session.execute(insert(Job), job_rows)
            session.execute(insert(RecoveryPoint), point_rows)
    per_job = max(1, events // max(1, points))
    for chunk in batches(events):
        rows = [
            {
                "at": T0 + timedelta(minutes=number // per_job, seconds=number % per_job),
                "type": "backup.job.state_changed",
                "subject": job_ids[(number // per_job) % points],
                "payload": {"state": "RUNNING", "step": number % per_job},
            }
            for number in chunk
        ]
        with catalog.session() as session:
            session.execute(insert(EventRecord), rows)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def resident_mib(pid: int) -> tuple[float, float]:
    """The process's resident set now and at its peak (VmRSS, VmHWM), in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        fields[name] = value.strip()
    return (
        int(fields["VmRSS"].split()[0]) / 1024,
        int(fields["VmHWM"].split()[0]) / 1024,
    )


def scenarios(context: AppContext, points: int) -> list[Scenario]:
    """What to time: first and deep pages, filters, a job's events, the other lists."""
    with context.catalog.session(readonly=True) as session:
        middle_point = session.execute(
            select(RecoveryPoint.created_at, RecoveryPoint.id)
            .order_by(RecoveryPoint.created_at.desc(), RecoveryPoint.id)
            .offset(points // 2)
            .limit(1)
        ).one()
        middle_job = session.execute(
            select(Job.created_at, Job.id)
            .order_by(Job.created_at.desc(), Job.id.desc())
            .offset(points // 2)
            .limit(1)
        ).one()
        some_job = session.scalar(select(Job.id).offset(points // 3).limit(1))
    point_cursor = encode_cursor(middle_point[0], middle_point[1])
    job_cursor = encode_cursor(middle_job[0], middle_job[1])
    return [
        Scenario("recovery points, first page", "/recovery-points?limit=100"),
        Scenario("recovery points, deep page", f"/recovery-points?limit=100&cursor={point_cursor}"),
        Scenario("recovery points, resource", "/recovery-points?limit=100&resource=db-042"),
        Scenario("recovery points, vault", "/recovery-points?limit=100&vault=vault-1"),
        Scenario("jobs, first page", "/jobs?limit=100"),
        Scenario("jobs, deep page", f"/jobs?limit=100&cursor={job_cursor}"),
        Scenario("jobs, FAILED backups", "/jobs?limit=100&kind=backup&state=FAILED"),
        Scenario("jobs, resource", "/jobs?limit=100&resource=db-042"),
        Scenario("job events", f"/jobs/{some_job}/events?limit=100"),
        Scenario("resources", "/resources?limit=100"),
        Scenario("audit entries", "/audit?limit=100"),
    ]


def console_scenarios(client: httpx.Client, token: str) -> list[Scenario]:
    """Log ``client`` in to the web console through its login form (CSRF pair, session
    cookie) with ``token``; return the console's pages to time (paths from the root)."""
    form = client.get("/console/login")
    found = re.search(r'name="csrf" value="([^"]+)"', form.text)
    if found is None:
        raise SystemExit("the console's login page has no CSRF field")
    response = client.post("/console/login", data={"token": token, "csrf": found.group(1)})
    if response.status_code != 303:
        raise SystemExit(f"console login refused: {response.status_code} {response.text[:300]}")
    return [Scenario(name, path) for name, path in CONSOLE_PAGES]


def time_requests(
    client: httpx.Client, url: str, count: int, check: Callable[[httpx.Response], None]
) -> Timing:
    timings = []
    status = 0
    client.get(url)  # warm up: first connection, first query plans
    for _ in range(count):
        started = time.perf_counter()
        response = client.get(url)
        timings.append((time.perf_counter() - started) * 1000)
        status = response.status_code
        check(response)
    return Timing(url, status, timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--catalog", default=None, help="An empty database URL (default SQLite).")
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--keep", action="store_true")
    arguments = parser.parse_args()

    work = arguments.work or Path(tempfile.mkdtemp(prefix="strongroom-api-bench-"))
    home = work / "home"
    shutil.rmtree(home, ignore_errors=True)
    context = AppContext(home=home, catalog_url=arguments.catalog)
    started = time.perf_counter()
    generate(context, arguments.points, arguments.events)
    generated = time.perf_counter() - started
    token = TokenService(context).create(Role.AUDITOR, name="bench").token
    chosen = scenarios(context, arguments.points)
    dialect = context.catalog.dialect
    context.close()
    print(
        f"generated {arguments.points} recovery points and jobs, {arguments.events} job "
        f"events on {dialect} in {generated:.1f} s",
        flush=True,
    )

    address = f"127.0.0.1:{free_port()}"
    environment = {**os.environ, "STRONGROOM_HOME": str(home)}
    if arguments.catalog:
        environment["STRONGROOM_CATALOG_URL"] = arguments.catalog
    server = subprocess.Popen(
        [sys.executable, "-m", "strongroom", "serve", "--tick", "3600", "--api-address", address],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    rows: list[list[str]] = []
    console_rows: list[list[str]] = []
    try:
        base = f"http://{address}"
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
            for _ in range(600):
                try:
                    client.get("/api/v1/openapi.json")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            idle_rss, _ = resident_mib(server.pid)

            def ok(response: httpx.Response) -> None:
                if response.status_code != 200:
                    raise SystemExit(
                        f"{response.request.url}: {response.status_code} {response.text}"
                    )

            for scenario in chosen:
                timing = time_requests(client, f"/api/v1{scenario.path}", arguments.requests, ok)
                rows.append(row(scenario.name, timing))
            for scenario in console_scenarios(client, token):
                timing = time_requests(client, scenario.path, arguments.requests, ok)
                console_rows.append(row(scenario.name, timing, target=CONSOLE_TARGET_MS))
            rss, peak = resident_mib(server.pid)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        if not arguments.keep and arguments.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print(
        table(
            f"API list latency, {arguments.requests} requests each, page of 100, {dialect} "
            f"catalog ({arguments.points} points, {arguments.events} events), load average "
            f"{load_average()}",
            ["scenario", "p50 ms", "p95 ms", "p99 ms", "max ms", "p95 < 100 ms"],
            rows,
        )
    )
    print(
        table(
            f"Console page render time (session, token check, queries, template), "
            f"{arguments.requests} requests each, same catalog, load average {load_average()}",
            ["page", "p50 ms", "p95 ms", "p99 ms", "max ms", "p95 < 300 ms"],
            console_rows,
        )
    )
    print(
        f"server resident set: {idle_rss:.0f} MiB idle after start, {rss:.0f} MiB after the "
        f"runs, {peak:.0f} MiB peak"
    )


def row(name: str, timing: Timing, *, target: float = 100.0) -> list[str]:
    p95 = timing.percentile(0.95)
    return [
        name,
        f"{statistics.median(timing.milliseconds):.1f}",
        f"{p95:.1f}",
        f"{timing.percentile(0.99):.1f}",
        f"{max(timing.milliseconds):.1f}",
        "yes" if p95 < target else "NO",
    ]


if __name__ == "__main__":
    main()
