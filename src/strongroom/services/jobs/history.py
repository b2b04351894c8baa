"""Job history retention: ``strongroom catalog prune-history`` and ``serve --history-days``.

See :mod:`strongroom.catalog.history` for what is pruned and what is always kept (job
rows, jobs not yet ended, the audit events of retention).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from strongroom.catalog.history import prune_job_history
from strongroom.errors import ConfigError
from strongroom.logs import get_logger
from strongroom.services.context import AppContext

_logger = get_logger(__name__)


@dataclass(frozen=True)
class HistoryReport:
    """What a prune removed (or would remove, for a dry run) and the cutoff it used."""

    before: datetime
    events: int
    transitions: int
    dry_run: bool

    def as_json(self) -> dict[str, Any]:
        """The report as ``--output json`` prints it."""
        return {
            "before": self.before.isoformat(),
            "events": self.events,
            "transitions": self.transitions,
            "dry_run": self.dry_run,
        }


class HistoryService:
    """``catalog prune-history`` and the daemon's pruning, on one application context."""

    def __init__(self, context: AppContext) -> None:
        self.context = context

    def prune(self, *, older_than_days: int, dry_run: bool = False) -> HistoryReport:
        """Prune the job history older than ``older_than_days`` days (see the module docs).

        Raises ConfigError for fewer than one day.
        """
        context = self.context
        if older_than_days < 1:
            raise ConfigError(f"--older-than-days must be at least 1, not {older_than_days}")
        before = context.now() - timedelta(days=older_than_days)
        with context.catalog.session() as session:
            pruned = prune_job_history(session, before=before, dry_run=dry_run)
        if not dry_run and (pruned.events or pruned.transitions):
            _logger.info(
                "pruned job history before %s: %d events, %d transitions",
                before.isoformat(),
                pruned.events,
                pruned.transitions,
            )
        return HistoryReport(before, pruned.events, pruned.transitions, dry_run)
