"""Scheduled compliance reports (#18): a `reports` rule the daemon runs, the signed report
kept and delivered by email (a real SMTP server, aiosmtpd) and by webhook (a local HTTP
server), once per firing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.operations_flow import Cli
from tests.support.peers import Endpoint, Mailbox, http_endpoint, smtp_server

pytestmark = pytest.mark.e2e
__all__ = ["http_endpoint", "smtp_server"]


def config(tmp_path: Path, mailbox: Mailbox, endpoint: Endpoint, channels: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(f"""\
vaults:
  v:
    url: {(tmp_path / "vault").as_uri()}
    key: {{provider: passphrase, passphrase: env:VAULT_PASS}}
notifications:
  channels:
    auditors:
      type: email
      host: 127.0.0.1
      port: {mailbox.port}
      security: none
      sender: strongroom@example.com
      recipients: [audit@example.com]
    archive:
      type: webhook
      url: {endpoint.url("/reports")}
    pager:
      type: pagerduty
      routing_key: env:PD_KEY
reports:
  rules:
    - name: weekly-soc2
      frameworks: [soc2, gdpr]
      period: 7d
      format: pdf
      schedule: rate(7 days)
      channels: {channels}
      folder: {tmp_path / "reports"}
""")
    return path


def test_a_due_report_is_signed_kept_and_delivered_once(
    tmp_path: Path, smtp_server: Mailbox, http_endpoint: Endpoint
) -> None:
    cli = Cli(home=tmp_path / "home", env={"PD_KEY": "pd-key"})
    cli("apply", "-f", str(config(tmp_path, smtp_server, http_endpoint, "[auditors, archive]")))
    cli("report", "signing-key", "create")

    cli("serve", "--once")
    (kept,) = sorted((tmp_path / "reports").glob("weekly-soc2-*.pdf"))
    assert "signature good" in cli("report", "verify", str(kept)).stdout.decode()

    (message,) = smtp_server.messages
    assert message["Subject"].startswith("[strongroom] compliance report weekly-soc2 (soc2, gdpr)")
    attachments = {part.get_filename(): part.get_content() for part in message.iter_attachments()}
    assert attachments[kept.name] == kept.read_bytes()
    signature = json.loads(attachments[kept.name + ".sig"])
    assert signature["file"] == kept.name and signature["algorithm"] == "ed25519"

    ((path, _headers, body),) = [item for item in http_endpoint.received if item[2] is not None]
    assert path == "/reports" and body["file"] == str(kept) and body["rule"] == "weekly-soc2"
    assert body["status"] in ("fail", "no_evidence", "pass")

    cli("serve", "--once")  # the next firing is a week away: nothing more is sent
    assert len(smtp_server.messages) == 1
    generated = cli.json("audit", "list", "--action", "report.generate")
    assert [entry["actor"].split("@")[0] for entry in generated] == ["strongroom-scheduler"]


def test_a_report_rule_needs_known_channels_that_take_reports(
    tmp_path: Path, smtp_server: Mailbox, http_endpoint: Endpoint
) -> None:
    cli = Cli(home=tmp_path / "home", env={"PD_KEY": "pd-key"})
    for channels, words in (
        ("[nobody]", "no channel named 'nobody'"),
        ("[pager]", "pages PagerDuty"),
    ):
        refused = cli(
            "validate", "-f", str(config(tmp_path, smtp_server, http_endpoint, channels)), expect=2
        )
        output = refused.stdout.decode() + refused.stderr.decode()
        assert words in output and "reports.rules[0].channels[0]" in output, output
