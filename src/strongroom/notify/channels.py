"""Send one event to one channel, by the channel's type: Apprise, email, PagerDuty, webhook.

Secrets (Apprise URLs, SMTP passwords, routing keys, header values) are references,
resolved here at send time (and so masked in every log line). PagerDuty pages once per
incident, and so does every other channel: an incident's opening event goes out only
while the catalog holds no open incident for its dedup key (rule, channel, component),
and its resolution only while one is open (``catalog/outbox.py``). Two kinds of events
open and resolve incidents: a backup escalation (``backup.escalation`` →
``backup.escalation.resolved``, component ``kind/resource/plan/rule``) and a monitor
alert (``monitor.*`` → ``monitor.resolved``, component ``check/subject``), so the page a
monitor alert opened is resolved by that alert's ``monitor.resolved`` when the same rule
routes both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from strongroom.catalog import Catalog
from strongroom.catalog import outbox as catalog_outbox
from strongroom.config.notifications import (
    AppriseChannel,
    Channel,
    EmailChannel,
    PagerDutyChannel,
    WebhookSettings,
)
from strongroom.config.secrets import resolve_secret
from strongroom.notify import apprise_channel, email, pagerduty
from strongroom.notify.http import post_json
from strongroom.notify.messages import Message, build_message, component_of

ESCALATION = "backup.escalation"
ESCALATION_RESOLVED = "backup.escalation.resolved"
MONITOR_RESOLVED = "monitor.resolved"
RESOLUTIONS = frozenset({ESCALATION_RESOLVED, MONITOR_RESOLVED})
"""Events that close an incident (sent only while one is open for their key)."""


def opens_incident(event_type: str) -> bool:
    """Tell whether an event of this type opens an incident: an escalation or a monitor
    alert (every ``monitor.*`` type but ``monitor.resolved``)."""
    return event_type == ESCALATION or (
        event_type.startswith("monitor.") and event_type != MONITOR_RESOLVED
    )


def dedup_key(rule: str, channel: str, event: Mapping[str, Any]) -> str:
    """Return the stable key of the incident an event belongs to: one per rule, channel
    and component (``kind/resource/plan/rule`` for a job; ``check/subject`` for a monitor
    alert and its resolution; type and subject otherwise)."""
    payload = event["payload"]
    component = payload.get("component")
    if component is None and str(event["type"]).startswith("monitor."):
        check, subject = payload.get("check"), payload.get("subject")
        if isinstance(check, str) and isinstance(subject, str):
            component = f"{check}/{subject}"
    if component is None and isinstance(payload.get("job"), Mapping):
        component = component_of(payload["job"])
    if component is None:
        component = f"{event['type']}/{event['subject']}"
    return f"strongroom/{rule}/{channel}/{component}"


def send_webhook(settings: WebhookSettings, event: Mapping[str, Any]) -> None:
    """POST the event document to the webhook; raises as ``post_json``."""
    headers = {name: resolve_secret(reference) for name, reference in settings.headers.items()}
    post_json(settings.url, event, headers=headers)


class ChannelSender:
    """Sends events to named channels; keeps PagerDuty's open incidents in the catalog."""

    def __init__(self, catalog: Catalog, now: Callable[[], datetime]) -> None:
        self.catalog = catalog
        self.now = now

    def send(
        self,
        name: str,
        channel: Channel,
        event: Mapping[str, Any],
        *,
        rule: str,
        severity: str,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Send ``event`` (its JSON document) to the channel; raise when it did not arrive.

        An escalation or a monitor alert is an incident, one per dedup key: it is sent
        while no incident of that key is open (then opened), and its resolution only while
        one is (then closed), so a repeated failure alerts no one twice and a success (or
        a cleared alert) resolves once.
        """
        kind = event["type"]
        key = dedup_key(rule, name, event)
        opening = opens_incident(kind)
        if (opening or kind in RESOLUTIONS) and self._is_open(key) == opening:
            return  # already alerted, or nothing to resolve
        if isinstance(channel, PagerDutyChannel):
            self._page(channel, event, key, severity=severity, details=details)
        elif isinstance(channel, WebhookSettings):
            send_webhook(channel, event)
        else:
            self._message(channel, build_message(event, severity=severity, details=details))
        if opening:
            with self.catalog.session() as session:
                catalog_outbox.open_escalation(
                    session, key, at=self.now(), event_id=event.get("id")
                )
        elif kind in RESOLUTIONS:
            with self.catalog.session() as session:
                catalog_outbox.resolve_escalation(session, key, at=self.now())

    def _is_open(self, key: str) -> bool:
        with self.catalog.session(readonly=True) as session:
            return catalog_outbox.is_open(session, key)

    @staticmethod
    def _message(channel: AppriseChannel | EmailChannel, message: Message) -> None:
        if isinstance(channel, AppriseChannel):
            apprise_channel.send(
                resolve_secret(channel.url), title=message.title, body=message.text
            )
            return
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
        subject = f"{channel.subject_prefix} {message.title}".strip()
        email.send(
            settings,
            email.build_message(settings, subject=subject, text=message.text, html=message.html),
        )

    @staticmethod
    def _page(
        channel: PagerDutyChannel,
        event: Mapping[str, Any],
        key: str,
        *,
        severity: str,
        details: Mapping[str, Any] | None,
    ) -> None:
        routing_key = resolve_secret(channel.routing_key)
        if event["type"] in RESOLUTIONS:
            pagerduty.page(channel.events_url, routing_key, action="resolve", dedup_key=key)
            return
        message = build_message(event, severity=severity, details=details)
        pagerduty.page(
            channel.events_url,
            routing_key,
            action="trigger",
            dedup_key=key,
            summary=message.title,
            severity=severity,
            details={**message.facts, "event_id": event.get("id"), "event_type": event["type"]},
        )
