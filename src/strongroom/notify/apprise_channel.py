"""Every service Apprise speaks (Slack, Teams, ntfy, SNS, SMS gateways …) by URL."""

from __future__ import annotations

import apprise

from strongroom.errors import ServiceUnavailableError


def send(url: str, *, title: str, body: str) -> None:
    """Send one message to the Apprise ``url``.

    Raises ServiceUnavailableError when Apprise does not accept the URL or the service
    did not take the message (the URL, which holds tokens, is never in the message).
    """
    notifier = apprise.Apprise()
    if not notifier.add(url):
        raise ServiceUnavailableError("Apprise does not understand the channel's URL")
    if not notifier.notify(title=title, body=body):
        raise ServiceUnavailableError("the Apprise service did not take the message")
