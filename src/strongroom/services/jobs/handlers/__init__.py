"""The work behind backup, restore, verify and copy jobs, one handler per job kind.

:func:`handlers` binds them to an application context for an executor::

    executor = ThreadPoolJobExecutor(machine, handlers(context))

The CLI (``--wait``) and the daemon register the same handlers, so a job does the same
work whoever runs it. Each handler raises what the layers below raise
(``StrongroomError`` subclasses) and lets the engine's retry policy decide. The work
itself: :mod:`~strongroom.services.jobs.handlers.backup` (backup) and
:mod:`~strongroom.services.jobs.handlers.restore` (restore, verify with restore tests),
:mod:`~strongroom.services.jobs.handlers.copy` (a point into another vault).
"""

from __future__ import annotations

from strongroom.catalog.types import JobKind
from strongroom.engine.context import Handler, JobContext, JobResult
from strongroom.services.context import AppContext
from strongroom.services.jobs.handlers.backup import run_backup
from strongroom.services.jobs.handlers.copy import run_copy
from strongroom.services.jobs.handlers.restore import run_restore, run_verify

__all__ = ["handlers"]


def handlers(context: AppContext) -> dict[JobKind, Handler]:
    """Return the handler of every job kind strongroom runs today, bound to ``context``."""

    def backup(job: JobContext) -> JobResult:
        return run_backup(context, job)

    def restore(job: JobContext) -> JobResult:
        return run_restore(context, job)

    def verify(job: JobContext) -> JobResult:
        return run_verify(context, job)

    def copy(job: JobContext) -> JobResult:
        return run_copy(context, job)

    return {
        JobKind.BACKUP: backup,
        JobKind.RESTORE: restore,
        JobKind.VERIFY: verify,
        JobKind.COPY: copy,
    }
