"""``strongroom metrics``: print the Prometheus metrics once (docs/metrics.md)."""

from __future__ import annotations

import sys

import typer

from strongroom.cli.common import app_context


def metrics(ctx: typer.Context) -> None:
    """Print every strongroom metric once, in Prometheus' text exposition format.

    The numbers come from the catalog, as the endpoint of `strongroom serve
    --metrics-address` serves them; `strongroom_daemon_up` is 0 here.
    """
    from strongroom.daemon.metrics import open_registry
    from strongroom.metrics.server import exposition

    text, _ = exposition(open_registry(app_context(ctx)))
    sys.stdout.buffer.write(text)
    sys.stdout.flush()
