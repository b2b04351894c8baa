"""The operational verbs: start backups, restores and verifies, list them, report on them.

``start-backup``, ``restore`` and ``verify`` queue a job for the daemon, or run it here
with ``--wait`` (see :mod:`strongroom.cli.jobs` for the exit codes). Every read verb has
``--output json``. :func:`register` adds the verbs to the root command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperCommand

from strongroom.cli import jobs
from strongroom.cli.common import OutputOption, app_context
from strongroom.cli.plain import human_size
from strongroom.cli.remote import remote_client
from strongroom.cli.render import OutputFormat, attempts_text, print_result, print_table
from strongroom.errors import ConfigError

if TYPE_CHECKING:
    pass

report_app = typer.Typer(
    help="What the jobs of a period did, and how fresh each resource's backup is.",
    no_args_is_help=True,
)


@report_app.callback()
def _report(ctx: typer.Context) -> None:
    """What the jobs of a period did, and how fresh each resource's backup is."""
    from strongroom.cli.remote import refuse_unsupported

    if ctx.invoked_subcommand is not None:
        refuse_unsupported(ctx, f"report {ctx.invoked_subcommand}")


SinceOption = Annotated[
    str | None,
    typer.Option(
        help="From when: a duration back from now (24h, 7d) or an ISO 8601 time (UTC if no "
        "zone is given).",
        show_default=False,
    ),
]
LimitOption = Annotated[int, typer.Option(help="Show at most this many, newest first.")]


def register(app: typer.Typer) -> None:
    """Add the operational verbs (and the ``report`` group) to the root command."""
    app.command(name="start-backup")(start_backup)
    app.command(name="list-backups")(list_backups)
    app.command(name="list-recovery-points")(list_recovery_points)
    app.command(name="restore", cls=_RestoreCommand)(restore)
    app.command(name="verify")(verify)
    app.command(name="describe-job")(jobs.describe_job)
    app.command(name="wait-job")(jobs.wait_job)
    app.command(name="cancel-job")(jobs.cancel_job)
    from strongroom.cli import compliance

    compliance.register(report_app)
    app.add_typer(report_app, name="report")


def start_backup(
    ctx: typer.Context,
    resource: Annotated[str, typer.Argument(help="The declared resource to back up.")],
    vault: Annotated[
        str | None, typer.Option(help="The vault to write to (default: the rule's).")
    ] = None,
    rule: Annotated[
        str | None,
        typer.Option(
            help="PLAN/RULE: its vault, retry policy, windows, tags, lifecycle and partial setting.",
            show_default=False,
        ),
    ] = None,
    wait: jobs.WaitOption = False,
    max_attempts: jobs.MaxAttemptsOption = None,
    retry_interval: jobs.RetryIntervalOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Back up one resource now: queue the job, or run it here with --wait.

    Without --vault or --rule, the one plan rule that selects the resource is used (when
    several do, name one). The job id is printed on stdout. A resource never has two backups at once: while one
    is queued or running, this refuses (exit code 7) and names it.
    """
    client = remote_client(ctx)
    if client is not None:
        body = {"resource": resource, "vault": vault, "rule": rule}
        body |= _retry_body(max_attempts, retry_interval)
        document = client.post("/jobs/backup", body)
        jobs.start_and_follow_remote(client, document, wait=wait, output=output)
        return
    service = jobs.operations(ctx)
    job = service.start_backup(
        resource, vault, rule, retry=jobs.retry_overrides(max_attempts, retry_interval)
    )
    jobs.start_and_follow(service, job, wait=wait, output=output)


class _RestoreCommand(TyperCommand):
    """``restore``, whose help lists the restore-target keys of every registered source.

    The list is built from the sources' restore-target models when the help is shown, so
    that starting the CLI imports no source code (``test_startup.py``).
    """

    def format_help(self, ctx: Any, formatter: Any) -> None:  # click's types, vendored by typer
        self.epilog = restore_target_help()
        super().format_help(ctx, formatter)


def restore_target_help() -> str:
    """The restore-target keys of every registered source: a paragraph per source type."""
    from rich.markup import escape

    from strongroom.sources import REGISTRY
    from strongroom.sources.targets import target_keys

    paragraphs = ["Restore targets (--target KEY=VALUE), by resource type:"]
    for type_name, entry in sorted(REGISTRY.items()):
        lines = [f"[bold]{type_name}[/bold]"]
        lines += [
            escape(f"  {key.name}=<{key.kind}>: {key.description}")
            for key in target_keys(entry.target_model())
        ]
        paragraphs.append("\n".join(lines))
    return "\n\n".join(paragraphs)


def restore(
    ctx: typer.Context,
    point: Annotated[str, typer.Argument(help="Recovery point id (or a unique prefix).")],
    target: Annotated[
        list[str] | None,
        typer.Option(
            help="KEY=VALUE option of the source's restore target; repeatable. The keys of "
            "each source are listed below; e.g. path=/new/folder, database=newname, "
            "databases=\\[a, b].",
            show_default=False,
        ),
    ] = None,
    wait: jobs.WaitOption = False,
    max_attempts: jobs.MaxAttemptsOption = None,
    retry_interval: jobs.RetryIntervalOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Restore a recovery point through its resource's source, checked as it is read.

    Nothing existing is replaced unless the target says overwrite=true; the source
    checks what it restored against what the backup recorded.
    """
    client = remote_client(ctx)
    if client is not None:
        body = {"point": point, "target": parse_target(target or [])}
        document = client.post("/jobs/restore", body | _retry_body(max_attempts, retry_interval))
        jobs.start_and_follow_remote(client, document, wait=wait, output=output)
        return
    service = jobs.operations(ctx)
    job = service.start_restore(
        point,
        parse_target(target or []),
        retry=jobs.retry_overrides(max_attempts, retry_interval),
    )
    jobs.start_and_follow(service, job, wait=wait, output=output)


def verify(
    ctx: typer.Context,
    point: Annotated[
        str | None, typer.Argument(help="The recovery point (or give --vault).")
    ] = None,
    vault: Annotated[
        str | None, typer.Option(help="Verify every point of this vault instead.")
    ] = None,
    read_data: Annotated[
        bool, typer.Option("--read-data", help="Download and check every stored byte.")
    ] = False,
    restore_test: Annotated[
        bool,
        typer.Option(
            "--restore-test",
            help="Also restore into a scratch target and compare with what the backup "
            "recorded (for a vault: the newest point of each resource).",
        ),
    ] = False,
    wait: jobs.WaitOption = False,
    max_attempts: jobs.MaxAttemptsOption = None,
    retry_interval: jobs.RetryIntervalOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Prove a recovery point (or a vault) is intact, and with --restore-test, restorable.

    The result is kept as evidence on each recovery point. Damage or a failed check fails
    the job naming the point and the checks (exit code 6 with --wait).
    """
    client = remote_client(ctx)
    if client is not None:
        body = {"point": point, "vault": vault, "read_data": read_data}
        body |= {"restore_test": restore_test} | _retry_body(max_attempts, retry_interval)
        document = client.post("/jobs/verify", body)
        jobs.start_and_follow_remote(client, document, wait=wait, output=output)
        return
    service = jobs.operations(ctx)
    job = service.start_verify(
        point,
        vault,
        read_data=read_data,
        restore_test=restore_test,
        retry=jobs.retry_overrides(max_attempts, retry_interval),
    )
    jobs.start_and_follow(service, job, wait=wait, output=output)


def list_backups(
    ctx: typer.Context,
    state: Annotated[
        list[jobs.JobStateChoice] | None,
        typer.Option(help="Only jobs in this state; repeatable.", case_sensitive=False),
    ] = None,
    resource: Annotated[str | None, typer.Option(help="Only this resource.")] = None,
    since: SinceOption = None,
    limit: LimitOption = 200,
    output: OutputOption = OutputFormat.table,
) -> None:
    """List backup jobs, newest first."""
    from strongroom.engine.views import duration_seconds, job_document, job_view_of_document
    from strongroom.services.retention.periods import parse_since

    client = remote_client(ctx)
    if client is not None:
        params: dict[str, Any] = {"kind": "backup"}
        params["state"] = [choice.value for choice in state or []]
        params |= {"resource": resource, "since": since}
        documents = client.get_list("/jobs", _present(params), limit)
        found = [job_view_of_document(document) for document in documents]
    else:
        context = app_context(ctx)
        found = jobs.operations(ctx).list_backups(
            states=jobs.job_states(state),
            resource=resource,
            since=parse_since(since, context.now()) if since else None,
            limit=limit,
        )

    def for_people() -> None:
        rows: list[list[Any]] = []
        for job in found:
            result = job.result or {}
            duration = duration_seconds(job)
            size = result.get("logical_size")
            rows.append(
                [
                    job.id[:8],
                    job.resource or "-",
                    job.vault or "-",
                    job.rule or "-",
                    job.state.value,
                    attempts_text(job.attempt, job.max_attempts),
                    job.created_at.isoformat(timespec="seconds"),
                    f"{duration:.1f} s" if duration is not None else "-",
                    human_size(size) if isinstance(size, int) else "-",
                    str(result.get("point_id", "-"))[:12],
                ]
            )
        print_table(
            "backup jobs",
            [
                "job",
                "resource",
                "vault",
                "rule",
                "state",
                "attempt",
                "created",
                "took",
                "size",
                "point",
            ],
            rows,
        )

    print_result(output, lambda: [job_document(job) for job in found], for_people)


def list_recovery_points(
    ctx: typer.Context,
    vault: Annotated[str | None, typer.Option(help="Only this vault.")] = None,
    resource: Annotated[str | None, typer.Option(help="Only this resource.")] = None,
    limit: LimitOption = 200,
    output: OutputOption = OutputFormat.table,
) -> None:
    """List the recovery points the catalog records, newest first, with their evidence."""
    from datetime import datetime

    from strongroom.services.jobs.views import point_json

    client = remote_client(ctx)
    if client is not None:
        params = _present({"vault": vault, "resource": resource})
        found = client.get_list("/recovery-points", params, limit)
    else:
        points = jobs.operations(ctx).list_recovery_points(
            vault=vault, resource=resource, limit=limit
        )
        found = [point_json(point, with_metadata=True) for point in points]

    def for_people() -> None:

        def verdict(value: bool | None) -> str:
            return "-" if value is None else ("ok" if value else "FAILED")

        print_table(
            "recovery points",
            [
                "id",
                "resource",
                "vault",
                "state",
                "created",
                "size",
                "stored",
                "verified",
                "restore test",
                "delete at",
            ],
            [
                [
                    data["id"][:16],
                    data["resource"],
                    data["vault"],
                    data["state"],
                    datetime.fromisoformat(data["created_at"]).isoformat(timespec="seconds"),
                    human_size(data["logical_size"]),
                    human_size(data["stored_size"]),
                    verdict(data["verification_ok"]),
                    verdict(data["restore_test_ok"]),
                    data["delete_at"][:10] if data["delete_at"] else "-",
                ]
                for data in found
            ],
        )

    print_result(output, lambda: found, for_people)


@report_app.command("summary")
def report_summary(
    ctx: typer.Context,
    since: SinceOption = None,
    max_age: Annotated[
        str,
        typer.Option(help="A resource whose newest recovery point is older is stale."),
    ] = "24h",
    output: OutputOption = OutputFormat.table,
) -> None:
    """Totals by state, success rate, durations, sizes, backup age per resource, failures.

    The period is the last 24 hours unless --since says otherwise.
    """
    from strongroom.services.reports.summary import DEFAULT_MAX_AGE, ReportService
    from strongroom.services.retention.periods import parse_duration, parse_since

    client = remote_client(ctx)
    if client is not None:
        data = client.get("/reports/summary", _present({"since": since, "max_age": max_age}))
    else:
        context = app_context(ctx)
        data = (
            ReportService(context)
            .summary(
                parse_since(since, context.now()) if since else None,
                max_age=parse_duration(max_age) if max_age else DEFAULT_MAX_AGE,
            )
            .as_json()
        )

    print_result(output, lambda: data, lambda: _render_summary(data))


@report_app.command("detailed")
def report_detailed(
    ctx: typer.Context,
    since: SinceOption = None,
    kind: Annotated[
        list[jobs.JobKindChoice] | None,
        typer.Option(help="Only jobs of this kind; repeatable.", case_sensitive=False),
    ] = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """One row per job of the period (default: the last 24 hours), newest first."""
    from strongroom.services.reports.summary import ReportService
    from strongroom.services.retention.periods import parse_since

    client = remote_client(ctx)
    if client is not None:
        kinds = [choice.value for choice in kind or []]
        rows = client.get("/reports/detailed", _present({"since": since, "kind": kinds}))
    else:
        context = app_context(ctx)
        rows = ReportService(context).detailed(
            parse_since(since, context.now()) if since else None, kinds=jobs.job_kinds(kind)
        )

    def for_people() -> None:
        print_table(
            "jobs",
            ["job", "kind", "resource", "state", "attempt", "created", "took", "size", "error"],
            [
                [
                    row["job_id"][:8],
                    row["kind"],
                    row["resource"] or row["vault"] or "-",
                    row["state"],
                    attempts_text(row["attempt"], row["max_attempts"]),
                    row["created_at"][:19],
                    f"{row['duration_seconds']:.1f} s"
                    if row["duration_seconds"] is not None
                    else "-",
                    human_size(row["logical_size"])
                    if isinstance(row["logical_size"], int)
                    else "-",
                    f"{row['error_code']}: {row['error_message']}"[:80]
                    if row["error_code"]
                    else "",
                ]
                for row in rows
            ],
        )

    print_result(output, lambda: rows, for_people)


def _render_summary(data: dict[str, Any]) -> None:
    backups = data["backups"]
    rate = backups["success_rate"]
    durations = backups["duration_seconds"]
    print_table(
        f"report {data['period']['since'][:19]} .. {data['period']['until'][:19]} (UTC)",
        ["measure", "value"],
        [
            ["jobs", data["jobs"]["total"]],
            ["jobs by state", _counts(data["jobs"]["by_state"])],
            ["backups", backups["total"]],
            ["backups by state", _counts(backups["by_state"])],
            ["success rate", f"{rate:.1%}" if rate is not None else "-"],
            [
                "backup duration avg / max",
                f"{durations['average']:.1f} s / {durations['max']:.1f} s"
                if durations["average"] is not None
                else "-",
            ],
            ["logical size", human_size(backups["logical_size"])],
            ["stored size (referenced)", human_size(backups["stored_size"])],
            ["new stored bytes", human_size(backups["new_stored_size"])],
        ],
    )
    print_table(
        "resources",
        ["resource", "type", "newest backup", "age", "stale", "backups", "failed"],
        [
            [
                item["resource"],
                item["type"],
                _seconds(item["last_backup_at"]) if item["last_backup_at"] else "never",
                _age(item["age_seconds"]),
                "STALE" if item["stale"] else "ok",
                item["backups_in_period"],
                item["failed_in_period"],
            ]
            for item in data["resources"]
        ],
    )
    if data["failures"]:
        print_table(
            "failures",
            ["job", "kind", "resource", "state", "attempts", "error"],
            [
                [
                    item["job_id"][:8],
                    item["kind"],
                    item["resource"] or item["vault"] or "-",
                    item["state"],
                    item["attempts"],
                    f"{item['error_code']}: {item['error_message']}"[:100]
                    if item["error_code"]
                    else "",
                ]
                for item in data["failures"]
            ],
        )


def _seconds(moment: str) -> str:
    from datetime import datetime

    return datetime.fromisoformat(moment).isoformat(timespec="seconds")


def _present(params: dict[str, Any]) -> dict[str, Any]:
    """Query parameters without the options not given."""
    return {key: value for key, value in params.items() if value not in (None, [])}


def _retry_body(max_attempts: int | None, retry_interval: float | None) -> dict[str, Any]:
    """The retry fields of a start request (as the options name them)."""
    return _present({"max_attempts": max_attempts, "retry_interval": retry_interval})


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{state} {count}" for state, count in sorted(counts.items())) or "-"


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:.1f} d"


def parse_target(values: list[str]) -> dict[str, Any]:
    """Turn ``KEY=VALUE`` options into the restore target mapping.

    A value in brackets or braces is read as YAML (``only=[a/b, c]``); a key given twice
    collects a list; anything else stays text (the source converts ``true`` or ``4`` where
    its option wants a flag or a number).
    """
    import yaml  # only --target needs it

    target: dict[str, Any] = {}
    for value in values:
        key, separator, text = value.partition("=")
        key = key.strip()
        if not separator or not key:
            raise ConfigError(
                f"--target {value!r} is not KEY=VALUE", hint="For example: --target path=/tmp/x"
            )
        parsed: Any = text
        if text.strip()[:1] in ("[", "{"):
            try:
                parsed = yaml.safe_load(text)
            except yaml.YAMLError as error:
                raise ConfigError(
                    f"--target {key}: {text!r} is not a valid list or mapping"
                ) from error
        if key in target:
            previous = target[key]
            target[key] = [*previous, parsed] if isinstance(previous, list) else [previous, parsed]
        else:
            target[key] = parsed
    return target
