"""``strongroom legal-hold add / remove / list``: keep recovery points whatever their lifecycle."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from strongroom.cli.common import OutputOption, app_context
from strongroom.cli.lock import current_actor
from strongroom.cli.render import OutputFormat, print_result, print_table, stdout

if TYPE_CHECKING:
    from strongroom.services.retention.legal_hold import Hold, LegalHoldService

app = typer.Typer(
    help="Legal holds: a held recovery point is never deleted, by lifecycle or by hand.",
    no_args_is_help=True,
)

PointArgument = Annotated[
    str, typer.Argument(help="Recovery point id (or a unique prefix of 6+ characters).")
]


def _service(ctx: typer.Context) -> LegalHoldService:
    from strongroom.services.retention.legal_hold import LegalHoldService

    return LegalHoldService(app_context(ctx))


@app.command()
def add(
    ctx: typer.Context,
    point: PointArgument,
    reason: Annotated[str, typer.Option(help="Why the point is held (case, ticket); recorded.")],
    output: OutputOption = OutputFormat.table,
) -> None:
    """Put a recovery point on legal hold."""
    hold = _service(ctx).add(point, reason=reason, actor=current_actor())
    _print_one(hold, output, "on legal hold")


@app.command()
def remove(
    ctx: typer.Context,
    point: PointArgument,
    reason: Annotated[
        str | None, typer.Option(help="Why the hold is lifted; recorded.", show_default=False)
    ] = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Lift the legal hold of a recovery point; its lifecycle applies again."""
    hold = _service(ctx).remove(point, actor=current_actor(), reason=reason)
    _print_one(hold, output, "released from legal hold")


@app.command("list")
def list_holds(
    ctx: typer.Context,
    vault: Annotated[
        str | None, typer.Option(help="Only this vault's points.", show_default=False)
    ] = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """List the recovery points on legal hold, oldest hold first."""
    holds = _service(ctx).list(vault=vault)

    def for_people() -> None:
        if not holds:
            stdout.print("no recovery point is on legal hold")
            return
        print_table(
            "legal holds",
            ["point", "vault", "resource", "since", "by", "reason"],
            [
                [
                    hold.point_id[:12],
                    hold.vault,
                    hold.resource,
                    hold.at.isoformat(timespec="seconds") if hold.at else "?",
                    hold.by or "?",
                    hold.reason or "",
                ]
                for hold in holds
            ],
        )

    print_result(output, lambda: [hold.to_json() for hold in holds], for_people)


def _print_one(hold: Hold, output: OutputFormat, what: str) -> None:
    print_result(
        output,
        lambda: hold.to_json(),
        lambda: stdout.print(
            f"recovery point {hold.point_id[:12]} ({hold.vault}) {what}", highlight=False
        ),
    )
