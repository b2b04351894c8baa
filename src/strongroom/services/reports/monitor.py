"""``strongroom monitor``: checks that say when backups are not protecting anything.

One pass (:meth:`MonitorService.check`) evaluates, against the thresholds ``apply``
stored (the configuration's ``monitor`` section, docs/monitor.md):

* **backup age**: a resource's newest live point is older than its threshold (default
  24 h, per resource overridable); a resource without a point alerts once it was
  declared that long ago;
* **failures**: jobs that ended FAILED, ABORTED or EXPIRED in the failure window;
* **storage**: a vault stores more than its threshold;
* **verification**: a resource's points were last verified longer ago than the policy
  (or never, once its oldest live point is that old);
* **lifecycle**: a point's cold move or deletion is overdue (the lifecycle runner is not
  running); the runner's last pass over every vault is older than its threshold (or it
  never ran, once a point with a lifecycle is that old);
* **garbage collection**: a vault lost points longer ago than the threshold and its GC
  has not run since (their data still takes space);
* **replication lag**: a copy pair's oldest source point without a copy has waited longer
  than the threshold (``services/reports/lag.py``).

Each alert is an incident keyed by check and subject: the pass that first finds it
publishes a ``monitor.*`` event (so event rules route it) and opens the incident; later
passes that still find it publish nothing (nothing alerts twice), and the pass that no
longer finds it publishes ``monitor.resolved`` and closes it. After a pass that found
nothing alerting, the dead man's switch URL is pinged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

import httpx

from strongroom.catalog import maintenance, measures
from strongroom.catalog import outbox as catalog_outbox
from strongroom.catalog.shapes import MonitorAlertPayload
from strongroom.config.notifications import MonitorConfig
from strongroom.engine.events import EventBus
from strongroom.logs import get_logger
from strongroom.services.context import AppContext
from strongroom.services.reports.lag import ReplicationService
from strongroom.services.retention.lifecycle_preview import LifecyclePreviewService

_logger = get_logger(__name__)

BACKUP_AGE: Final = "monitor.backup_age_exceeded"
FAILURES: Final = "monitor.failures"
STORAGE: Final = "monitor.storage_exceeded"
VERIFICATION: Final = "monitor.verification_overdue"
LIFECYCLE: Final = "monitor.lifecycle_overdue"
LIFECYCLE_RUN: Final = "monitor.lifecycle_run_overdue"
GC: Final = "monitor.gc_overdue"
REPLICATION: Final = "monitor.replication_lag_exceeded"
RESOLVED: Final = "monitor.resolved"
_INCIDENT_PREFIX: Final = "monitor/"


@dataclass(frozen=True)
class Alert:
    """One thing the monitor found wrong."""

    check: str
    subject: str
    message: str
    value: float
    threshold: float
    resource: str | None = None
    vault: str | None = None

    @property
    def key(self) -> str:
        """The incident's key: check and subject."""
        return f"{_INCIDENT_PREFIX}{self.check}/{self.subject}"

    def as_json(self) -> dict[str, Any]:
        """The alert as an event payload and as ``--output json`` shows it."""
        shape = MonitorAlertPayload(
            check=self.check,
            subject=self.subject,
            message=self.message,
            value=self.value,
            threshold=self.threshold,
            resource=self.resource,
            vault=self.vault,
        )
        return shape.model_dump(mode="json")


@dataclass
class MonitorReport:
    """What one pass found, and what it changed."""

    checked_at: datetime
    alerts: list[Alert] = field(default_factory=list)
    raised: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    pinged: bool | None = None

    @property
    def alerting(self) -> bool:
        """True while anything alerts."""
        return bool(self.alerts)

    def as_json(self) -> dict[str, Any]:
        """The report as ``--output json`` prints it."""
        return {
            "checked_at": self.checked_at.isoformat(),
            "alerting": self.alerting,
            "alerts": [alert.as_json() for alert in self.alerts],
            "raised": self.raised,
            "resolved": self.resolved,
            "dead_mans_switch_pinged": self.pinged,
        }


class MonitorService:
    """Runs the monitor's checks over a context's catalog (see the module docs)."""

    def __init__(self, context: AppContext) -> None:
        self.context = context

    def config(self) -> MonitorConfig:
        """Return the thresholds ``apply`` stored (the defaults when none were)."""
        with self.context.catalog.session(readonly=True) as session:
            stored = catalog_outbox.read_section(session, catalog_outbox.MONITOR)
        return MonitorConfig.model_validate(stored) if stored else MonitorConfig()

    def evaluate(self) -> MonitorReport:
        """Run every check once and return what alerts, publishing and pinging nothing
        (what the API shows; :meth:`check` is the monitor's own pass)."""
        now = self.context.now()
        return MonitorReport(checked_at=now, alerts=self._alerts(self.config(), now))

    def check(self) -> MonitorReport:
        """Run every check once; publish raised and resolved alerts; ping when healthy."""
        config = self.config()
        now = self.context.now()
        report = MonitorReport(checked_at=now, alerts=self._alerts(config, now))
        self._publish(report)
        if not report.alerting and config.dead_mans_switch_url is not None:
            report.pinged = _ping(config.dead_mans_switch_url)
        return report

    def _alerts(self, config: MonitorConfig, now: datetime) -> list[Alert]:
        with self.context.catalog.session(readonly=True) as session:
            points = measures.resource_points(session)
            failures = measures.recent_failures(
                session, since=now - timedelta(hours=config.failure_window_hours)
            )
            stored = measures.stored_bytes(session)
        alerts = _age_alerts(config, points, now)
        alerts += [
            Alert(
                FAILURES,
                f"{failure.kind}/{failure.resource}",
                f"{failure.count} {failure.kind} job(s) of {failure.resource} failed in the "
                f"last {config.failure_window_hours:g} h (last: {failure.last_error_code or '-'})",
                float(failure.count),
                0.0,
                resource=failure.resource,
            )
            for failure in failures
        ]
        totals: dict[str, int] = {}
        for (vault, _tier), size in stored.items():
            totals[vault] = totals.get(vault, 0) + size
        alerts += [
            Alert(
                STORAGE,
                vault,
                f"vault {vault} stores {totals.get(vault, 0)} bytes, over {limit}",
                float(totals.get(vault, 0)),
                float(limit),
                vault=vault,
            )
            for vault, limit in sorted(config.storage_bytes.items())
            if totals.get(vault, 0) > limit
        ]
        alerts += _verification_alerts(config, points, now)
        alerts += self._lifecycle_alerts(config, now)
        alerts += self._replication_alerts(config, now)
        alerts += self._maintenance_alerts(config, now)
        return alerts

    def _maintenance_alerts(self, config: MonitorConfig, now: datetime) -> list[Alert]:
        with self.context.catalog.session(readonly=True) as session:
            times = maintenance.read_times(session)
            deleted = maintenance.last_deletions(session)
            oldest = maintenance.oldest_point_with_lifecycle(session)
        alerts: list[Alert] = []
        limit = config.lifecycle_run_max_age_hours * 3600
        since = times.lifecycle_run_at or oldest
        if since is not None and (now - since).total_seconds() > limit:
            last = times.lifecycle_run_at.isoformat() if times.lifecycle_run_at else "never"
            alerts.append(
                Alert(
                    LIFECYCLE_RUN,
                    "lifecycle",
                    f"the lifecycle runner last ran over every vault {last}, over "
                    f"{config.lifecycle_run_max_age_hours:g} h ago: is strongroom serve "
                    "running (or the lifecycle run cron job)?",
                    (now - since).total_seconds(),
                    limit,
                )
            )
        limit = config.gc_max_age_days * 86_400
        for vault, deleted_at in sorted(deleted.items()):
            collected = times.gc_at.get(vault)
            if collected is not None and collected >= deleted_at:
                continue
            waited = (now - deleted_at).total_seconds()
            if waited > limit:
                alerts.append(
                    Alert(
                        GC,
                        vault,
                        f"vault {vault} lost points (the last {deleted_at.isoformat()}) and "
                        "its garbage collection has not run since "
                        f"(last: {collected.isoformat() if collected else 'never'}): run "
                        f"`strongroom vault gc {vault}` or `lifecycle run --gc`",
                        waited,
                        limit,
                        vault=vault,
                    )
                )
        return alerts

    def _replication_alerts(self, config: MonitorConfig, now: datetime) -> list[Alert]:
        limit = config.replication_lag_hours * 3600
        alerts: list[Alert] = []
        for pair in ReplicationService(self.context).lag():
            waited = pair.waiting_seconds(now)
            if waited <= limit:
                continue
            alerts.append(
                Alert(
                    REPLICATION,
                    f"{pair.source_vault}/{pair.resource}/{pair.destination_vault}",
                    f"{pair.resource}: {pair.behind} point(s) in {pair.source_vault} not copied "
                    f"to {pair.destination_vault}, the oldest waiting {waited / 3600:.1f} h, "
                    f"over {config.replication_lag_hours:g} h: are copy jobs failing, or is "
                    "the daemon (strongroom serve) stopped?",
                    waited,
                    limit,
                    resource=pair.resource,
                    vault=pair.destination_vault,
                )
            )
        return alerts

    def _lifecycle_alerts(self, config: MonitorConfig, now: datetime) -> list[Alert]:
        cutoff = now - timedelta(hours=config.lifecycle_grace_hours)
        alerts: list[Alert] = []
        for point in LifecyclePreviewService(self.context).preview():
            due: tuple[str, datetime] | None = None
            if point.deletes_at is not None and point.deletes_at < cutoff:
                due = ("deletion", point.deletes_at)
            elif (
                point.tier == "warm"
                and point.cold_tier != "none"
                and point.move_to_cold_at is not None
                and point.move_to_cold_at < cutoff
            ):
                due = ("move to cold", point.move_to_cold_at)
            if due is not None:
                late = (now - due[1]).total_seconds()
                alerts.append(
                    Alert(
                        LIFECYCLE,
                        point.point_id,
                        f"the {due[0]} of point {point.point_id} ({point.resource}) was due "
                        f"{due[1].isoformat()}: is the lifecycle runner (strongroom serve) running?",
                        late,
                        config.lifecycle_grace_hours * 3600,
                        resource=point.resource,
                        vault=point.vault,
                    )
                )
        return alerts

    def _publish(self, report: MonitorReport) -> None:
        bus = EventBus(self.context.catalog, self.context.clock)
        found = {alert.key: alert for alert in report.alerts}
        with self.context.catalog.session() as session:
            was_open = {
                row.dedup_key
                for row in catalog_outbox.list_escalations(session, open_only=True)
                if row.dedup_key.startswith(_INCIDENT_PREFIX)
            }
            for key in sorted(found.keys() - was_open):
                catalog_outbox.open_escalation(session, key, at=report.checked_at, event_id=None)
            for key in sorted(was_open - found.keys()):
                catalog_outbox.resolve_escalation(session, key, at=report.checked_at)
        for key in sorted(found.keys() - was_open):
            alert = found[key]
            bus.publish(alert.check, alert.subject, alert.as_json())
            report.raised.append(key)
        for key in sorted(was_open - found.keys()):
            check, _, subject = key.removeprefix(_INCIDENT_PREFIX).partition("/")
            bus.publish(RESOLVED, subject, {"check": check, "subject": subject})
            report.resolved.append(key)


def _age_alerts(
    config: MonitorConfig, points: list[measures.ResourcePoints], now: datetime
) -> list[Alert]:
    alerts: list[Alert] = []
    for point in points:
        override = config.resources.get(point.resource)
        hours = (override.backup_age_hours if override else None) or config.backup_age_hours
        since = point.newest_at or point.declared_at
        age = (now - since).total_seconds()
        if age > hours * 3600:
            what = (
                "its newest recovery point" if point.newest_at else "it has no recovery point; it"
            )
            alerts.append(
                Alert(
                    BACKUP_AGE,
                    point.resource,
                    f"{point.resource}: {what} is {age / 3600:.1f} h old, over {hours:g} h",
                    age,
                    hours * 3600,
                    resource=point.resource,
                )
            )
    return alerts


def _verification_alerts(
    config: MonitorConfig, points: list[measures.ResourcePoints], now: datetime
) -> list[Alert]:
    policy = timedelta(days=config.verification_max_age_days)
    alerts: list[Alert] = []
    for point in points:
        if point.oldest_at is None:
            continue
        since = point.verified_at or point.oldest_at
        if now - since > policy:
            alerts.append(
                Alert(
                    VERIFICATION,
                    point.resource,
                    f"{point.resource}: last verified "
                    + (point.verified_at.isoformat() if point.verified_at else "never")
                    + f", policy {config.verification_max_age_days:g} day(s)",
                    (now - since).total_seconds(),
                    policy.total_seconds(),
                    resource=point.resource,
                )
            )
    return alerts


def _ping(url: str) -> bool:
    """GET the dead man's switch; log and return False when it does not answer 2xx."""
    try:
        response = httpx.get(url, timeout=10.0)
    except httpx.HTTPError as error:
        _logger.warning("the dead man's switch did not answer: %s", type(error).__name__)
        return False
    if not response.is_success:
        _logger.warning("the dead man's switch answered %s", response.status_code)
    return response.is_success
