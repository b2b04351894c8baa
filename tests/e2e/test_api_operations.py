"""The day's operations through the HTTP API of ``strongroom serve --api-address``.

A quickstart home (two resources, their points, verify and restore jobs) served by a real
daemon; each role's token; the same JSON as the CLI's ``--output json``; jobs started
over HTTP run by the daemon's workers and followed by polling and by the event stream.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from strongroom.services.access.roles import Role
from strongroom.services.access.tokens import TokenService
from strongroom.services.context import AppContext
from tests.support.api import served_process
from tests.support.cli import strongroom, text

pytestmark = pytest.mark.e2e


@dataclass
class Served:
    home: Path
    base: str
    tokens: dict[Role, str]

    def client(self, role: Role) -> httpx.Client:
        return httpx.Client(
            base_url=self.base,
            headers={"Authorization": f"Bearer {self.tokens[role]}"},
            timeout=120,
        )

    def cli_json(self, *args: str) -> Any:
        result = strongroom(self.home, *args, "--output", "json")
        assert result.returncode == 0, text(result)
        return json.loads(result.stdout)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("api") / "home"
    started = strongroom(home, "quickstart")
    assert started.returncode == 0, text(started)
    context = AppContext(home=home)
    try:
        service = TokenService(context)
        tokens = {role: service.create(role, name=f"e2e-{role.value}").token for role in Role}
    finally:
        context.close()
    with served_process(home) as (base, _):
        yield Served(home, base, tokens)


def test_lists_answer_with_the_clis_json(served: Served) -> None:
    with served.client(Role.VIEWER) as client:
        pairs = [
            ("/resources", ["list-resources"]),
            ("/plans", ["list-plans"]),
            ("/recovery-points", ["list-recovery-points"]),
            ("/legal-holds", ["legal-hold", "list"]),
            ("/lifecycle/preview", ["lifecycle", "preview"]),
            ("/vaults/default", ["vault", "describe", "default"]),
            ("/vaults/default/lock", ["vault", "lock-status", "default"]),
        ]
        for path, command in pairs:
            response = client.get(path)
            assert response.status_code == 200, (path, response.text)
            assert response.json() == served.cli_json(*command), path
        points = served.cli_json("list-recovery-points")
        one = client.get(f"/recovery-points/{points[0]['id'][:12]}")
        assert one.json() == points[0]
        jobs = client.get("/jobs", params={"kind": "backup"}).json()
        assert jobs == served.cli_json("list-backups")
        described = client.get(f"/jobs/{jobs[0]['id']}")
        assert described.json() == served.cli_json("describe-job", jobs[0]["id"])
        report = client.get("/reports/detailed", params={"since": "7d"}).json()
        assert report == served.cli_json("report", "detailed", "--since", "7d")


def test_pages_follow_the_link_header_without_gaps_or_repeats(served: Served) -> None:
    with served.client(Role.VIEWER) as client:
        everything = client.get("/jobs", params={"limit": 1000}).json()
        seen: list[str] = []
        url: str | None = f"{served.base}/jobs?limit=2"
        while url is not None:
            response = client.get(url)
            seen += [job["id"] for job in response.json()]
            url = response.links.get("next", {}).get("url")
    assert seen == [job["id"] for job in everything]
    assert len(seen) >= 6  # the quickstart's backups, verifies and restores


def test_an_operator_backs_up_and_follows_the_job_live(served: Served) -> None:
    resource = served.cli_json("list-resources")[0]["name"]
    with served.client(Role.OPERATOR) as client:
        started = client.post("/jobs/backup", json={"resource": resource, "vault": "default"})
        assert started.status_code == 202, started.text
        job = started.json()
        assert started.headers["Location"] == f"/api/v1/jobs/{job['id']}"
        types = []
        end: dict[str, Any] = {}
        with client.stream("GET", f"/jobs/{job['id']}/events/stream") as stream:
            event_type = ""
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    event_type = line.removeprefix("event: ")
                elif line.startswith("data: ") and event_type == "end":
                    end = json.loads(line.removeprefix("data: "))
                elif line.startswith("data: "):
                    types.append(event_type)
        assert end["state"] == "COMPLETED", end
        assert "backup.job.completed" in types
        waited = client.get(f"/jobs/{job['id']}/wait", params={"timeout": 5})
        assert waited.status_code == 200
        assert waited.json() == served.cli_json("describe-job", job["id"])


def test_a_restore_onto_an_existing_target_is_409_and_changes_nothing(served: Served) -> None:
    database = served.home / "restore" / "shop.db"
    before = database.read_bytes()
    point = next(
        point
        for point in served.cli_json("list-recovery-points")
        if point["resource_type"] == "sqlite"
    )
    with served.client(Role.RESTORER) as client:
        response = client.post(
            "/jobs/restore",
            params={"wait": 120},
            json={"point": point["id"], "target": {"path": str(database)}},
        )
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert error["code"] == "ConflictException"
    assert error["job"]["state"] == "FAILED"
    assert database.read_bytes() == before


def test_a_bad_body_is_422_naming_the_field(served: Served) -> None:
    with served.client(Role.RESTORER) as client:
        response = client.post("/jobs/restore", json={"point": "abc"})
    assert response.status_code == 422
    assert [field["field"] for field in response.json()["error"]["fields"]] == ["body.target"]


def test_an_auditor_reads_the_audit_trail_and_a_viewer_may_not(served: Served) -> None:
    with served.client(Role.AUDITOR) as client:
        check = client.get("/audit/verify").json()
        assert check["intact"] is True
        entries = client.get("/audit", params={"action": "backup.start"}).json()
        assert any(entry["actor"].startswith("token:e2e-operator:") for entry in entries)
    with served.client(Role.VIEWER) as client:
        assert client.get("/audit").status_code == 403


def remote(served: Served, role: Role, *args: str) -> subprocess.CompletedProcess[bytes]:
    return strongroom(
        served.home,
        "--server",
        served.base.removesuffix("/api/v1"),
        *args,
        env={"STRONGROOM_TOKEN": served.tokens[role]},
    )


@pytest.mark.parametrize(
    "command",
    [
        ["list-backups"],
        ["list-recovery-points"],
        ["report", "detailed", "--since", "30d"],
        ["report", "summary", "--since", "30d"],
    ],
)
@pytest.mark.parametrize("output", ["json", "table"])
def test_the_cli_as_a_client_prints_what_it_prints_locally(
    served: Served, command: list[str], output: str
) -> None:
    local = strongroom(served.home, *command, "--output", output)
    far = remote(served, Role.VIEWER, *command, "--output", output)
    assert far.returncode == local.returncode == 0, text(far)
    if command[-1] == "30d" and command[1] == "summary":
        # The report's period ends "now": compare everything but the moment it was made.
        near, away = json.loads(local.stdout) if output == "json" else {}, {}
        if output == "json":
            away = json.loads(far.stdout)
            near.pop("period"), away.pop("period")
            for item in [*near["resources"], *away["resources"]]:
                item.pop("age_seconds")
            assert away == near
        return
    assert far.stdout == local.stdout


def test_the_cli_as_a_client_starts_and_follows_a_backup(served: Served) -> None:
    resource = served.cli_json("list-resources")[0]["name"]
    started = remote(
        served,
        Role.OPERATOR,
        "start-backup",
        resource,
        "--vault",
        "default",
        "--wait",
        "--output",
        "json",
    )
    assert started.returncode == 0, text(started)
    job = json.loads(started.stdout)
    assert job["state"] == "COMPLETED"
    assert job == served.cli_json("describe-job", job["id"])
    described = remote(served, Role.VIEWER, "describe-job", job["id"][:8], "--output", "json")
    assert json.loads(described.stdout) == job
    waited = remote(served, Role.VIEWER, "wait-job", job["id"])
    assert waited.returncode == 0, text(waited)


def test_the_cli_as_a_client_exits_as_locally_on_a_refusal(served: Served) -> None:
    point = served.cli_json("list-recovery-points")[0]["id"]
    refused = remote(served, Role.VIEWER, "verify", point)
    assert refused.returncode == 4, text(refused)  # AccessDeniedError's exit code
    assert "may not verify.start" in text(refused)
    database = served.home / "restore" / "shop.db"
    sqlite_point = next(
        item["id"]
        for item in served.cli_json("list-recovery-points")
        if item["resource_type"] == "sqlite"
    )
    conflict = remote(
        served, Role.RESTORER, "restore", sqlite_point, "--target", f"path={database}", "--wait"
    )
    assert conflict.returncode == 7, text(conflict)  # ConflictError's exit code
    no_token = strongroom(served.home, "--server", "http://127.0.0.1:9", "list-backups")
    assert no_token.returncode == 2
    assert "STRONGROOM_TOKEN" in text(no_token)
