"""The daemon's event delivery: the outbox wired to channels, webhooks and follow-up jobs.

:func:`open_outbox` builds the :class:`~strongroom.engine.outbox.Outbox` of a context
with one sender that hands each delivery to its target: a named channel
(``notify/channels.py``), an inline webhook, or a follow-up job
(``services/jobs/follow_up.py``).
"""

from __future__ import annotations

from strongroom.engine.events import EventBus, event_document
from strongroom.engine.outbox import Delivery, Outbox, Sender
from strongroom.notify.channels import ChannelSender, send_webhook
from strongroom.services.context import AppContext
from strongroom.services.jobs.follow_up import FollowUpService


def event_sender(context: AppContext) -> Sender:
    """Return the sender delivering one event to one rule target."""
    channels = ChannelSender(context.catalog, context.now)

    def send(delivery: Delivery) -> None:
        target, event = delivery.target, delivery.event
        if target.start_job is not None:
            FollowUpService(context).start(
                target.start_job, event.type, event.subject, event.payload
            )
        elif target.webhook is not None:
            send_webhook(target.webhook, event_document(event))
        elif target.channel is not None:
            channels.send(
                target.channel,
                delivery.config.channels[target.channel],
                event_document(event),
                rule=delivery.rule.name,
                severity=delivery.severity,
                details=delivery.details,
            )

    return send


def open_outbox(context: AppContext, bus: EventBus) -> Outbox:
    """Return the outbox of ``context``'s catalog, publishing ``delivery.failed`` on ``bus``."""
    return Outbox(context.catalog, bus, context.clock, event_sender(context))
