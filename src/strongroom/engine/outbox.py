"""The delivery loop: route stored events through the event rules, at least once.

One pass (:meth:`Outbox.run_pass`) has two steps:

1. **Fan out** (the scheduling daemon only): read the events stored after the cursor,
   match them against the rules ``apply`` stored (``notifications`` in the catalog), and
   create one pending delivery per event and target, advancing the cursor in the same
   transaction; so a crash loses no event and duplicates none. The cursor starts where
   ``apply`` first declared notifications: rules see the events after them.
2. **Deliver** (any worker): claim due deliveries for a while, send each outside any
   transaction, then mark it delivered, or due again after the rule's backoff, or
   ``dead`` once its attempts are spent or its event is older than the rule allows.
   A dead delivery is kept (the dead-letter record) and published as
   ``delivery.failed``, which rules may route in turn (a dead delivery of a
   ``delivery.failed`` event publishes nothing, so a broken channel cannot feed itself).

A claim that lapses (the worker died mid-send) makes the delivery due again: a target
may see an event twice, never zero times. Sending never raises out of a pass: a broken
channel never fails a backup.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from strongroom.catalog import Catalog
from strongroom.catalog import events as catalog_events
from strongroom.catalog import outbox as catalog_outbox
from strongroom.catalog import runs as catalog_runs
from strongroom.catalog.models import EventRecord, Resource
from strongroom.catalog.shapes import DeliveryFailedPayload
from strongroom.config.notifications import EventRule, NotificationsConfig, Severity, Target
from strongroom.engine.clock import Clock
from strongroom.engine.events import Event, EventBus
from strongroom.engine.rules import event_facts, matching_targets, severity_of
from strongroom.errors import NotFoundError
from strongroom.logs import get_logger, mask

_logger = get_logger(__name__)

DELIVERY_FAILED: Final = "delivery.failed"
"""A delivery was dead-lettered (out of attempts, or its event too old)."""


@dataclass(frozen=True)
class Delivery:
    """One event on its way to one target: what a sender is given."""

    event: Event
    rule: EventRule
    target: Target
    target_key: str
    severity: Severity
    config: NotificationsConfig
    details: Mapping[str, Any] = field(default_factory=dict)
    """Extra facts from the catalog: for a run event, the run's full summary."""


Sender = Callable[[Delivery], None]
"""Deliver one event to one target; raise (any exception) when it did not arrive."""


@dataclass
class PassReport:
    """What one pass did."""

    routed: int = 0
    delivered: int = 0
    retried: int = 0
    dead: int = 0


def load_notifications(session: Session) -> NotificationsConfig | None:
    """Return the stored notifications section, or None when none (or a damaged one) is."""
    stored = catalog_outbox.read_notifications(session)
    if stored is None:
        return None
    try:
        return NotificationsConfig.model_validate(stored)
    except ValueError as error:
        _logger.error("the catalog's notifications cannot be read; apply them again: %s", error)
        return None


class Outbox:
    """Fans stored events out to rule targets and delivers them (see the module docs)."""

    def __init__(
        self,
        catalog: Catalog,
        bus: EventBus,
        clock: Clock,
        send: Sender,
        *,
        worker: str | None = None,
        claim_seconds: float = 300.0,
        batch: int = 200,
    ) -> None:
        self.catalog = catalog
        self.bus = bus
        self.clock = clock
        self.send = send
        self.worker = worker or f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}"
        self.claim_seconds = claim_seconds
        self.batch = batch

    def run_pass(self, *, fan_out: bool = True) -> PassReport:
        """Fan out (when ``fan_out``) until the cursor is at the newest event, then deliver
        every due delivery once; return the counts."""
        report = PassReport()
        if fan_out:
            while (routed := self.fan_out()) is not None:
                report.routed += routed
        self.deliver_due(report)
        return report

    # --- fan-out ------------------------------------------------------------------------

    def fan_out(self) -> int | None:
        """Route one batch of events past the cursor; return deliveries created, or None
        when the cursor was already at the newest event (or nothing is declared)."""
        try:
            with self.catalog.session() as session:
                config = load_notifications(session)
                cursor = catalog_outbox.read_cursor(session)
                if config is None or cursor is None:
                    return None
                records = catalog_events.list_events(session, after_id=cursor, limit=self.batch)
                if not records:
                    return None
                owed = self._owed(session, config, records)
                catalog_outbox.add_deliveries(session, owed, at=self.clock.now())
                catalog_outbox.write_cursor(session, records[-1].id, at=self.clock.now())
                return len(owed)
        except IntegrityError:
            # Another process routed the same events (two schedulers for a moment): its
            # deliveries stand, this batch is rolled back whole.
            _logger.warning("events were routed by another process meanwhile")
            return None

    def _owed(
        self, session: Session, config: NotificationsConfig, records: list[EventRecord]
    ) -> list[catalog_outbox.NewDelivery]:
        tags: dict[str, Mapping[str, str]] = {}

        def tags_of(name: str) -> Mapping[str, str]:
            if name not in tags:
                row = session.query(Resource).filter_by(name=name).one_or_none()
                tags[name] = dict(row.tags or {}) if row is not None else {}
            return tags[name]

        owed: list[catalog_outbox.NewDelivery] = []
        for record in records:
            event = _event(record)
            facts = event_facts(event, tags_of)
            for rule, target in matching_targets(config, event, facts):
                owed.append(catalog_outbox.NewDelivery(record.id, rule, target))
        return owed

    # --- delivery -----------------------------------------------------------------------

    def deliver_due(self, report: PassReport | None = None) -> PassReport:
        """Claim and deliver every delivery due now, once each; return the counts."""
        report = report or PassReport()
        with self.catalog.session(readonly=True) as session:
            due = catalog_outbox.due_ids(session, now=self.clock.now(), limit=self.batch)
        for delivery_id in due:
            try:
                self._deliver_one(delivery_id, report)
            except Exception:
                # The catalog failed under us: the claim lapses and the delivery is retried.
                _logger.exception("delivery %s could not be recorded", delivery_id)
        return report

    def _deliver_one(self, delivery_id: int, report: PassReport) -> None:
        now = self.clock.now()
        until = now + timedelta(seconds=self.claim_seconds)
        with self.catalog.session() as session:
            row = catalog_outbox.claim(
                session, delivery_id, worker=self.worker, now=now, until=until
            )
            if row is None:
                return
            attempts, rule_name, target_key = row.attempts, row.rule, row.target
            record = session.get(EventRecord, row.event_id)
            config = load_notifications(session)
            event = _event(record) if record is not None else None
            details = self._details(session, event) if event is not None else {}
        problem, delivery = self._prepare(config, event, rule_name, target_key, details)
        if delivery is not None:
            if now - delivery.event.at > timedelta(
                seconds=delivery.rule.retry.max_event_age_seconds
            ):
                problem = "the event is older than the rule's max_event_age_seconds"
            else:
                problem = self._send(delivery)
        where = (rule_name, target_key)
        self._record(delivery_id, where, delivery, attempts + 1, problem, event, report)

    def _prepare(
        self,
        config: NotificationsConfig | None,
        event: Event | None,
        rule_name: str,
        target_key: str,
        details: Mapping[str, Any],
    ) -> tuple[str | None, Delivery | None]:
        if event is None:
            return "the event was pruned before delivery", None
        rule = next(
            (rule for rule in (config.rules if config else []) if rule.name == rule_name), None
        )
        if config is None or rule is None:
            return f"the rule {rule_name!r} is no longer declared", None
        for index, target in enumerate(rule.targets):
            if target.key(index) == target_key:
                severity = severity_of(rule, event)
                return None, Delivery(event, rule, target, target_key, severity, config, details)
        return f"the rule {rule_name!r} no longer has the target {target_key!r}", None

    def _send(self, delivery: Delivery) -> str | None:
        try:
            self.send(delivery)
        except Exception as error:  # noqa: BLE001 - any failure of a channel is a failed delivery
            message = mask(f"{type(error).__name__}: {error}")
            _logger.warning(
                "delivery of event %s to %s/%s failed: %s",
                delivery.event.id,
                delivery.rule.name,
                delivery.target_key,
                message,
            )
            return message
        return None

    def _record(
        self,
        delivery_id: int,
        where: tuple[str, str],
        delivery: Delivery | None,
        attempt: int,
        problem: str | None,
        event: Event | None,
        report: PassReport,
    ) -> None:
        now = self.clock.now()
        retry = delivery.rule.retry if delivery is not None else None
        permanent = delivery is None or (problem is not None and "older than" in problem)
        with self.catalog.session() as session:
            if problem is None:
                catalog_outbox.finish(
                    session, delivery_id, worker=self.worker, state=catalog_outbox.DELIVERED, at=now
                )
                report.delivered += 1
                return
            if retry is not None and not permanent and attempt < retry.max_attempts:
                delay = retry.interval_seconds * retry.backoff_rate ** (attempt - 1)
                catalog_outbox.finish(
                    session,
                    delivery_id,
                    worker=self.worker,
                    state=catalog_outbox.PENDING,
                    at=now,
                    error=problem,
                    next_attempt_at=now + timedelta(seconds=delay),
                )
                report.retried += 1
                return
            kept = catalog_outbox.finish(
                session,
                delivery_id,
                worker=self.worker,
                state=catalog_outbox.DEAD,
                at=now,
                error=problem,
            )
        report.dead += 1
        if kept and event is not None and event.type != DELIVERY_FAILED:
            payload = DeliveryFailedPayload(
                event_id=event.id or 0,
                event_type=event.type,
                rule=where[0],
                target=where[1],
                attempts=attempt,
                error=problem or "",
            )
            self.bus.publish(DELIVERY_FAILED, str(event.id), payload.model_dump(mode="json"))

    def _details(self, session: Session, event: Event) -> Mapping[str, Any]:
        if not event.type.startswith("backup.run.") or event.type == "backup.run.skipped":
            return {}
        try:
            run = catalog_runs.get_run(session, event.subject)
        except NotFoundError:
            return {}
        return {"run_summary": dict(run.summary or {})}


def _event(record: EventRecord) -> Event:
    return Event(
        type=record.type,
        subject=record.subject,
        at=record.at,
        payload=dict(record.payload or {}),
        id=record.id,
    )
