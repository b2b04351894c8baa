"""``strongroom monitor``: alert on stale backups, failures, storage, verification, lifecycle."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from strongroom.cli.common import OutputOption, app_context
from strongroom.cli.render import OutputFormat, print_result, print_table, stdout

if TYPE_CHECKING:
    from strongroom.services.reports.monitor import MonitorReport

ALERTING_EXIT = 1
"""The exit code while anything alerts."""


def monitor(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="Check once and exit.")] = False,
    interval: Annotated[
        float, typer.Option("--interval", min=1, help="Seconds between checks (without --once).")
    ] = 300.0,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Check backup age, recent failures, storage, verification and the lifecycle against
    the thresholds of the configuration's `monitor` section (docs/monitor.md).

    Each new alert publishes an event (event rules route it) and each cleared one
    `monitor.resolved`; nothing alerts twice. After a pass with nothing alerting, the dead
    man's switch URL is pinged. Exits 1 while anything alerts (with --once, or when stopped),
    else 0.
    """
    from strongroom.services.reports.monitor import MonitorService

    service = MonitorService(app_context(ctx))
    stop = threading.Event()
    while True:
        report = service.check()
        print_result(output, report.as_json, _printer(report))
        if once or stop.wait(interval):
            break
    if report.alerting:
        raise typer.Exit(ALERTING_EXIT)


def _printer(report: MonitorReport) -> Callable[[], None]:
    return lambda: _print(report)


def _print(report: MonitorReport) -> None:
    if not report.alerts:
        stdout.print(f"{report.checked_at.isoformat()}: nothing alerts", highlight=False)
        return
    print_table(
        f"{len(report.alerts)} alert(s) at {report.checked_at.isoformat()}",
        ["check", "subject", "message", "new"],
        [
            [
                alert.check.removeprefix("monitor."),
                alert.subject,
                alert.message,
                "yes" if alert.key in report.raised else "",
            ]
            for alert in report.alerts
        ],
    )
