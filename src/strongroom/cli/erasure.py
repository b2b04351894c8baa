"""``strongroom erasure add / list / show / cancel``: erasure requests that survive restores."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer

from strongroom.cli.common import OutputOption, app_context
from strongroom.cli.render import OutputFormat, print_result, print_table, stdout

if TYPE_CHECKING:
    from strongroom.services.erasure.requests import ErasureService, RequestView

app = typer.Typer(
    help="Erasure requests (GDPR Art. 17): every restore of the resource re-applies them.",
    no_args_is_help=True,
)

RequestArgument = Annotated[str, typer.Argument(help="Request id (or a unique prefix, 6+).")]


def _service(ctx: typer.Context) -> ErasureService:
    from strongroom.services.erasure.requests import ErasureService

    return ErasureService(app_context(ctx))


def _due(ctx: typer.Context, text: str | None) -> datetime | None:
    """``--due``: a duration from now (``30d``) or an ISO 8601 date or time (UTC if no zone)."""
    from strongroom.errors import ConfigError
    from strongroom.services.retention.periods import parse_duration, parse_since

    if text is None:
        return None
    now = app_context(ctx).now()
    try:
        return now + parse_duration(text)
    except ConfigError:
        return parse_since(text, now, future=True)


@app.command()
def add(
    ctx: typer.Context,
    resource: Annotated[str, typer.Argument(help="The resource holding the subject's data.")],
    subject: Annotated[str, typer.Argument(help="The data subject's id, bound as %(subject)s.")],
    reason: Annotated[str, typer.Option(help="Why (the request's ticket or case); recorded.")],
    sql: Annotated[
        list[str] | None,
        typer.Option(
            help="postgres/mysql: a statement erasing the subject, binding %(subject)s "
            "(repeat for more; a literal percent sign is %%).",
            show_default=False,
        ),
    ] = None,
    remaining: Annotated[
        str | None,
        typer.Option(
            help="postgres/mysql: a SELECT counting what is left of the subject; must be 0 "
            "after the statements.",
            show_default=False,
        ),
    ] = None,
    database: Annotated[
        str | None,
        typer.Option(
            help="postgres/mysql: the backed-up database the statements run in (default: "
            "every restored one).",
            show_default=False,
        ),
    ] = None,
    pattern: Annotated[
        list[str] | None,
        typer.Option(
            help="redis: a key pattern (user:{subject}:*); files: a glob below the backed-up "
            "root (users/{subject}/**). Repeat for more.",
            show_default=False,
        ),
    ] = None,
    due: Annotated[
        str | None,
        typer.Option(
            help="When the erasure is due: a duration from now (30d) or a date; default 30d.",
            show_default=False,
        ),
    ] = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Record a subject to erase from every future restore of a resource."""
    from strongroom.services.erasure.requests import Method

    method = Method(
        statements=tuple(sql or ()),
        remaining=remaining,
        database=database,
        patterns=tuple(pattern or ()),
    )
    view = _service(ctx).add(resource, subject, method, reason=reason, due=_due(ctx, due))
    _print_one(view, output, "recorded")


@app.command("list")
def list_requests(
    ctx: typer.Context,
    resource: Annotated[
        str | None, typer.Option(help="Only this resource's requests.", show_default=False)
    ] = None,
    state: Annotated[
        str | None, typer.Option(help="Only requests in this state: open, cancelled.")
    ] = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """List erasure requests, oldest first, with how often restores re-applied them."""
    views = _service(ctx).list(resource=resource, state=state)

    def for_people() -> None:
        if not views:
            stdout.print("no erasure request is recorded")
            return
        print_table(
            "erasure requests",
            ["id", "resource", "kind", "state", "requested", "due", "by", "re-applied"],
            [
                [
                    view.row.id[:8],
                    view.row.resource,
                    view.row.kind,
                    view.row.state,
                    view.row.requested_at.date().isoformat(),
                    view.row.due_at.date().isoformat(),
                    view.row.requested_by,
                    str(len(view.applications)),
                ]
                for view in views
            ],
        )

    print_result(output, lambda: [view.to_json() for view in views], for_people)


@app.command()
def show(
    ctx: typer.Context, request: RequestArgument, output: OutputOption = OutputFormat.json
) -> None:
    """Show one request: how it erases, who asked, and every re-application."""
    view = _service(ctx).show(request)
    _print_one(view, output, view.row.state)


@app.command()
def cancel(
    ctx: typer.Context,
    request: RequestArgument,
    reason: Annotated[str, typer.Option(help="Why it is cancelled; recorded.")],
    output: OutputOption = OutputFormat.table,
) -> None:
    """Cancel an open request: restores stop re-applying it."""
    view = _service(ctx).cancel(request, reason=reason)
    _print_one(view, output, "cancelled")


def _print_one(view: RequestView, output: OutputFormat, what: str) -> None:
    print_result(
        output,
        lambda: view.to_json(),
        lambda: stdout.print(
            f"erasure request {view.row.id} for {view.row.resource} {what} "
            f"(due {view.row.due_at.date().isoformat()}, re-applied "
            f"{len(view.applications)} time(s))",
            highlight=False,
        ),
    )
