"""SMTP transport: the one place that talks to the mail server."""

from __future__ import annotations

from email.message import EmailMessage

import aiosmtplib

from cipulse.settings import Settings


def build_message(
    *, sender: str, recipients: str, subject: str, text: str, html: str | None
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipients
    message["Subject"] = subject
    message.set_content(text)
    if html:
        message.add_alternative(html, subtype="html")
    return message


async def send(message: EmailMessage, settings: Settings) -> None:
    security = settings.smtp_security
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    await aiosmtplib.send(
        message,
        hostname=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_username or None,
        password=password if settings.smtp_username else None,
        use_tls=security == "tls",
        start_tls=True
        if security == "starttls"
        else (False if security in ("none", "tls") else None),
        timeout=settings.smtp_timeout_seconds,
    )


def describe_error(exc: BaseException) -> str:
    """A log line for a failed send that never carries the password."""
    text = f"{type(exc).__name__}: {exc}"
    return text.replace("\n", " ")[:500]
