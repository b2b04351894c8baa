"""``strongroom token create / list / revoke``: API tokens for ``strongroom serve --api-address``.

Run on the backup host (it opens the catalog directly, as an admin would); the token
text is printed once and only its hash is stored. See ``docs/api.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from strongroom.cli.common import OutputOption, app_context
from strongroom.cli.render import OutputFormat, print_result, print_table, stderr, stdout

if TYPE_CHECKING:
    from strongroom.services.access.tokens import TokenService

app = typer.Typer(help="API tokens: create (shown once), list, revoke.", no_args_is_help=True)


def _service(ctx: typer.Context) -> TokenService:
    from strongroom.services.access.tokens import TokenService

    return TokenService(app_context(ctx))


@app.command()
def create(
    ctx: typer.Context,
    role: Annotated[
        str,
        typer.Option(help="viewer, operator, restorer, admin or auditor (see docs/api.md)."),
    ],
    name: Annotated[
        str | None,
        typer.Option(help="A name to recognise it by (default: the role).", show_default=False),
    ] = None,
    expires_in: Annotated[
        str | None,
        typer.Option(
            "--expires-in",
            help="Lifetime: 30d, 12h, 2w (default: until revoked).",
            show_default=False,
        ),
    ] = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Create an API token with a role and print it, this one time."""
    from strongroom.services.access.roles import parse_role
    from strongroom.services.retention.periods import parse_duration

    service = _service(ctx)
    lifetime = parse_duration(expires_in) if expires_in is not None else None
    issued = service.create(parse_role(role), name=name, expires_in=lifetime)
    now = service.context.now()

    def for_people() -> None:
        view = issued.view
        expiry = view.expires_at.isoformat() if view.expires_at else "never (until revoked)"
        stderr.print(
            f"token {view.id} ({escape(view.name)}, role {view.role}), expires {expiry}; "
            "it is shown only now: store it safely",
            highlight=False,
        )
        stdout.out(issued.token, highlight=False)

    print_result(output, lambda: issued.view.as_json(now) | {"token": issued.token}, for_people)


@app.command("list")
def list_tokens(ctx: typer.Context, output: OutputOption = OutputFormat.table) -> None:
    """List the API tokens (never their secrets): role, state, expiry, last use."""
    service = _service(ctx)
    tokens = service.list()
    now = service.context.now()

    def for_people() -> None:
        print_table(
            "API tokens",
            ["id", "name", "role", "state", "created", "expires", "last used"],
            [
                [
                    token.id,
                    escape(token.name),
                    token.role,
                    token.state(now),
                    f"{token.created_at:%Y-%m-%d %H:%M} by {escape(token.created_by)}",
                    f"{token.expires_at:%Y-%m-%d %H:%M}" if token.expires_at else "-",
                    f"{token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "-",
                ]
                for token in tokens
            ],
        )

    print_result(output, lambda: [token.as_json(now) for token in tokens], for_people)


@app.command()
def revoke(
    ctx: typer.Context,
    token_id: Annotated[str, typer.Argument(metavar="ID", help="The token's id (token list).")],
    output: OutputOption = OutputFormat.table,
) -> None:
    """Revoke an API token now: the next request made with it is refused."""
    service = _service(ctx)
    view = service.revoke(token_id)
    now = service.context.now()
    print_result(
        output,
        lambda: view.as_json(now),
        lambda: stdout.print(f"token {view.id} ({escape(view.name)}) revoked", highlight=False),
    )
