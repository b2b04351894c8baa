"""``strongroom audit list / verify / export``: the tamper-evident audit trail."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from strongroom.cli.common import OutputOption, app_context
from strongroom.cli.render import OutputFormat, print_result, print_table, stdout
from strongroom.errors import IntegrityError

if TYPE_CHECKING:
    from datetime import datetime

    from strongroom.catalog.audit import EntryFilter

app = typer.Typer(
    help="The audit trail: who did what, when, from where, with which outcome (hash-chained).",
    no_args_is_help=True,
)

TimeOption = Annotated[
    str | None,
    typer.Option(
        help="A duration back from now (24h, 7d) or an ISO 8601 time (UTC if no zone).",
        show_default=False,
    ),
]


def _time(ctx: typer.Context, text: str | None, *, end: bool = False) -> datetime | None:
    from strongroom.services.retention.periods import parse_since

    return None if text is None else parse_since(text, app_context(ctx).now(), future=end)


def _filter(
    ctx: typer.Context,
    since: str | None,
    until: str | None,
    actor: str | None = None,
    action: str | None = None,
    subject: str | None = None,
    outcome: str | None = None,
) -> EntryFilter:
    from strongroom.catalog.audit import EntryFilter

    return EntryFilter(
        since=_time(ctx, since),
        until=_time(ctx, until, end=True),
        actor=actor,
        action=action,
        subject=subject,
        outcome=outcome,
    )


@app.command("list")
def list_entries(
    ctx: typer.Context,
    since: TimeOption = None,
    until: TimeOption = None,
    actor: Annotated[str | None, typer.Option(help="Only this actor (user@host).")] = None,
    action: Annotated[
        str | None, typer.Option(help="Only this action; a trailing * matches a prefix.")
    ] = None,
    subject: Annotated[str | None, typer.Option(help="Only this subject.")] = None,
    outcome: Annotated[
        str | None, typer.Option(help="Only this outcome: succeeded, refused or failed.")
    ] = None,
    limit: Annotated[int, typer.Option(help="Show at most the newest N (0: all).")] = 100,
    output: OutputOption = OutputFormat.table,
) -> None:
    """List audit entries, oldest first (the newest --limit of those selected)."""
    from strongroom.services.audit.service import AuditService

    where = _filter(ctx, since, until, actor, action, subject, outcome)
    rows = AuditService(app_context(ctx)).list(where, limit=limit or None)

    def for_people() -> None:
        print_table(
            "audit trail",
            ["seq", "at (UTC)", "actor", "action", "subject", "outcome", "reason"],
            [
                [
                    str(row["seq"]),
                    row["at"][:19],
                    row["actor"],
                    row["action"],
                    row["subject"],
                    row["outcome"],
                    row["reason"] or "",
                ]
                for row in rows
            ],
        )

    print_result(output, lambda: rows, for_people)


PublicKeyOption = Annotated[
    Path | None,
    typer.Option(
        help="Public key that signs the anchors (default: HOME/keys/report-signing.pub).",
        show_default=False,
    ),
]


@app.command()
def verify(
    ctx: typer.Context,
    public_key: PublicKeyOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Check the hash chain of the whole trail and compare it with the newest anchor of
    each vault; exit 6 naming every edited, deleted or reordered entry and every anchored
    entry removed."""
    from strongroom.services.audit.service import AuditService, check_json
    from strongroom.services.reports.anchors import AnchorService
    from strongroom.services.reports.signing import default_key_path, public_key_path

    context = app_context(ctx)
    check = AuditService(context).verify()
    key = public_key or public_key_path(default_key_path(context.home))
    anchors = AnchorService(context).newest(public_key=key) if key.exists() else []
    check = AnchorService(context).compare(check, anchors)

    def for_people() -> None:
        if check.intact:
            stdout.print(
                f"audit trail intact: {check.entries} entries, head {check.head_seq} "
                f"{check.head_hash or '-'}"
            )
        for problem in check.problems:
            stdout.print(f"{problem.kind}: {problem.message}")
        if not key.exists():
            stdout.print(f"anchors not compared: no public key at {key}")
        for anchor in anchors:
            stdout.print(
                f"anchor {anchor.name} of vault {anchor.vault}: head {anchor.head_seq}, "
                f"{anchor.entries} entries, written {anchor.at}"
            )

    print_result(
        output,
        lambda: check_json(check) | {"anchors": [anchor.to_json() for anchor in anchors]},
        for_people,
    )
    if not check.intact:
        raise IntegrityError(
            f"the audit trail was altered: {len(check.problems)} problem(s) in "
            f"{check.entries} entries",
            hint="Compare with an earlier export ('strongroom audit export') and find who "
            "wrote to the catalog outside strongroom.",
        )


@app.command()
def export(
    ctx: typer.Context,
    since: TimeOption = None,
    until: TimeOption = None,
    to: Annotated[
        Path | None, typer.Option("--to", help="Write to this file (default: stdout).")
    ] = None,
) -> None:
    """Write the entries of [--since, --until) as JSON lines, oldest first."""
    from strongroom.services.audit.service import AuditService

    lines = AuditService(app_context(ctx)).export(_filter(ctx, since, until))
    if to is None:
        for line in lines:
            typer.echo(line)
        return
    with to.open("w", encoding="utf-8") as handle:
        for line in lines:
            handle.write(line + "\n")


@app.command()
def anchor(
    ctx: typer.Context,
    vault: Annotated[str, typer.Option(help="The vault to write the anchor into.")],
    signing_key: Annotated[
        Path | None,
        typer.Option(
            help="Ed25519 signing key (default: HOME/keys/report-signing.key).",
            show_default=False,
        ),
    ] = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Write a signed checkpoint of the trail's head (seq, hash, entry count, time) into a
    vault, under its lock where it has one; 'audit verify' compares with the newest."""
    from strongroom.services.reports.anchors import AnchorService

    written = AnchorService(app_context(ctx), signing_key=signing_key).write(vault)
    print_result(
        output,
        lambda: written.to_json(),
        lambda: stdout.print(
            f"anchored head {written.head_seq} ({written.entries} entries) in vault "
            f"{written.vault} as {written.name}",
            highlight=False,
        ),
    )
