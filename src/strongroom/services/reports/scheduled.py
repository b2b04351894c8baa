"""Scheduled compliance reports: the ``reports`` rules the daemon runs and delivers.

At each event-delivery pass the leading daemon reads the rules ``apply`` stored, and for
each one that is due (never generated yet, or its schedule fired since the last report)
builds the report over ``[fire - period, fire)``, writes it signed (``FILE`` and
``FILE.sig``) under the rule's folder, and delivers it through the rule's channels
(``notify/``): an email channel gets both files as attachments, an apprise or webhook
channel the file's path and the verdict. Only when every channel took it does the rule
advance (the ``report_schedule`` settings row), so a channel that is down gets the same
report at the next pass; the file is then not written again (nor its generation audited
twice). Reports run as the scheduler's actor in the audit trail.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import escape
from pathlib import Path
from typing import Any, Final

from strongroom.catalog.outbox import REPORTS, read_notifications, read_section, write_section
from strongroom.config.notifications import (
    AppriseChannel,
    Channel,
    EmailChannel,
    NotificationsConfig,
    WebhookChannel,
)
from strongroom.config.reports import ReportRule, ReportsConfig
from strongroom.config.schedule import parse_schedule
from strongroom.config.secrets import resolve_secret
from strongroom.errors import ConfigError
from strongroom.logs import get_logger
from strongroom.notify import apprise_channel, email
from strongroom.notify.channels import send_webhook
from strongroom.services.audit.scheduled import scheduler_actor
from strongroom.services.context import AppContext
from strongroom.services.reports.compliance import ComplianceService, ReportFormat
from strongroom.services.reports.signing import SIGNATURE_SUFFIX

STATE: Final = "report_schedule"
"""The ``settings`` row holding, per rule, the firing its newest delivered report covers
(``delivered``) and the newest report written (``written``: firing and verdict)."""
_MAX_STEPS: Final = 100_000
_MEDIA: Final = {
    "json": ("application", "json"),
    "html": ("text", "html"),
    "pdf": ("application", "pdf"),
}

_log = get_logger(__name__)


@dataclass(frozen=True)
class DeliveredReport:
    """One report made and delivered: its rule, firing, file, verdict and channels."""

    rule: str
    fired_at: datetime
    path: Path
    status: str
    channels: tuple[str, ...]


def due_firing(rule: ReportRule, last: datetime | None, now: datetime) -> datetime | None:
    """The newest firing of ``rule`` at or before ``now`` after ``last`` (None: not due).

    A rule never run is due at once (its first report covers the period up to now);
    firings missed meanwhile make one report, of the newest.
    """
    if last is None:
        return now
    schedule = parse_schedule(rule.schedule)
    newest: datetime | None = None
    after = last
    for _ in range(_MAX_STEPS):
        candidate = schedule.next_after(after, rule.timezone)
        if candidate is None or candidate > now:
            break
        newest = after = candidate
    return None if newest is None else newest.astimezone(UTC)


class ScheduledReports:
    """Runs the due report rules of one context's catalog (as the scheduler's actor)."""

    def __init__(self, context: AppContext) -> None:
        self.context = context.acting_as(scheduler_actor())

    def run_due(self) -> list[DeliveredReport]:
        """Make and deliver every due report; return them.

        Raises what building, signing or delivering raises (``NotFoundError`` without a
        signing key, ``NetworkError`` for an SMTP server that is down …); the rules
        delivered before the error keep their progress.
        """
        with self.context.catalog.session(readonly=True) as session:
            section = read_section(session, REPORTS)
            state = read_section(session, STATE) or {}
            notifications = read_notifications(session) or {}
        if not section or not section.get("rules"):
            return []
        rules = ReportsConfig.model_validate(section).rules
        channels = NotificationsConfig.model_validate(notifications).channels
        delivered: list[DeliveredReport] = []
        for rule in rules:
            progress = dict(state.get(rule.name) or {})
            last = progress.get("delivered")
            fired = due_firing(rule, datetime.fromisoformat(last) if last else None, self.now())
            if fired is None:
                continue
            path = self._folder(rule) / f"{rule.name}-{fired:%Y%m%dT%H%M%SZ}.{rule.format}"
            written = progress.get("written") or {}
            if written.get("fired") == fired.isoformat() and path.exists():
                status = str(written.get("status"))
            else:
                status = self._write(rule, fired, path)
                progress["written"] = {"fired": fired.isoformat(), "status": status}
                state[rule.name] = progress
                self._save(state)
            for name in rule.channels:
                channel = channels.get(name)
                if channel is None:
                    raise ConfigError(f"report rule {rule.name}: no notification channel {name!r}")
                _send(channel, rule, path, status, fired)
            _log.info("compliance report %s delivered to %s", path, ", ".join(rule.channels))
            delivered.append(DeliveredReport(rule.name, fired, path, status, tuple(rule.channels)))
            progress["delivered"] = fired.isoformat()
            state[rule.name] = progress
            self._save(state)
        return delivered

    def now(self) -> datetime:
        """The context's clock."""
        return self.context.now()

    def _folder(self, rule: ReportRule) -> Path:
        return Path(rule.folder) if rule.folder else self.context.home / "reports" / rule.name

    def _save(self, state: dict[str, Any]) -> None:
        with self.context.catalog.session() as session:
            write_section(session, STATE, state, at=self.now())

    def _write(self, rule: ReportRule, fired: datetime, path: Path) -> str:
        """Build the report of ``rule`` up to ``fired``, write it signed at ``path``;
        return its verdict (audited as ``report.generate`` by the scheduler)."""
        service = ComplianceService(self.context)
        document = service.build(
            list(rule.frameworks),
            period=timedelta(days=int(rule.period[:-1])),
            until=fired,
            restore_procedure=Path(rule.restore_procedure) if rule.restore_procedure else None,
        )
        return service.write(document, path, ReportFormat(rule.format)).status


def _send(channel: Channel, rule: ReportRule, path: Path, status: str, fired: datetime) -> None:
    signature = path.with_name(path.name + SIGNATURE_SUFFIX)
    title = f"compliance report {rule.name} ({', '.join(rule.frameworks)}): {status.upper()}"
    text = (
        f"{title}\nperiod: {rule.period} up to {fired.isoformat()}\nfile: {path}\n"
        f"signature: {signature}\nCheck it with: strongroom report verify {path}\n"
    )
    if isinstance(channel, EmailChannel):
        password = resolve_secret(channel.password) if channel.password else None
        settings = email.SmtpSettings(
            host=channel.host,
            port=channel.port,
            security=channel.security,
            sender=channel.sender,
            recipients=channel.recipients,
            username=channel.username,
            password=password,
        )
        message = email.build_message(
            settings,
            subject=f"{channel.subject_prefix} {title}".strip(),
            text=text,
            html=f"<pre>{escape(text)}</pre>",
        )
        maintype, subtype = _MEDIA[rule.format]
        message.add_attachment(
            path.read_bytes(), maintype=maintype, subtype=subtype, filename=path.name
        )
        message.add_attachment(
            signature.read_bytes(), maintype="application", subtype="json", filename=signature.name
        )
        email.send(settings, message)
    elif isinstance(channel, AppriseChannel):
        apprise_channel.send(resolve_secret(channel.url), title=title, body=text)
    elif isinstance(channel, WebhookChannel):
        send_webhook(channel, _webhook_document(rule, path, signature, status, fired))
    else:
        raise ConfigError(f"report rule {rule.name}: channel type {channel.type} takes no reports")


def _webhook_document(
    rule: ReportRule, path: Path, signature: Path, status: str, fired: datetime
) -> dict[str, Any]:
    return {
        "type": "compliance.report.generated",
        "rule": rule.name,
        "frameworks": list(rule.frameworks),
        "period": rule.period,
        "until": fired.isoformat(),
        "status": status,
        "file": str(path),
        "signature": str(signature),
    }
