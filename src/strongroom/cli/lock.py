"""``strongroom vault lock / unlock / lock-status``: a vault's retention lock.

Registered under the ``vault`` group by :func:`register`. Who ran a command (``actor``) is
recorded with every lock event: the operating-system user and host.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from strongroom.cli.common import OutputOption, app_context
from strongroom.cli.render import (
    OutputFormat,
    print_result,
    print_table,
    stderr,
    stdout,
)

if TYPE_CHECKING:
    from strongroom.services.retention.lock import LockChange, VaultLockService

NameArgument = Annotated[str, typer.Argument(help="The vault's registered name.")]
PrivilegedOption = Annotated[
    bool,
    typer.Option(
        "--privileged",
        help="Change or lift a governance-mode lock (needs --reason; recorded).",
    ),
]
ReasonOption = Annotated[
    str | None,
    typer.Option(help="Why (required with --privileged); recorded.", show_default=False),
]


class LockMode(StrEnum):
    """The two lock modes."""

    governance = "governance"
    compliance = "compliance"


def current_actor() -> str:
    """Who runs this command, for the audit trail: ``user@host``."""
    from strongroom.services.context import local_actor

    return local_actor().name


def register(app: typer.Typer) -> None:
    """Add ``lock``, ``unlock`` and ``lock-status`` to the ``vault`` command group."""
    app.command("lock")(lock)
    app.command("unlock")(unlock)
    app.command("lock-status")(lock_status)


def _service(ctx: typer.Context) -> VaultLockService:
    from strongroom.services.retention.lock import VaultLockService

    return VaultLockService(app_context(ctx))


def lock(
    ctx: typer.Context,
    name: NameArgument,
    mode: Annotated[
        LockMode,
        typer.Option(
            help="governance: a privileged action can lift it; compliance: "
            "immutable after the grace period."
        ),
    ] = LockMode.governance,
    min_retention_days: Annotated[
        int | None,
        typer.Option(help="No recovery point of the vault is deleted younger than this."),
    ] = None,
    max_retention_days: Annotated[
        int | None,
        typer.Option(help="Plans must delete the vault's recovery points by this age."),
    ] = None,
    changeable_for_days: Annotated[
        int | None,
        typer.Option(
            help="Compliance mode: grace period (at least 3 days) before the lock "
            "becomes immutable."
        ),
    ] = None,
    privileged: PrivilegedOption = False,
    reason: ReasonOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Lock vault NAME: bound the retention of its recovery points.

    Refused, and recorded, when it would change a compliance lock past its grace period,
    or a governance lock without --privileged --reason.
    """
    from strongroom.services.retention.lock import parse_lock

    settings = parse_lock(mode.value, min_retention_days, max_retention_days, changeable_for_days)
    change = _service(ctx).lock(
        name, settings, actor=current_actor(), privileged=privileged, reason=reason
    )
    _print_change(ctx, change, output)


def unlock(
    ctx: typer.Context,
    name: NameArgument,
    privileged: PrivilegedOption = False,
    reason: ReasonOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Remove the lock of vault NAME.

    Allowed during a compliance lock's grace period, and for a governance lock only with
    --privileged --reason; every refused attempt is recorded.
    """
    change = _service(ctx).unlock(name, actor=current_actor(), privileged=privileged, reason=reason)
    _print_change(ctx, change, output)


def lock_status(
    ctx: typer.Context,
    name: NameArgument,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Show the lock of vault NAME and its recorded history (refused attempts included)."""
    status = _service(ctx).status(name)
    history = [
        {
            "at": event.at.isoformat(),
            "event": event.type,
            "actor": event.actor,
            **event.details,
        }
        for event in status.history
    ]

    def for_people() -> None:
        stdout.print(f"vault {name}: {status.summary}", highlight=False)
        if history:
            print_table(
                f"lock history of {name}",
                ["at", "event", "by", "details"],
                [[item["at"], item["event"], item["actor"], _details(item)] for item in history],
            )

    print_result(
        output,
        lambda: {
            "vault": name,
            "summary": status.summary,
            **status.state.to_json(),
            "history": history,
        },
        for_people,
    )


def _details(item: dict[str, Any]) -> str:
    parts = []
    if item.get("privileged"):
        parts.append("privileged")
    if item.get("reason"):
        parts.append(f"reason: {item['reason']}")
    if item.get("refused_because"):
        parts.append(f"refused: {item['refused_because']}")
    after = item.get("after")
    if isinstance(after, dict) and after.get("mode"):
        parts.append(
            f"now {after['mode']}, min {after['min_retention_days']}, "
            f"max {after['max_retention_days']}"
        )
    return "; ".join(parts)


def _print_change(ctx: typer.Context, change: LockChange, output: OutputFormat) -> None:
    def for_people() -> None:
        summary = change.after.describe(app_context(ctx).now())
        what = "unchanged" if change.action == "unchanged" else f"lock {change.action}"
        stdout.print(f"vault {change.vault}: {what}: {summary}", highlight=False)
        for warning in change.warnings:
            stderr.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)

    print_result(
        output,
        lambda: {
            "vault": change.vault,
            "action": change.action,
            "before": change.before.to_json(),
            "after": change.after.to_json(),
            "warnings": list(change.warnings),
        },
        for_people,
    )
