"""``strongroom lifecycle preview / run``: when recovery points move and go, and doing it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from strongroom.cli.common import OutputOption, app_context
from strongroom.cli.lock import current_actor
from strongroom.cli.render import OutputFormat, print_result, print_table, stdout

if TYPE_CHECKING:
    from strongroom.services.retention.lifecycle import LifecycleReport
    from strongroom.services.retention.lifecycle_preview import PointLifecycle

app = typer.Typer(
    help="Move recovery points to the cold tier and delete expired ones, by their lifecycle.",
    no_args_is_help=True,
)

VaultOption = Annotated[
    str | None, typer.Option(help="Only this vault's recovery points.", show_default=False)
]


@app.command()
def preview(
    ctx: typer.Context,
    vault: VaultOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """For each recovery point: when it moves to cold, when it is deleted, and what keeps it.

    The deletion date is the latest of the rule's delete date, the vault lock's minimum
    retention and the cold tier's minimum storage time; a legal hold keeps it indefinitely.
    """
    from strongroom.services.retention.lifecycle_preview import LifecyclePreviewService

    points = LifecyclePreviewService(app_context(ctx)).preview(vault=vault)

    def for_people() -> None:
        if not points:
            stdout.print(
                "no recovery points in the catalog" + (f" for vault {vault}" if vault else "")
            )
            return
        print_table(
            "lifecycle preview",
            ["point", "vault", "resource", "created", "tier", "moves", "deleted", "kept by"],
            [_preview_row(point) for point in points],
        )

    print_result(output, lambda: [point.to_json() for point in points], for_people)


def _preview_row(point: PointLifecycle) -> list[str]:
    kept_by = "; ".join(reason.message for reason in point.reasons if reason.kind != "rule")
    return [
        point.point_id[:12],
        point.vault,
        point.resource,
        point.created_at.isoformat(timespec="seconds"),
        point.tier,
        point.move,
        point.expiry,
        kept_by or "-",
    ]


@app.command()
def run(
    ctx: typer.Context,
    vault: VaultOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would happen; change nothing.")
    ] = False,
    gc: Annotated[
        bool,
        typer.Option("--gc", help="Run the vault's garbage collection after deletions."),
    ] = False,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Delete the recovery points whose lifecycle says so, then move due ones to cold.

    Points on legal hold, inside the vault lock's minimum retention or the cold tier's
    minimum storage time are kept and listed with the date they become deletable. Exits
    1 when an action failed (the others are done; the next run retries).
    """
    from strongroom.services.retention.lifecycle import LifecycleService

    report = LifecycleService(app_context(ctx)).run(
        vault=vault, dry_run=dry_run, gc=gc, actor=current_actor()
    )

    print_result(output, lambda: report.to_json(), lambda: _print_report(report))
    if not report.ok:
        raise typer.Exit(1)


def _print_report(report: LifecycleReport) -> None:
    title = "lifecycle run" + (" (dry run: nothing changed)" if report.dry_run else "")
    if not report.actions:
        stdout.print(f"{title}: nothing is due", highlight=False)
    else:
        print_table(
            title,
            ["point", "vault", "action", "outcome", "detail"],
            [[a.point_id[:12], a.vault, a.action, a.outcome, a.detail] for a in report.actions],
        )
    for name, gc in report.gc.items():
        stdout.print(
            f"gc {name}: {gc.packs_deleted} packs deleted, {gc.bytes_freed} bytes freed"
            + (
                f", {gc.packs_too_young} packs too young to collect yet"
                if gc.packs_too_young
                else ""
            ),
            highlight=False,
        )
    for name, error in report.gc_errors.items():
        stdout.print(f"[red]gc {name} failed:[/] {error}", highlight=False)
