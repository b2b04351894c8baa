"""The composition root of ``strongroom serve``: the one place the daemon's parts are wired.

:func:`open_daemon` builds the :class:`~strongroom.engine.daemon.Daemon` over an
application context: the event bus and job state machine of its catalog, the executor's
job handlers (:func:`job_handlers`, one per job kind strongroom runs) and the lifecycle
runner, with job-history pruning when asked. Every part is imported here by name, so
mypy and import-linter see the wiring and a renamed part breaks the build instead of
giving a daemon that silently runs nothing. The event delivery (``daemon/notifications.py``)
and the metrics registry (``daemon/metrics.py``, served by ``cli/serve.py``) join here; the
API server will too.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Final

from strongroom.catalog.types import JobKind
from strongroom.daemon.notifications import open_outbox
from strongroom.engine.context import Handler
from strongroom.engine.daemon import Daemon, DaemonSettings, LifecycleHook
from strongroom.engine.events import EventBus
from strongroom.engine.states import JobStateMachine
from strongroom.errors import ConfigError
from strongroom.services.audit.scheduled import audit_scheduled_runs
from strongroom.services.context import AppContext
from strongroom.services.jobs.handlers import handlers
from strongroom.services.jobs.history import HistoryService
from strongroom.services.reports.anchors import AnchorService
from strongroom.services.reports.scheduled import ScheduledReports
from strongroom.services.retention.lifecycle import LifecycleService

PLANNED_KINDS: Final = frozenset({JobKind.DELETE})
"""Job kinds the catalog knows but nothing creates yet (delete jobs), so the
daemon has no handler for them; a test keeps this and :func:`job_handlers` covering
every :class:`~strongroom.catalog.types.JobKind` exactly once."""


def job_handlers(context: AppContext) -> dict[JobKind, Handler]:
    """Return the handler of every job kind strongroom runs, bound to ``context``."""
    return handlers(context)


def lifecycle_hook(
    context: AppContext,
    *,
    history_days: int | None = None,
    anchor_vaults: Sequence[str] = (),
) -> LifecycleHook:
    """Return the daemon's lifecycle hook: run the lifecycle of every vault, then, with
    ``history_days``, prune the job history older than that many days at most once per
    day of clock time, then write an audit anchor into each of ``anchor_vaults`` whose
    newest anchor is behind the trail's head (``services/reports/anchors.py``).

    Raises ConfigError for ``history_days`` below one.
    """
    if history_days is not None and history_days < 1:
        raise ConfigError(f"--history-days must be at least 1, not {history_days}")
    last_pruned: list[datetime] = []

    def hook() -> object:
        report = LifecycleService(context).run()
        if history_days is not None:
            now = context.now()
            if not last_pruned or now - last_pruned[0] >= timedelta(days=1):
                last_pruned[:] = [now]
                HistoryService(context).prune(older_than_days=history_days)
        for vault in anchor_vaults:
            AnchorService(context).write_if_moved(vault)
        return report

    return hook


def open_daemon(
    context: AppContext,
    settings: DaemonSettings,
    *,
    history_days: int | None = None,
    anchor_vaults: Sequence[str] = (),
) -> Daemon:
    """Build the daemon of ``strongroom serve`` over the context's catalog and clock.

    With ``history_days``, its lifecycle hook also prunes the job history older than that
    many days (:mod:`strongroom.services.jobs.history`), at most once a day; with
    ``anchor_vaults``, it anchors the audit trail's head in those vaults. The leader makes
    and delivers the scheduled compliance reports at each event-delivery pass
    (:mod:`strongroom.services.reports.scheduled`). The jobs its
    scheduler starts are audit entries (:mod:`strongroom.services.audit.scheduled`).
    Raises ConfigError for ``history_days`` below one.
    """
    bus = EventBus(context.catalog, context.clock)
    machine = JobStateMachine(context.catalog, bus, context.clock)
    lifecycle = lifecycle_hook(context, history_days=history_days, anchor_vaults=anchor_vaults)
    outbox = open_outbox(context, bus)

    reports = ScheduledReports(context)

    def deliver(leading: bool) -> object:
        delivered = outbox.run_pass(fan_out=leading)
        if leading:  # one daemon makes each scheduled report
            reports.run_due()
        return delivered

    return Daemon(
        machine,
        job_handlers(context),
        settings,
        lifecycle=lifecycle,
        outbox=deliver,
        on_run_started=audit_scheduled_runs(),
    )
