"""strongroom's own email: an HTML part with a plain-text fallback, sent over SMTP."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Final, Literal

from strongroom.errors import AccessDeniedError, NetworkError

TIMEOUT_SECONDS: Final = 30.0


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to send: host, port, security, login, sender, recipients."""

    host: str
    port: int
    security: Literal["starttls", "tls", "none"]
    sender: str
    recipients: Sequence[str]
    username: str | None = None
    password: str | None = None


def build_message(settings: SmtpSettings, *, subject: str, text: str, html: str) -> EmailMessage:
    """Return the email: ``text`` as the plain part, ``html`` as the alternative."""
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = settings.sender
    message["To"] = ", ".join(settings.recipients)
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


def send(settings: SmtpSettings, message: EmailMessage) -> None:
    """Send ``message``; raises NetworkError (retryable) or AccessDeniedError (login refused)."""
    try:
        if settings.security == "tls":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                settings.host,
                settings.port,
                timeout=TIMEOUT_SECONDS,
                context=ssl.create_default_context(),
            )
        else:
            client = smtplib.SMTP(settings.host, settings.port, timeout=TIMEOUT_SECONDS)
        with client:
            if settings.security == "starttls":
                client.starttls(context=ssl.create_default_context())
            if settings.username is not None and settings.password is not None:
                client.login(settings.username, settings.password)
            client.send_message(message)
    except smtplib.SMTPAuthenticationError as error:
        raise AccessDeniedError(
            f"the SMTP server {settings.host} refused the login",
            hint="Check the channel's username and password reference.",
        ) from error
    except (smtplib.SMTPException, OSError) as error:
        raise NetworkError(
            f"could not send email through {settings.host}:{settings.port}: {type(error).__name__}"
        ) from error
