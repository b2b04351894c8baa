"""``strongroom copy`` and ``strongroom report replication-lag`` (docs/copies.md).

``copy`` queues a copy job for the daemon, or runs it here with ``--wait`` (the exit
codes of :mod:`strongroom.cli.jobs`). :func:`register` adds both to the command tree.
"""

from __future__ import annotations

from typing import Annotated

import typer

from strongroom.cli import jobs
from strongroom.cli.common import OutputOption, app_context
from strongroom.cli.render import OutputFormat, print_result, print_table

ColdOption = Annotated[
    int | None,
    typer.Option(
        min=1,
        help="Days after the copy's creation to move it to the cold tier.",
        show_default=False,
    ),
]
DeleteOption = Annotated[
    int | None,
    typer.Option(min=1, help="Days after the copy's creation to delete it.", show_default=False),
]


def register(app: typer.Typer, report_app: typer.Typer) -> None:
    """Add ``copy`` to the root command and ``replication-lag`` to ``report``."""
    app.command(name="copy")(copy)
    report_app.command(name="replication-lag")(replication_lag)


def copy(
    ctx: typer.Context,
    point: Annotated[str, typer.Argument(help="Recovery point id (or a unique prefix).")],
    to_vault: Annotated[
        str, typer.Option("--to-vault", help="The registered vault to copy it into.")
    ],
    move_to_cold_after_days: ColdOption = None,
    delete_after_days: DeleteOption = None,
    wait: jobs.WaitOption = False,
    max_attempts: jobs.MaxAttemptsOption = None,
    retry_interval: jobs.RetryIntervalOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Copy a recovery point into another vault: queue the job, or run it here with --wait.

    The copy is re-encrypted with the destination's keys, deduplicated against it and
    committed as a recovery point of its own that names its source; damaged source data
    commits nothing (exit code 6 with --wait). The source is only read.
    """
    from strongroom.services.jobs.copies import CopyService

    context = app_context(ctx)
    service = CopyService(context)
    job = service.start_copy(
        point,
        to_vault,
        lifecycle={
            "move_to_cold_after_days": move_to_cold_after_days,
            "delete_after_days": delete_after_days,
        },
        retry=jobs.retry_overrides(max_attempts, retry_interval),
    )
    jobs.start_and_follow(service.operations, job, wait=wait, output=output)


def replication_lag(ctx: typer.Context, output: OutputOption = OutputFormat.table) -> None:
    """How far the copies trail their source, per copy pair (source vault and resource to
    destination vault): the newest source point, the newest one copied, how many are
    behind and the lag between them."""
    from strongroom.services.reports.lag import ReplicationService

    pairs = ReplicationService(app_context(ctx)).lag()

    def for_people() -> None:
        print_table(
            "replication lag",
            ["source vault", "resource", "to vault", "newest", "newest copied", "behind", "lag"],
            [
                [
                    pair.source_vault,
                    pair.resource,
                    pair.destination_vault,
                    pair.newest_source_at.isoformat()[:19] if pair.newest_source_at else "-",
                    pair.newest_copied_at.isoformat()[:19] if pair.newest_copied_at else "never",
                    pair.behind,
                    f"{pair.lag_seconds:.0f} s" if pair.lag_seconds is not None else "-",
                ]
                for pair in pairs
            ],
        )

    print_result(output, lambda: [pair.as_json() for pair in pairs], for_people)
