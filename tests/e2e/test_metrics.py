"""Prometheus metrics of a strongroom that ran backups: `strongroom metrics` passes
`promtool check metrics`, and a real Prometheus scraping `strongroom serve
--metrics-address` has data for every panel of the shipped Grafana dashboard (replication
lag with a real copy done to a DR vault)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.error import URLError
from urllib.request import urlopen

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.data import make_database
from tests.support.operations_flow import PASSPHRASE, Cli
from tests.support.peers import free_port
from tests.support.services import PrometheusService, unique_name
from tests.support.waiting import wait_for

pytestmark = pytest.mark.e2e

DASHBOARD = Path(__file__).resolve().parents[2] / "dashboards" / "strongroom.json"


@dataclass(frozen=True)
class World:
    cli: Cli
    point_id: str


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """A home with one completed, verified backup copied to the DR vault by its rule's
    copy action, and one failed backup."""
    root = tmp_path_factory.mktemp("metrics")
    cli = Cli(home=root / "home")
    cli(
        "vault", "create", "v", "--url", (root / "vault").as_uri(), "--passphrase-env", "VAULT_PASS"
    )
    config = root / "config.yaml"
    config.write_text(f"""\
vaults:
  v: {{url: {(root / "vault").as_uri()}, key: {{provider: passphrase, passphrase: env:VAULT_PASS}}}}
  dr: {{url: {(root / "dr").as_uri()}, key: {{provider: passphrase, passphrase: env:VAULT_PASS}}}}
resources:
  app-db: {{type: sqlite, path: {make_database(root / "app.db")}}}
  gone: {{type: sqlite, path: {root / "missing.db"}}}
plans:
  ops:
    rules:
      - name: nightly
        schedule: "cron(0 3 1 1 ? *)"
        target_vault: v
        retry: {{max_attempts: 0}}
        copy_actions: [{{destination_vault: dr}}]
    selections:
      - {{name: all, names: [app-db, gone]}}
metrics:
  prices_per_gb_month: {{warm: 0.05, cold: 0.01}}
""")
    cli("apply", "-f", str(config))
    backup = cli.json("start-backup", "app-db", "--rule", "ops/nightly", "--wait")
    point_id = backup["result"]["point_id"]
    cli("verify", point_id, "--read-data", "--wait")
    cli.json("start-backup", "gone", "--rule", "ops/nightly", "--wait", expect=3)
    cli("serve", "--once")  # runs the copy action's copy
    [copied] = cli.json("list-recovery-points", "--vault", "dr")
    assert copied["source_point_id"] == point_id
    return World(cli, point_id)


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(
    found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return found[(name, frozenset(labels.items()))]


def test_metrics_prints_what_promtool_accepts_and_the_catalog_holds(
    world: World, prometheus_service: PrometheusService
) -> None:
    printed = world.cli("metrics").stdout

    checked = subprocess.run(
        [prometheus_service.promtool, "check", "metrics"],
        input=printed,
        capture_output=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()
    found = samples(printed.decode())
    backup = {"kind": "backup", "resource_type": "sqlite", "rule": "ops/nightly"}
    assert (
        value(found, "strongroom_jobs_total", resource="app-db", state="COMPLETED", **backup) == 1
    )
    assert value(found, "strongroom_jobs_total", resource="gone", state="FAILED", **backup) == 1
    assert (
        value(
            found,
            "strongroom_job_failures_total",
            resource="gone",
            error_code="ResourceNotFoundException",
            **backup,
        )
        == 1
    )
    app = {"resource": "app-db", "resource_type": "sqlite"}
    assert value(found, "strongroom_last_verify_success", **app) == 1
    assert value(found, "strongroom_recovery_point_age_seconds", **app) >= 0
    assert value(found, "strongroom_recovery_point_logical_bytes", **app) > 0
    stored = value(found, "strongroom_storage_bytes", vault="v", tier="warm")
    assert stored > 0 and value(found, "strongroom_storage_bytes", vault="v", tier="cold") == 0
    cost = value(found, "strongroom_storage_monthly_cost_dollars", vault="v", tier="warm")
    assert cost == pytest.approx(stored / 1e9 * 0.05)
    assert value(found, "strongroom_schedule_compliance_ratio", rule="ops/nightly") == 1
    assert value(found, "strongroom_queue_depth", kind="backup") == 0
    assert value(found, "strongroom_daemon_up") == 0
    pair = {"source_vault": "v", "resource": "app-db", "destination_vault": "dr"}
    assert value(found, "strongroom_replication_lag_seconds", **pair) == 0
    assert value(found, "strongroom_replication_behind_points", **pair) == 0
    assert (
        "strongroom_recovery_point_age_seconds",
        frozenset({("resource", "gone"), ("resource_type", "sqlite")}),
    ) not in found


@pytest.fixture
def served(world: World) -> Iterator[str]:
    """`strongroom serve --metrics-address` on a free port; yields the address."""
    address = f"127.0.0.1:{free_port()}"
    environment = {**PASSPHRASE, "STRONGROOM_HOME": str(world.cli.home)}
    process = subprocess.Popen(
        [sys.executable, "-m", "strongroom", "serve", "--tick", "1", "--metrics-address", address],
        env={**os.environ, **environment},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(lambda: _answers(f"http://{address}/metrics") or process.poll() is not None)
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
        yield address
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=120)


def _answers(url: str) -> bool:
    try:
        with urlopen(url, timeout=5):  # noqa: S310 - a loopback URL of the test
            return True
    except (URLError, OSError):
        return False


def panel_queries() -> list[tuple[str, str]]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel["targets"]
    ]


def test_the_dashboard_has_the_seeds_panels_and_replication_lag() -> None:
    titles = [title for title, _ in panel_queries()]
    assert titles == [
        "Backup success rate",
        "Backup duration by component",
        "Backup size trend",
        "Failed backups",
        "Backup age",
        "Storage cost breakdown",
        "Verification status",
        "Schedule compliance",
        "Replication lag",
    ]
    assert all("strongroom_" in expression for _, expression in panel_queries())


def test_every_dashboard_panel_shows_data_from_a_real_prometheus(
    served: str, prometheus_service: PrometheusService
) -> None:
    name = unique_name("sr_metrics")
    target = prometheus_service.targets / f"{name}.json"
    target.write_text(json.dumps([{"targets": [served], "labels": {"strongroom_test": name}}]))
    try:
        wait_for(
            lambda: prometheus_service.query(
                f'strongroom_daemon_up{{strongroom_test="{name}"}} == 1'
            )
        )
        for title, expression in panel_queries():
            result = wait_for(lambda expression=expression: prometheus_service.query(expression))
            assert result, title
        # The lag panel's data is this strongroom's copy pair (other tests share the server).
        [pair] = prometheus_service.query(
            f'strongroom_replication_lag_seconds{{strongroom_test="{name}",resource="app-db"}}'
        )
        assert pair["metric"]["destination_vault"] == "dr" and pair["value"][1] == "0"
    finally:
        target.unlink()
