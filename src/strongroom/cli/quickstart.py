"""``strongroom quickstart``: the embedded default, set up and proven in one command."""

from __future__ import annotations

import typer

from strongroom.cli.common import app_context
from strongroom.cli.render import print_table, stdout


def quickstart(ctx: typer.Context) -> None:
    """Create STRONGROOM_HOME, back up sample data, verify, restore and compare it.

    Exits 0 only if the restored data matched the source byte for byte.
    """
    from strongroom.services.quickstart.run import QuickstartService  # services load on first use

    context = app_context(ctx)
    home = context.home
    report = QuickstartService(context).run()
    print_table(
        f"strongroom quickstart in {home}",
        ["step", "result", "seconds", "detail"],
        [
            [step.step, "ok" if step.ok else "FAILED", f"{step.seconds:.2f}", step.detail]
            for step in report.steps
        ],
    )
    if not report.ok:
        stdout.print("[bold red]quickstart failed[/]: the restored data did not match.")
        raise typer.Exit(1)
    points = ", ".join(point[:12] for point in report.point_ids.values())
    stdout.print(f"[bold green]quickstart passed[/]: recovery points {points} restored.")
