"""Event rules, email, PagerDuty and webhooks end to end, against real peers.

A real SMTP server (aiosmtpd) receives strongroom's emails, whose HTML the test parses;
a local HTTP server stands for the PagerDuty Events API and a webhook. The daemon
(`strongroom serve --once`) delivers what the CLI's jobs published.
"""

from __future__ import annotations

from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from strongroom.catalog import events as catalog_events
from strongroom.catalog import jobs as catalog_jobs
from strongroom.catalog import open_catalog
from strongroom.catalog import outbox as catalog_outbox
from strongroom.catalog.types import JobKind, JobState
from tests.support.data import make_database
from tests.support.operations_flow import Cli
from tests.support.peers import Endpoint, Mailbox, http_endpoint, smtp_server

pytestmark = pytest.mark.e2e
__all__ = ["http_endpoint", "smtp_server"]

ROUTING_KEY = "pd-routing-key-that-must-never-be-logged"
HOOK_TOKEN = "Bearer hook-token-that-must-never-be-logged"


class Facts(HTMLParser):
    """The ``data-fact`` cells of an email's HTML, by name."""

    def __init__(self) -> None:
        super().__init__()
        self.facts: dict[str, str] = {}
        self._current: str | None = None
        self.steps: list[str] = []
        self._in_step = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        fact = dict(attrs).get("data-fact")
        if fact:
            self._current = fact
            self.facts[fact] = ""
        self._in_step = tag == "li"

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "strong", "code") and self._current and self.facts[self._current]:
            self._current = None
        if tag == "li":
            self._in_step = False

    def handle_data(self, data: str) -> None:
        if self._current:
            self.facts[self._current] += data.strip()
        if self._in_step and data.strip():
            self.steps.append(data.strip())


def facts_of(message: EmailMessage) -> Facts:
    html = message.get_body(("html",))
    assert html is not None
    parser = Facts()
    parser.feed(html.get_content())
    return parser


def config(tmp_path: Path, mailbox: Mailbox, endpoint: Endpoint) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(f"""\
vaults:
  v:
    url: {(tmp_path / "vault").as_uri()}
    key: {{provider: passphrase, passphrase: env:VAULT_PASS}}
resources:
  app-db:
    type: sqlite
    path: {tmp_path / "app.db"}
    tags: {{team: shop}}
plans:
  ops:
    rules:
      - name: nightly
        schedule: cron(0 3 1 1 ? *)
        target_vault: v
        retry: {{max_attempts: 0}}
    selections:
      - {{name: all, names: [app-db]}}
notifications:
  channels:
    mail:
      type: email
      host: 127.0.0.1
      port: {mailbox.port}
      security: none
      sender: strongroom@example.com
      recipients: [ops@example.com]
      min_severity: warning
    chat:
      type: apprise
      url: env:CHAT_URL
    pager:
      type: pagerduty
      routing_key: env:PD_KEY
      events_url: {endpoint.url("/pagerduty")}
      min_severity: critical
  rules:
    - name: escalate
      pattern: {{types: [backup.escalation, backup.escalation.resolved]}}
      targets: [{{channel: mail}}, {{channel: pager}}]
    - name: shop-backups
      pattern:
        types: [backup.job.completed, backup.job.failed]
        resource_types: [sqlite]
        tags: {{team: shop}}
      targets:
        - webhook: {{url: "{endpoint.url("/hook")}", headers: {{Authorization: env:HOOK_TOKEN}}}}
    - name: chat-failures
      pattern: {{types: [backup.job.failed]}}
      targets: [{{channel: chat}}]
    - name: verify-every-backup
      pattern: {{types: [backup.job.completed]}}
      targets: [{{start_job: {{kind: verify, read_data: true}}}}]
""")
    return path


def test_a_failure_emails_and_pages_once_and_the_next_success_resolves_it(
    tmp_path: Path, smtp_server: Mailbox, http_endpoint: Endpoint
) -> None:
    chat_url = f"json://127.0.0.1:{http_endpoint.port}/chat"
    cli = Cli(
        home=tmp_path / "home",
        env={"PD_KEY": ROUTING_KEY, "HOOK_TOKEN": HOOK_TOKEN, "CHAT_URL": chat_url},
    )
    cli(
        "vault",
        "create",
        "v",
        "--url",
        (tmp_path / "vault").as_uri(),
        "--passphrase-env",
        "VAULT_PASS",
    )
    cli("apply", "-f", str(config(tmp_path, smtp_server, http_endpoint)))

    failed = cli.json("start-backup", "app-db", "--rule", "ops/nightly", "--wait", expect=3)
    assert failed["state"] == "FAILED"
    served = cli("serve", "--once")

    assert len(smtp_server.messages) == 1
    email = smtp_server.messages[0]
    assert "FAILED" in email["Subject"] and "backup/app-db/ops/nightly" in email["Subject"]
    assert email.get_body(("plain",)) is not None
    facts = facts_of(email)
    assert facts.facts["component"] == "backup/app-db/ops/nightly"
    assert facts.facts["status"] == "FAILED"
    assert facts.facts["error_code"] == "ResourceNotFoundException"
    assert facts.facts["attempts"] == "1 of 1"
    assert facts.facts["log"] == f"strongroom describe-job {failed['id']}"
    assert facts.facts["vault"] == "v"
    assert any("describe-job" in step for step in facts.steps)
    pages = http_endpoint.bodies("/pagerduty")
    assert [page["event_action"] for page in pages] == ["trigger"]
    dedup_key = pages[0]["dedup_key"]
    assert dedup_key == "strongroom/escalate/pager/backup/app-db/ops/nightly"
    assert pages[0]["routing_key"] == ROUTING_KEY
    assert pages[0]["payload"]["severity"] == "critical"
    hooks = [(headers, body) for path, headers, body in http_endpoint.received if path == "/hook"]
    assert [body["type"] for _, body in hooks] == ["backup.job.failed"]
    assert hooks[0][0]["Authorization"] == HOOK_TOKEN
    assert hooks[0][1]["payload"]["job"]["id"] == failed["id"]
    (chat,) = http_endpoint.bodies("/chat")  # Apprise's JSON notifier, a real HTTP POST
    assert chat["title"] == "FAILED: backup/app-db/ops/nightly"
    assert "ResourceNotFoundException" in chat["message"]

    # The same failure again: the incident is open, so no second email and no second page.
    cli.json("start-backup", "app-db", "--rule", "ops/nightly", "--wait", expect=3)
    served_again = cli("serve", "--once")
    assert len(smtp_server.messages) == 1
    assert len(http_endpoint.bodies("/pagerduty")) == 1
    assert len(http_endpoint.bodies("/hook")) == 2
    assert len(http_endpoint.bodies("/chat")) == 2  # a plain failure notice is not an incident

    # The next success resolves the page (once) and starts the verify the rule asks for.
    make_database(tmp_path / "app.db")
    completed = cli.json("start-backup", "app-db", "--rule", "ops/nightly", "--wait")
    cli("serve", "--once")
    pages = http_endpoint.bodies("/pagerduty")
    assert [page["event_action"] for page in pages] == ["trigger", "resolve"]
    assert pages[1]["dedup_key"] == dedup_key
    assert len(smtp_server.messages) == 2
    assert "COMPLETED" in smtp_server.messages[1]["Subject"]
    hook_types = [body["type"] for body in http_endpoint.bodies("/hook")]
    assert hook_types == ["backup.job.failed", "backup.job.failed", "backup.job.completed"]

    cli("serve", "--once")  # runs the verify job the rule queued

    with open_catalog(None, tmp_path / "home") as catalog, catalog.session() as session:
        verifies = catalog_jobs.list_jobs(session, kinds=[JobKind.VERIFY])
        assert [(job.state, job.params["read_data"]) for job in verifies] == [
            (JobState.COMPLETED, True)
        ]
        assert verifies[0].params["point_id"] == completed["result"]["point_id"]
        deliveries = catalog_outbox.list_deliveries(session)
        assert {row.state for row in deliveries} == {catalog_outbox.DELIVERED}
        assert catalog_outbox.list_escalations(session, open_only=True) == []
        published = [
            event.type
            for event in catalog_events.list_events(session, limit=None)
            if event.type.startswith(("backup.job.failed", "backup.job.completed", "backup.esc"))
        ]
    # The events match: two failures, one success; the escalation resolved once.
    assert published.count("backup.job.failed") == 2
    assert published.count("backup.job.completed") == 1
    assert "backup.escalation" in published
    assert published.count("backup.escalation.resolved") == 1
    # And so do the metrics.
    found = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(cli("metrics").stdout.decode())
        for sample in family.samples
    }
    job = {"kind": "backup", "resource": "app-db", "resource_type": "sqlite", "rule": "ops/nightly"}

    def metric(name: str, **labels: str) -> float:
        return found[(name, tuple(sorted(labels.items())))]

    assert metric("strongroom_jobs_total", state="FAILED", **job) == 2
    assert metric("strongroom_jobs_total", state="COMPLETED", **job) == 1
    failures = {**job, "error_code": "ResourceNotFoundException"}
    assert metric("strongroom_job_failures_total", **failures) == 2
    assert metric("strongroom_last_verify_success", resource="app-db", resource_type="sqlite") == 1
    assert metric("strongroom_event_deliveries", state="dead") == 0
    for result in (served, served_again):
        output = result.stdout + result.stderr
        assert ROUTING_KEY.encode() not in output and b"hook-token" not in output
