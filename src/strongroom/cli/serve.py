"""``strongroom serve``: the daemon that fires rules, runs jobs and applies lifecycles."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from strongroom.cli.common import app_context
from strongroom.cli.render import stderr
from strongroom.errors import ConfigError

if TYPE_CHECKING:
    from strongroom.engine.daemon import Daemon

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def serve(
    ctx: typer.Context,
    once: Annotated[
        bool,
        typer.Option("--once", help="One scheduling tick, run the jobs it made runnable, exit."),
    ] = False,
    tick: Annotated[
        float, typer.Option("--tick", min=0.01, help="Seconds between scheduling ticks.")
    ] = 15.0,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="Jobs this process runs at once.")
    ] = 4,
    shutdown_timeout: Annotated[
        float,
        typer.Option(
            "--shutdown-timeout",
            min=0,
            help="On SIGTERM/SIGINT, seconds running jobs may take to finish before they "
            "are aborted.",
        ),
    ] = 60.0,
    standby: Annotated[
        bool,
        typer.Option(
            "--standby",
            help="If another daemon schedules this catalog, run jobs and take over "
            "scheduling when it stops (default: refuse to start).",
        ),
    ] = False,
    lifecycle_minutes: Annotated[
        float,
        typer.Option("--lifecycle-every", min=1, help="Minutes between lifecycle runs."),
    ] = 60.0,
    history_days: Annotated[
        int | None,
        typer.Option(
            "--history-days",
            min=1,
            help="Once a day, prune the job history (job events, transitions of ended jobs) "
            "older than this many days; default: keep it all.",
            show_default=False,
        ),
    ] = None,
    audit_anchor_vault: Annotated[
        list[str] | None,
        typer.Option(
            "--audit-anchor-vault",
            help="At every lifecycle pass, write a signed anchor of the audit trail's head "
            "into this vault when the head moved (repeat for more; needs the report signing "
            "key). See docs/audit.md.",
            show_default=False,
        ),
    ] = None,
    metrics_address: Annotated[
        str | None,
        typer.Option(
            "--metrics-address",
            help="Serve Prometheus metrics at http://HOST:PORT/metrics (e.g. 127.0.0.1:9464).",
            show_default=False,
        ),
    ] = None,
    api_address: Annotated[
        str | None,
        typer.Option(
            "--api-address",
            help="Serve the REST API at http://HOST:PORT/api/v1 (e.g. 127.0.0.1:8470); "
            "off by default. See docs/api.md.",
            show_default=False,
        ),
    ] = None,
    allow_remote: Annotated[
        bool,
        typer.Option(
            "--allow-remote",
            help="Accept an --api-address other machines can reach (use TLS or a TLS proxy).",
        ),
    ] = False,
    tls_cert_file: Annotated[
        Path | None,
        typer.Option(help="TLS certificate (PEM) for the API.", show_default=False),
    ] = None,
    tls_key_file: Annotated[
        Path | None,
        typer.Option(help="TLS private key (PEM) for the API.", show_default=False),
    ] = None,
) -> None:
    """Run the scheduler, the job executor, the lifecycle runner and event delivery until
    stopped; with --metrics-address, serve the Prometheus metrics too; with --api-address,
    the REST API (docs/api.md).

    Only one daemon schedules a catalog at a time (a lease in the catalog); others refuse
    to start, or wait with --standby. SIGTERM or SIGINT stops taking work, lets running
    jobs finish for up to --shutdown-timeout seconds, aborts the rest cleanly and exits
    0; a second signal aborts them at once.
    """
    # The catalog and the engine load only when a command runs (tests/unit/cli/test_startup.py).
    from strongroom.daemon.compose import open_daemon
    from strongroom.engine.daemon import DaemonSettings

    try:
        settings = DaemonSettings(
            tick_seconds=tick,
            workers=workers,
            shutdown_timeout=shutdown_timeout,
            standby=standby,
            leader_lease_seconds=max(60.0, 4 * tick),
            lifecycle_interval=timedelta(minutes=lifecycle_minutes),
        )
    except ValueError as error:
        raise ConfigError(str(error)) from None
    if api_address is not None:
        from strongroom.api.server import check_api_address

        check_api_address(
            api_address, allow_remote=allow_remote, tls_cert=tls_cert_file, tls_key=tls_key_file
        )
    context = app_context(ctx)
    daemon = open_daemon(
        context, settings, history_days=history_days, anchor_vaults=audit_anchor_vault or ()
    )
    endpoint = None
    if metrics_address is not None:
        from strongroom.daemon.metrics import open_registry
        from strongroom.metrics.server import serve_metrics

        registry = open_registry(context, daemon_up=lambda: not daemon.stopping)
        endpoint = serve_metrics(registry, metrics_address)
        stderr.print(
            f"strongroom serve: metrics at http://{metrics_address}/metrics", highlight=False
        )
    api = None
    if api_address is not None:
        from strongroom.api.app import create_app
        from strongroom.api.server import serve_api

        api = serve_api(
            create_app(context),
            api_address,
            allow_remote=allow_remote,
            tls_cert=tls_cert_file,
            tls_key=tls_key_file,
        )
        scheme = "https" if tls_cert_file is not None else "http"
        stderr.print(f"strongroom serve: API at {scheme}://{api_address}/api/v1", highlight=False)
    previous = {number: signal.signal(number, _stopper(daemon)) for number in _STOP_SIGNALS}
    stderr.print(
        f"strongroom serve: catalog {context.catalog.display_url}, tick {tick:g}s, "
        f"{workers} worker(s){', once' if once else ''}",
        highlight=False,
    )
    try:
        report = daemon.run(once=once)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        if endpoint is not None:
            endpoint.stop()
        if api is not None:
            api.stop()
    stderr.print(
        f"strongroom serve: stopped; {len(report.finished)} running job(s) finished, "
        f"{len(report.aborted)} aborted",
        highlight=False,
    )
    if report.unresponsive:
        # Their handler threads never returned; the jobs are ABORTED in the catalog, but
        # the interpreter would wait for those threads forever at exit.
        stderr.print(
            f"strongroom serve: {len(report.unresponsive)} job handler(s) did not stop; "
            "exiting without waiting for them",
            highlight=False,
        )
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def _stopper(daemon: Daemon) -> Callable[[int, FrameType | None], None]:
    def stop(signum: int, frame: FrameType | None) -> None:
        daemon.stop()

    return stop
