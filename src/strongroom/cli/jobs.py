"""Jobs on the command line: ``describe-job``, ``cancel-job``, and following a job (``--wait``).

A command that starts a job either queues it (prints its id on stdout and says who runs
it) or, with ``--wait``, runs it in this process and follows it: a progress display on
stderr when it is a terminal, one line per state change otherwise. The exit code then
tells how the job ended (see :func:`strongroom.services.jobs.operations.outcome`).
"""

from __future__ import annotations

from enum import StrEnum
from types import TracebackType
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.markup import escape

from strongroom.cli.common import OutputOption, app_context
from strongroom.cli.plain import human_size
from strongroom.cli.remote import remote_client
from strongroom.cli.render import (
    OutputFormat,
    attempts_text,
    print_error,
    print_result,
    print_table,
    stderr,
    stdout,
)
from strongroom.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from rich.progress import Progress, TaskID

    from strongroom.catalog.types import JobKind, JobState
    from strongroom.cli.remote import RemoteClient
    from strongroom.engine.views import JobView
    from strongroom.services.jobs.operations import OperationsService

_Enum = TypeVar("_Enum", bound=StrEnum)

JobArgument = Annotated[str, typer.Argument(help="The job id (or a unique prefix of it).")]
WaitOption = Annotated[
    bool,
    typer.Option(
        "--wait",
        help="Run the job in this process and follow it to its end; the exit code tells "
        "how it ended (0 completed or partial, else the error's code).",
    ),
]
MaxAttemptsOption = Annotated[
    int | None,
    typer.Option(
        help="Retries after the first attempt (the seed's MaxAttempts, as retry.max_attempts "
        "in a config); 0 never retries (default: the rule's, else 3).",
        min=0,
        max=100,
        show_default=False,
    ),
]
RetryIntervalOption = Annotated[
    float | None,
    typer.Option(
        help="Seconds before the first retry of a retryable failure (default: the rule's, "
        "else 300; doubled each time).",
        show_default=False,
    ),
]


# Typer reads the option types when the commands are registered, and the real enums live in
# ``strongroom.catalog.types``, which imports SQLAlchemy. These copies keep ``--help`` and the
# choice checking without it; :func:`job_states` / :func:`job_kinds` convert to the real enums
# (and tests/unit/cli/test_startup.py checks the copies still match them).
class JobStateChoice(StrEnum):
    """The job states, as ``--state`` accepts them (see ``catalog.types.JobState``)."""

    CREATED = "CREATED"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    PARTIAL = "PARTIAL"
    FAILED = "FAILED"
    ABORTED = "ABORTED"
    EXPIRED = "EXPIRED"


class JobKindChoice(StrEnum):
    """The job kinds, as ``--kind`` accepts them (see ``catalog.types.JobKind``)."""

    BACKUP = "backup"
    RESTORE = "restore"
    VERIFY = "verify"
    COPY = "copy"
    DELETE = "delete"


def job_states(choices: Sequence[JobStateChoice] | None) -> list[JobState] | None:
    """The real job states for ``--state`` options (None when none were given)."""
    from strongroom.catalog.types import JobState

    return _convert(JobState, choices, "--state")


def job_kinds(choices: Sequence[JobKindChoice] | None) -> list[JobKind] | None:
    """The real job kinds for ``--kind`` options (None when none were given)."""
    from strongroom.catalog.types import JobKind

    return _convert(JobKind, choices, "--kind")


def _convert(
    enum: type[_Enum], choices: Sequence[StrEnum] | None, option: str
) -> list[_Enum] | None:
    if not choices:
        return None
    allowed = [member.value for member in enum]
    for choice in choices:
        if choice.value not in allowed:  # the copy above drifted from the real enum
            raise ConfigError(f"{option} {choice.value!r} is not one of: {', '.join(allowed)}")
    return [enum(choice.value) for choice in choices]


def operations(ctx: typer.Context) -> OperationsService:
    """The operations service of this invocation."""
    # The services (SQLAlchemy, the sources, the vault engine) load only when a command
    # runs, so that every other command, --help and --version start fast (test_startup.py).
    from strongroom.services.jobs.operations import OperationsService

    return OperationsService(app_context(ctx))


def retry_overrides(max_attempts: int | None, retry_interval: float | None) -> dict[str, Any]:
    """The retry fields given on the command line, as a job's retry policy counts them
    (``--max-attempts`` is retries, as in a config; a job counts every attempt)."""
    from strongroom.engine.retry import attempts_in_all

    overrides: dict[str, Any] = {}
    if max_attempts is not None:
        overrides["max_attempts"] = attempts_in_all(max_attempts)
    if retry_interval is not None:
        overrides["interval_seconds"] = retry_interval
    return overrides


def _state_text(job: JobView) -> str:
    from strongroom.catalog.types import JobState

    attempt = f"attempt {attempts_text(job.attempt, job.max_attempts)}"
    if job.state is JobState.PENDING and job.next_attempt_at is not None and job.error:
        when = job.next_attempt_at.astimezone().strftime("%H:%M:%S")
        return f"PENDING: {attempt} at {when} (the last one failed: {job.error.code})"
    if job.state is JobState.RUNNING and job.cancel_requested:
        return f"RUNNING, asked to stop ({attempt})"
    return f"{job.state.value} ({attempt})"


class JobFollower:
    """Shows a job's state and progress while ``OperationsService.run`` waits for it."""

    def __init__(self, label: str) -> None:
        self.label = label
        self._seen: tuple[JobState, int] | None = None
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> JobFollower:
        if stderr.is_terminal:
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(binary_units=True),
                TimeElapsedColumn(),
                console=stderr,
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task(self.label, total=None)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    def __call__(self, job: JobView) -> None:
        key = (job.state, job.attempt)
        text = f"{self.label}: {_state_text(job)}"
        if self._progress is not None and self._task is not None:
            progress = job.progress or {}
            done = progress.get("done")
            self._progress.update(
                self._task,
                description=escape(text),
                completed=float(done) if isinstance(done, int | float) else 0.0,
                total=progress.get("total") if isinstance(progress.get("total"), int) else None,
            )
            if key != self._seen:
                self._progress.console.print(escape(text), highlight=False)
        elif key != self._seen:
            stderr.print(escape(text), highlight=False)
        self._seen = key


def start_and_follow(
    service: OperationsService | None, job: JobView, *, wait: bool, output: OutputFormat
) -> None:
    """Queue-and-return, or (``--wait``) run the job here and exit with its outcome
    (``service`` may be None only without ``wait``)."""
    from strongroom.engine.views import job_document

    if not wait:
        stderr.print(
            f"queued {job.kind.value} job {job.id} ({job.state.value}); the daemon "
            "('strongroom serve') runs it. Follow it with 'strongroom describe-job "
            f"{job.id}', or give --wait to run it here.",
            highlight=False,
        )
        print_result(output, lambda: job_document(job), lambda: typer.echo(job.id))
        return
    if service is None:
        raise RuntimeError("--wait runs the job here: it needs the operations service")
    label = f"{job.kind.value} {job.resource or job.vault or ''}".strip()
    with JobFollower(label) as follower:
        final = service.run(job.id, on_update=follower)
    print_result(output, lambda: _described(service, final.id), lambda: render_job(final))
    finish(final)


def start_and_follow_remote(
    client: RemoteClient, document: dict[str, Any], *, wait: bool, output: OutputFormat
) -> None:
    """:func:`start_and_follow` against a server: the server's workers run the job, this
    follows it (``/jobs/{id}/wait``) and prints and exits as the local command does."""
    from strongroom.engine.views import job_view_of_document

    job = job_view_of_document(document)
    if not wait:
        start_and_follow(None, job, wait=False, output=output)
        return
    follow_remote(client, job, output)


def follow_remote(client: RemoteClient, job: JobView, output: OutputFormat) -> None:
    """Follow a job on a server to its end; print it and exit with its outcome."""
    from strongroom.engine.views import job_view_of_document

    label = f"{job.kind.value} {job.resource or job.vault or ''}".strip()
    with JobFollower(label) as follower:
        described = client.wait(job.id, lambda update: follower(job_view_of_document(update)))
    final = job_view_of_document(described)
    print_result(output, lambda: described, lambda: render_job(final))
    finish(final)


def finish(job: JobView) -> None:
    """Say how a job ended and exit with its code (nothing for a plain success)."""
    from strongroom.services.jobs.operations import outcome

    result = outcome(job)
    if result.exit_code == 0:
        if result.warning:
            stderr.print(f"[yellow]warning:[/] {escape(result.message)}", highlight=False)
            if result.hint:
                stderr.print(f"[dim]hint:[/] {escape(result.hint)}", highlight=False)
        return
    print_error(result.message, result.hint)
    raise typer.Exit(result.exit_code)


def render_job(job: JobView) -> None:
    """Print one job as a property table."""
    from strongroom.engine.views import duration_seconds

    result = dict(job.result or {})
    duration = duration_seconds(job)
    rows: list[list[Any]] = [
        ["id", job.id],
        ["kind", job.kind.value],
        ["state", job.state.value],
        ["resource", job.resource or "-"],
        ["vault", job.vault or "-"],
        ["rule", job.rule or "-"],
        ["attempt", attempts_text(job.attempt, job.max_attempts)],
        ["created", job.created_at.isoformat(timespec="seconds")],
        ["started", job.started_at.isoformat(timespec="seconds") if job.started_at else "-"],
        ["finished", job.finished_at.isoformat(timespec="seconds") if job.finished_at else "-"],
        ["duration", f"{duration:.1f} s" if duration is not None else "-"],
    ]
    if job.error is not None:
        rows.append(["error", f"{job.error.code}: {job.error.message}"])
    for key in ("point_id", "target", "logical_size", "new_stored_size", "points_checked"):
        if key in result:
            value = result[key]
            shown = human_size(value) if key.endswith("_size") and isinstance(value, int) else value
            rows.append([key.replace("_", " "), shown])
    if job.progress and not job.is_terminal:
        rows.append(["progress", job.progress.get("message") or job.progress.get("done")])
    print_table(f"{job.kind.value} job", ["property", "value"], rows)


def describe_job(
    ctx: typer.Context, job_id: JobArgument, output: OutputOption = OutputFormat.table
) -> None:
    """Show a job: state, attempts, times, result or error, and every state change."""
    from strongroom.engine.views import (
        description_document,
        job_view_of_document,
        transitions_of_document,
    )
    from strongroom.services.jobs.views import JobDescription

    client = remote_client(ctx)
    if client is not None:
        document = client.get(f"/jobs/{job_id}")
        description = JobDescription(
            job_view_of_document(document), transitions_of_document(document)
        )
    else:
        description = operations(ctx).describe_job(job_id)

    def for_people() -> None:
        render_job(description.job)
        print_table(
            "transitions",
            ["at", "from", "to", "attempt", "reason"],
            [
                [
                    item.at.isoformat(timespec="seconds"),
                    item.from_state.value if item.from_state else "-",
                    item.to_state.value,
                    item.attempt,
                    item.reason,
                ]
                for item in description.transitions
            ],
        )

    print_result(
        output, lambda: description_document(description.job, description.transitions), for_people
    )


def wait_job(
    ctx: typer.Context, job_id: JobArgument, output: OutputOption = OutputFormat.table
) -> None:
    """Follow a job to its end, running it here if no worker has it; exit with its outcome.

    The same as giving --wait when the job was started (see 'start-backup --help').
    """

    client = remote_client(ctx)
    if client is not None:
        from strongroom.engine.views import job_view_of_document

        follow_remote(client, job_view_of_document(client.get(f"/jobs/{job_id}")), output)
        return
    service = operations(ctx)
    job = service.describe_job(job_id).job
    if job.is_terminal:
        final = job
    else:
        label = f"{job.kind.value} {job.resource or job.vault or ''}".strip()
        with JobFollower(label) as follower:
            final = service.run(job.id, on_update=follower)
    print_result(output, lambda: _described(service, final.id), lambda: render_job(final))
    finish(final)


def cancel_job(
    ctx: typer.Context,
    job_id: JobArgument,
    reason: Annotated[str, typer.Option(help="Why; kept on the job.")] = "cancelled by the user",
) -> None:
    """Cancel a job: a queued one ends ABORTED at once; a running one stops at its next check.

    A running job's partial data is discarded (a backup never leaves a recovery point).
    """
    from strongroom.catalog.types import JobState

    job = operations(ctx).cancel_job(job_id, reason)
    if job.state is JobState.RUNNING:
        stdout.print(
            f"asked job {job.id} to stop; it ends ABORTED once its worker sees the request",
            highlight=False,
        )
    else:
        stdout.print(f"job {job.id} is {job.state.value}", highlight=False)


def _described(service: OperationsService, job_id: str) -> dict[str, Any]:
    """The JSON document of job ``job_id`` with its transitions (as ``describe-job`` prints)."""
    from strongroom.engine.views import description_document

    described = service.describe_job(job_id)
    return description_document(described.job, described.transitions)
