"""What every job handler shares: the source's context, a scratch folder, the source itself.

A handler's source gets a scratch folder under ``HOME/tmp`` (removed afterwards), the
job's cancellation (as the ``threading.Event`` sources watch) and a progress callback
that adds up byte counts into the job's progress.
"""

from __future__ import annotations

import json
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from strongroom.catalog.models import RecoveryPoint as RecoveryPointRow
from strongroom.engine.context import CancellationToken, JobContext
from strongroom.engine.views import JobView
from strongroom.errors import ConfigError, StrongroomError
from strongroom.logs import get_logger
from strongroom.services.context import AppContext
from strongroom.services.vaults.service import VaultService
from strongroom.sources import entry_for
from strongroom.sources.base import Check, RestoreReport, Source, SourceContext
from strongroom.sources.files.check import unlock_and_remove

MAX_CHECKS: Final = 200
"""Checks kept in a job result or an evidence record (failed ones first)."""
_MAX_VALUE_CHARS: Final = 2000
_log = get_logger(__name__)


class _TokenEvent(threading.Event):
    """A ``threading.Event`` that reads as set once the job's token is cancelled.

    Sources (and the subprocess gateway) watch a plain event; the engine cancels through
    its token. This joins the two without a thread.
    """

    def __init__(self, token: CancellationToken) -> None:
        super().__init__()
        self._token = token

    def is_set(self) -> bool:
        return self._token.cancelled or super().is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._token.wait(timeout) or super().is_set()


class _ByteProgress:
    """Adds up the byte counts a source reports and passes the total to the job."""

    def __init__(self, job: JobContext, message: str) -> None:
        self._job = job
        self._message = message
        self._done = 0
        self._lock = threading.Lock()

    def __call__(self, count: int) -> None:
        with self._lock:
            self._done += count
            done = self._done
        self._job.progress(done, None, self._message)


def byte_progress(job: JobContext, message: str) -> Callable[[int], None]:
    """Return a callback that adds up byte counts into the job's progress."""
    return _ByteProgress(job, message)


def source_context(job: JobContext, scratch: Path, message: str) -> SourceContext:
    """Return the source's context for a job: scratch folder, cancellation, byte progress."""
    return SourceContext(
        scratch=scratch, cancel=_TokenEvent(job.cancel), progress=_ByteProgress(job, message)
    )


@contextmanager
def scratch_folder(context: AppContext, job: JobView) -> Iterator[Path]:
    """A private folder under ``HOME/tmp`` for the job's temporary files, removed afterwards."""
    root = context.home / "tmp"
    try:
        root.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=f"{job.kind.value}-{job.id[:8]}-", dir=root))
    except OSError as error:
        raise StrongroomError(
            f"cannot create a scratch folder under {root}: {error.strerror or error}",
            hint="Check that STRONGROOM_HOME is writable and has free space.",
        ) from error
    try:
        yield folder
    finally:
        try:
            unlock_and_remove(folder)
        except OSError as error:
            _log.warning("could not remove the scratch folder %s: %s", folder, error)


def build_source(context: AppContext, name: str, model: Any) -> Source:
    """Build the source for resource ``name`` from its configuration model.

    A source that keeps a cache (the files source) keeps it in
    ``HOME/cache/TYPE/NAME.sqlite``. Raises ``UnsupportedError`` for a type without a source.
    """
    entry = entry_for(model.type, resource=name)
    return entry.build(model, resource=name, cache_dir=context.cache_dir)


def required(value: str | None, what: str) -> str:
    """Return ``value``; a job without it was made wrongly (``ConfigError``)."""
    if not value:
        raise ConfigError(f"the job has no {what}")
    return value


def required_id(value: int | None, what: str) -> int:
    """Return a job's foreign key; a job without it was made wrongly (``ConfigError``)."""
    if value is None:
        raise ConfigError(f"the job has no {what}")
    return value


def jsonable(value: Any) -> Any:
    """Return ``value`` as plain JSON data; long values become a shortened text."""
    text = json.dumps(value, default=str, sort_keys=True)
    if len(text) > _MAX_VALUE_CHARS:
        return text[:_MAX_VALUE_CHARS] + f"… ({len(text)} characters)"
    return json.loads(text)


def check_json(check: Check) -> dict[str, Any]:
    """One check as JSON: name, expected, actual, ok."""
    return {
        "name": check.name,
        "expected": jsonable(check.expected),
        "actual": jsonable(check.actual),
        "ok": check.ok,
    }


def report_json(report: RestoreReport) -> dict[str, Any]:
    """A restore (test) report as JSON: target, verdict, checks (failed first, capped), notes."""
    failed = report.failures
    passed = [check for check in report.checks if check.ok]
    kept = (failed + passed)[:MAX_CHECKS]
    return {
        "target": report.target,
        "ok": report.ok,
        "checks_total": len(report.checks),
        "checks_failed": len(failed),
        "checks": [check_json(check) for check in kept],
        "notes": list(report.notes[:50]),
    }


def failure_text(check: Check, limit: int = 160) -> str:
    """One failed check in a line: ``name (expected X, found Y)``."""
    text = f"{check.name} (expected {jsonable(check.expected)!r}, found {jsonable(check.actual)!r})"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def failures_text(report: RestoreReport, limit: int = 5) -> str:
    """The failed checks of a report in one line (the first few, and how many more)."""
    if not report.checks:
        return "no checks were made, so nothing was proven"
    failed = report.failures
    shown = "; ".join(failure_text(check) for check in failed[:limit])
    more = len(failed) - limit
    return shown + (f"; and {more} more" if more > 0 else "")


def discard_unrecorded(context: AppContext, vault: str, point_id: str, job_id: str) -> None:
    """Remove the manifest of point ``point_id`` from ``vault`` unless the catalog has a
    row for it: the job that wrote it lost its lease (another worker took the job over)
    or the catalog refused the row, so no later ``catalog rebuild`` finds a second point."""
    with context.catalog.session(readonly=True) as session:
        if session.get(RecoveryPointRow, point_id) is not None:
            return
    with VaultService(context).open(vault) as opened:
        opened.delete_point(point_id)
    _log.warning(
        "recovery point %s of job %s was removed from vault %s: it could not be recorded "
        "(the job was taken over by another worker, or the catalog refused the row)",
        point_id,
        job_id,
        vault,
    )
