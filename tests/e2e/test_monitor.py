"""`strongroom monitor` as an operator runs it: a stale resource and a failure trip it, its
events reach an event rule's webhook once, a cleared alert resolves, a healthy pass pings
the dead man's switch."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.data import make_database
from tests.support.operations_flow import Cli
from tests.support.peers import Endpoint, http_endpoint

pytestmark = pytest.mark.e2e
__all__ = ["http_endpoint"]


def write_config(root: Path, endpoint: Endpoint, *, stale_hours: float | None, gone: bool) -> Path:
    stale = f"resources: {{stale: {{backup_age_hours: {stale_hours}}}}}" if stale_hours else ""
    resources = [
        f"  fresh: {{type: sqlite, path: {root / 'fresh.db'}}}",
        f"  stale: {{type: sqlite, path: {root / 'stale.db'}}}",
    ]
    if gone:
        resources.append(f"  gone: {{type: sqlite, path: {root / 'missing.db'}}}")
    path = root / "config.yaml"
    path.write_text(
        f"""\
vaults:
  v: {{url: {(root / "vault").as_uri()}, key: {{provider: passphrase, passphrase: env:VAULT_PASS}}}}
resources:
"""
        + "\n".join(resources)
        + f"""
monitor:
  backup_age_hours: 24
  {stale}
  dead_mans_switch_url: {endpoint.url("/ping")}
notifications:
  channels:
    hook: {{type: webhook, url: "{endpoint.url("/alerts")}"}}
  rules:
    - name: monitor
      pattern: {{types: ["monitor.*"]}}
      targets: [{{channel: hook}}]
"""
    )
    return path


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    cli = Cli(home=tmp_path / "home")
    cli(
        "vault",
        "create",
        "v",
        "--url",
        (tmp_path / "vault").as_uri(),
        "--passphrase-env",
        "VAULT_PASS",
    )
    make_database(tmp_path / "fresh.db")
    make_database(tmp_path / "stale.db")
    return cli


def test_a_stale_resource_and_a_failure_alert_once_and_a_cleared_alert_resolves(
    tmp_path: Path, cli: Cli, http_endpoint: Endpoint
) -> None:
    cli("apply", "-f", str(write_config(tmp_path, http_endpoint, stale_hours=0.0001, gone=True)))
    cli("start-backup", "fresh", "--vault", "v", "--wait")
    cli("start-backup", "stale", "--vault", "v", "--wait")
    cli("start-backup", "gone", "--vault", "v", "--wait", "--retry-interval", "0.1", expect=3)

    first = cli.json("monitor", "--once", expect=1)

    alerts = {(alert["check"], alert["subject"]) for alert in first["alerts"]}
    assert alerts == {("monitor.backup_age_exceeded", "stale"), ("monitor.failures", "backup/gone")}
    assert len(first["raised"]) == 2 and first["dead_mans_switch_pinged"] is None
    table = cli("monitor", "--once", expect=1).stdout.decode()
    assert "backup_age_exceeded" in table and "stale" in table
    again = cli.json("monitor", "--once", expect=1)
    assert again["raised"] == [] and len(again["alerts"]) == 2

    cli("serve", "--once")
    delivered = http_endpoint.bodies("/alerts")
    assert sorted(event["type"] for event in delivered) == [
        "monitor.backup_age_exceeded",
        "monitor.failures",
    ]
    age = next(event for event in delivered if event["subject"] == "stale")
    assert age["payload"]["resource"] == "stale"
    assert age["payload"]["value"] > age["payload"]["threshold"] == pytest.approx(0.36)

    # The stale threshold goes back to the default: that alert resolves, the failure stays.
    cli("apply", "-f", str(write_config(tmp_path, http_endpoint, stale_hours=None, gone=True)))
    cleared = cli.json("monitor", "--once", expect=1)
    assert cleared["resolved"] == ["monitor/monitor.backup_age_exceeded/stale"]
    assert [alert["check"] for alert in cleared["alerts"]] == ["monitor.failures"]
    cli("serve", "--once")
    assert [event["type"] for event in http_endpoint.bodies("/alerts")][2:] == ["monitor.resolved"]
    assert http_endpoint.bodies("/ping") == []


def test_a_healthy_pass_exits_0_and_pings_the_dead_mans_switch(
    tmp_path: Path, cli: Cli, http_endpoint: Endpoint
) -> None:
    cli("apply", "-f", str(write_config(tmp_path, http_endpoint, stale_hours=None, gone=False)))
    cli("start-backup", "fresh", "--vault", "v", "--wait")
    cli("start-backup", "stale", "--vault", "v", "--wait")

    healthy = cli.json("monitor", "--once")

    assert healthy["alerting"] is False and healthy["alerts"] == []
    assert healthy["dead_mans_switch_pinged"] is True
    assert len(http_endpoint.bodies("/ping")) == 1


def write_paging_config(root: Path, endpoint: Endpoint, *, stale: bool) -> Path:
    threshold = "monitor: {resources: {stale: {backup_age_hours: 0.0001}}}" if stale else ""
    path = root / "config.yaml"
    path.write_text(f"""\
vaults:
  v: {{url: {(root / "vault").as_uri()}, key: {{provider: passphrase, passphrase: env:VAULT_PASS}}}}
resources:
  stale: {{type: sqlite, path: {root / "stale.db"}}}
{threshold}
notifications:
  channels:
    pager:
      type: pagerduty
      routing_key: env:PD_KEY
      events_url: "{endpoint.url("/pagerduty")}"
      min_severity: critical
  rules:
    - name: monitor
      pattern: {{types: ["monitor.*"]}}
      targets: [{{channel: pager}}]
""")
    return path


def test_a_monitor_alert_pages_once_and_its_resolution_resolves_the_page(
    tmp_path: Path, cli: Cli, http_endpoint: Endpoint
) -> None:
    paging = Cli(home=cli.home, env={"PD_KEY": "pd-key"})
    paging("apply", "-f", str(write_paging_config(tmp_path, http_endpoint, stale=True)))
    paging("start-backup", "stale", "--vault", "v", "--wait")

    assert paging.json("monitor", "--once", expect=1)["raised"] != []
    paging("serve", "--once")
    [trigger] = http_endpoint.bodies("/pagerduty")
    assert trigger["event_action"] == "trigger"
    key = "strongroom/monitor/pager/monitor.backup_age_exceeded/stale"
    assert trigger["dedup_key"] == key and trigger["routing_key"] == "pd-key"
    assert "stale" in trigger["payload"]["summary"]

    # Still stale: the monitor publishes nothing new and nothing pages again.
    assert paging.json("monitor", "--once", expect=1)["raised"] == []
    paging("serve", "--once")
    assert len(http_endpoint.bodies("/pagerduty")) == 1

    # Cleared: monitor.resolved (info) reaches the critical-only channel that was paged.
    paging("apply", "-f", str(write_paging_config(tmp_path, http_endpoint, stale=False)))
    assert paging.json("monitor", "--once")["resolved"] == [
        "monitor/monitor.backup_age_exceeded/stale"
    ]
    paging("serve", "--once")
    pages = http_endpoint.bodies("/pagerduty")
    assert [(page["event_action"], page["dedup_key"]) for page in pages] == [
        ("trigger", key),
        ("resolve", key),
    ]

    # Stale again: a new incident, paged once more.
    paging("apply", "-f", str(write_paging_config(tmp_path, http_endpoint, stale=True)))
    paging.json("monitor", "--once", expect=1)
    paging("serve", "--once")
    paging("serve", "--once")
    actions = [page["event_action"] for page in http_endpoint.bodies("/pagerduty")]
    assert actions == ["trigger", "resolve", "trigger"]
