"""The declarative verbs: validate, apply, create-plan, list-plans, list-resources, catalog rebuild.

Semantics live in the services (``services/apply*.py``, ``services/catalog_rebuild.py``)
and in ``docs/declaring.md``; this module parses options and renders results.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from strongroom.cli.common import OutputOption, app_context
from strongroom.cli.render import OutputFormat, print_result, print_table, stdout

if TYPE_CHECKING:
    from strongroom.config.issues import ConfigIssue
    from strongroom.services.declare.apply import ApplyReport
    from strongroom.services.declare.diff import Change
    from strongroom.services.vaults.rebuild import RebuildReport

catalog_app = typer.Typer(help="Maintain the catalog itself.", no_args_is_help=True)

FileOption = Annotated[
    Path,
    typer.Option(
        "--file", "-f", help="The file to read (YAML or JSON).", dir_okay=False, show_default=False
    ),
]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Show the changes; change nothing, touch no vault.")
]

_COLOURS = {"create": "green", "update": "yellow", "remove": "red", "keep": "magenta"}
_INVALID_EXIT = 2


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _issue_json(issue: ConfigIssue) -> dict[str, object]:
    return {"path": issue.path, "line": issue.line, "message": issue.message, "code": issue.code}


def validate(
    file: FileOption,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Check a configuration file, an AWS Backup plan document or a plan document.

    Every error is shown at once as FILE:LINE: path: message, then the warnings. Exits 0
    when the file is valid (warnings allowed), 2 when it is not. Reads no catalog.
    """
    # The services (SQLAlchemy, pydantic models, the vault engine) load only when a command
    # runs, so that every other command, --help and --version start fast (test_startup.py).
    from strongroom.services.declare.documents import KIND_LABELS, validate_document

    result = validate_document(file)

    def for_people() -> None:
        for issue in result.issues:
            stdout.print(escape(issue.render(result.source)), highlight=False)
        counts = (
            f"{_plural(len(result.errors), 'error')}, {_plural(len(result.warnings), 'warning')}"
        )
        verdict = "valid" if result.valid else "invalid"
        label = KIND_LABELS[result.kind]
        stdout.print(f"{escape(result.source)}: {verdict} {label} ({counts})", highlight=False)

    print_result(
        output,
        lambda: {
            "file": result.source,
            "kind": result.kind,
            "valid": result.valid,
            "errors": [_issue_json(issue) for issue in result.errors],
            "warnings": [_issue_json(issue) for issue in result.warnings],
        },
        for_people,
    )
    if not result.valid:
        raise typer.Exit(_INVALID_EXIT)


def _change_line(change: Change) -> str:
    from strongroom.services.declare.diff import SYMBOLS

    colour = _COLOURS[change.action]
    indent = "    " if change.kind == "rule" else ""
    detail = ", ".join(change.fields) if change.fields else change.note
    if change.fields and change.note:
        detail += f" ({change.note})"
    suffix = f": {escape(detail)}" if detail else ""
    return (
        f"{indent}[{colour}]{SYMBOLS[change.action]} {change.kind} {escape(change.name)}[/]{suffix}"
    )


def _render_report(report: ApplyReport, output: OutputFormat) -> None:
    def for_people() -> None:
        stdout.print(f"catalog: {escape(report.catalog)}", highlight=False)
        for change in report.changes:
            if change.action != "keep":
                stdout.print(_change_line(change), highlight=False)
        kept = [change for change in report.changes if change.action == "keep"]
        for change in kept:
            stdout.print(_change_line(change), highlight=False)
        for plan, resources in report.selections.items():
            chosen = ", ".join(resources) if resources else "nothing"
            stdout.print(f"plan {escape(plan)} selects: {escape(chosen)}", highlight=False)
        for issue in report.warnings:
            where = issue.render(report.source) if issue.path or issue.line else issue.message
            prefix = "" if issue.path or issue.line else "warning: "
            stdout.print(f"[yellow]{escape(prefix + where)}[/]", highlight=False)
        counts = report.counts()
        summary = f"{counts['create']} to create, {counts['update']} to update, {counts['remove']} to remove"
        if report.dry_run:
            stdout.print(f"dry run: {summary}; nothing was changed")
        elif report.changed:
            stdout.print(
                f"applied: {counts['create']} created, {counts['update']} updated, "
                f"{counts['remove']} removed"
            )
        else:
            stdout.print("no changes: the catalog already holds what the file declares")

    print_result(output, lambda: report.as_json(), for_people)


def apply(
    ctx: typer.Context,
    file: FileOption,
    dry_run: DryRunOption = False,
    prune: Annotated[
        bool,
        typer.Option(
            "--prune",
            help="Also remove the plans, resources and vaults the file does not declare "
            "(resources and vaults only when no recovery point or job refers to them).",
        ),
    ] = False,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Make the catalog hold what a configuration file declares, in one transaction.

    Creates and updates vaults (new ones are created in their store, or adopted when the
    store holds one), resources, plans and rules, and shows the changes: + create,
    ~ update (with the changed fields), - remove. Rules a plan no longer lists are removed;
    plans, resources and vaults the file does not name are reported and kept unless
    --prune. The file's catalog section is used when --catalog is not given.
    """
    from strongroom.config.load import load_config
    from strongroom.services.declare.apply import ApplyService
    from strongroom.services.declare.capabilities import capabilities

    loaded = load_config(file, capabilities())
    report = ApplyService(app_context(ctx)).apply(loaded, dry_run=dry_run, prune=prune)
    _render_report(report, output)


def create_plan(
    ctx: typer.Context,
    file: FileOption,
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace a plan of the same name.")
    ] = False,
    dry_run: DryRunOption = False,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Create a backup plan from a plan document or an AWS Backup plan document.

    Accepts a strongroom plan ({name, rules, selections}), {plans: {NAME: ...}}, or an AWS
    Backup plan (YAML or JSON, including 'aws backup get-backup-plan' output). The vaults
    its rules target and the resources it names must be registered already. AWS fields
    strongroom cannot honour are refused by name.
    """
    from strongroom.services.declare.apply import ApplyService
    from strongroom.services.declare.documents import read_plan_document

    document = read_plan_document(file)
    service = ApplyService(app_context(ctx))
    report = service.create_plans(document, replace=replace, dry_run=dry_run)
    _render_report(report, output)


def list_plans(ctx: typer.Context, output: OutputOption = OutputFormat.table) -> None:
    """List the plans: rules with schedule, windows, lifecycle, target vault; selections."""
    from strongroom.services.declare.listing import ListingService

    plans = ListingService(app_context(ctx)).plans()

    def for_people() -> None:
        rows: list[list[object]] = []
        for plan in plans:
            selected = ", ".join(plan.selected) or "nothing"
            for index, rule in enumerate(plan.rules):
                lifecycle = rule.lifecycle
                keep = [
                    f"cold after {lifecycle['move_to_cold_after_days']}d"
                    if lifecycle.get("move_to_cold_after_days")
                    else "",
                    f"delete after {lifecycle['delete_after_days']}d"
                    if lifecycle.get("delete_after_days")
                    else "",
                ]
                rows.append(
                    [
                        plan.name if index == 0 else "",
                        rule.name,
                        rule.schedule or "",
                        rule.timezone,
                        f"{rule.start_window_minutes}/{rule.completion_window_minutes} min",
                        rule.target_vault,
                        ", ".join(part for part in keep if part) or "keep forever",
                        selected if index == 0 else "",
                    ]
                )
        print_table(
            "plans",
            ["plan", "rule", "schedule", "timezone", "windows", "vault", "lifecycle", "selects"],
            rows,
        )

    print_result(output, lambda: [plan.as_json() for plan in plans], for_people)


def list_resources(
    ctx: typer.Context,
    output: OutputOption = OutputFormat.table,
    type: Annotated[
        str | None, typer.Option("--type", help="Only resources of this type.", show_default=False)
    ] = None,
) -> None:
    """List the resources: type, tags, the plans selecting them, their newest recovery point."""
    from strongroom.services.declare.listing import ListingService

    resources = ListingService(app_context(ctx)).resources(type=type)

    def for_people() -> None:
        print_table(
            "resources",
            ["name", "type", "tags", "plans", "last recovery point"],
            [
                [
                    resource.name,
                    resource.type,
                    ", ".join(f"{key}={value}" for key, value in resource.tags.items()),
                    ", ".join(resource.plans),
                    (
                        f"{resource.last_point.id[:12]} "
                        f"{resource.last_point.created_at.isoformat(timespec='seconds')} "
                        f"in {resource.last_point.vault}"
                    )
                    if resource.last_point
                    else "none",
                ]
                for resource in resources
            ],
        )

    print_result(output, lambda: [resource.as_json() for resource in resources], for_people)


def _render_rebuild(report: RebuildReport, output: OutputFormat) -> None:
    def for_people() -> None:
        print_table(
            "catalog rebuild",
            [
                "vault",
                "manifests",
                "recorded",
                "present",
                "revived",
                "missing",
                "skipped",
                "damaged",
            ],
            [
                [
                    vault.vault,
                    vault.manifests,
                    vault.recorded,
                    vault.present,
                    vault.revived,
                    vault.missing,
                    len(vault.skipped),
                    len(vault.damaged),
                ]
                for vault in report.vaults
            ],
        )
        for vault in report.vaults:
            if vault.error:
                stdout.print(f"[red]vault {escape(vault.vault)}: {escape(vault.error)}[/]")
            for point_id, reason in vault.skipped.items():
                stdout.print(f"skipped {point_id[:12]} in {escape(vault.vault)}: {escape(reason)}")
            for point_id, reason in vault.damaged.items():
                stdout.print(f"damaged {point_id[:12]} in {escape(vault.vault)}: {escape(reason)}")

    print_result(output, lambda: report.as_json(), for_people)


@catalog_app.command()
def rebuild(
    ctx: typer.Context,
    vault: Annotated[str | None, typer.Option(help="Only this vault.", show_default=False)] = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Recreate the catalog's recovery points from the vaults' manifests.

    Manifests without a row are recorded, rows whose manifest is gone are marked DELETED.
    Exits 1 when a vault could not be opened (the others are still rebuilt).
    """
    from strongroom.services.vaults.rebuild import CatalogRebuild

    report = CatalogRebuild(app_context(ctx)).rebuild(vault)
    _render_rebuild(report, output)
    if not report.ok:
        raise typer.Exit(1)


@catalog_app.command(name="prune-history")
def prune_history(
    ctx: typer.Context,
    older_than_days: Annotated[
        int,
        typer.Option(
            "--older-than-days",
            min=1,
            help="Prune the history of jobs that ended more than this many days ago.",
        ),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be pruned; change nothing.")
    ] = False,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Delete old job history: job events and the transitions of long-ended jobs.

    Job rows, jobs still queued or running, recovery points and the audit events of
    retention (lifecycle, vault locks, legal holds) are kept. `strongroom serve
    --history-days N` does this once a day.
    """
    from strongroom.services.jobs.history import HistoryService

    report = HistoryService(app_context(ctx)).prune(
        older_than_days=older_than_days, dry_run=dry_run
    )

    def for_people() -> None:
        verb = "would prune" if report.dry_run else "pruned"
        stdout.print(
            f"{verb} {report.events} job events and {report.transitions} job transitions "
            f"from before {report.before.isoformat()}",
            highlight=False,
        )

    print_result(output, lambda: report.as_json(), for_people)
