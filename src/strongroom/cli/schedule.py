"""``strongroom schedule …``: when the rules of a plan fire."""

from __future__ import annotations

from typing import Annotated

import typer

from strongroom.cli.common import OutputOption, app_context
from strongroom.cli.render import OutputFormat, print_result, print_table

app = typer.Typer(help="When the rules of a plan fire.", no_args_is_help=True)


@app.command()
def preview(
    ctx: typer.Context,
    plan: Annotated[str, typer.Argument(help="The plan's name.")],
    rule: Annotated[
        str | None, typer.Option("--rule", help="Only this rule.", show_default=False)
    ] = None,
    count: Annotated[int, typer.Option("--count", "-n", help="Fire times per rule.")] = 5,
    start: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="Start after this ISO 8601 time (default now; without an offset, UTC).",
            show_default=False,
        ),
    ] = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Print the next fire times of each rule of PLAN, in the rule's timezone."""
    # The catalog and the engine load only when a command runs (tests/unit/cli/test_startup.py).
    from strongroom.services.schedule import ScheduleService, parse_time

    previews = ScheduleService(app_context(ctx)).preview(
        plan,
        rule=rule,
        count=count,
        start=parse_time(start) if start is not None else None,
    )

    def for_people() -> None:
        rows: list[list[object]] = []
        for item in previews:
            times = [moment.isoformat() for moment in item.fire_times] or ["-"]
            for index, moment in enumerate(times):
                first = index == 0
                rows.append(
                    [
                        item.rule if first else "",
                        (item.schedule or "-") if first else "",
                        item.timezone if first else "",
                        moment,
                        item.description if first else "",
                    ]
                )
        print_table(
            f"next fire times of plan {plan}",
            ["rule", "schedule", "timezone", "fires at", "meaning"],
            rows,
        )

    print_result(output, lambda: [item.as_json() for item in previews], for_people)
