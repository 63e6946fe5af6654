"""Email over SMTP with aiosmtplib: STARTTLS or implicit TLS, and a login when configured.

The server comes from ``CIPULSE_SMTP_*`` unless the channel names its own. Refused recipients,
a refused sender or a refused login are permanent (the channel is switched off until fixed); a
server that is down, slow or answers 4xx is tried again later.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from urllib.parse import urlsplit

import aiosmtplib

from cipulse.alerts.channels.base import Message, PermanentError, TemporaryError
from cipulse.settings import Settings


@dataclass(frozen=True)
class SmtpServer:
    host: str | None
    port: int
    security: str
    username: str | None
    password: str | None
    sender: str
    timeout: float


def server_for(config: dict[str, object], settings: Settings) -> SmtpServer:
    """The channel's own server settings, falling back to ``CIPULSE_SMTP_*`` for each."""
    own_host = config.get("host")
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    return SmtpServer(
        host=str(own_host) if own_host else settings.smtp_host,
        port=int(str(config.get("port") or (settings.smtp_port if not own_host else 587))),
        security=str(config.get("security") or settings.smtp_security),
        username=str(config["username"]) if config.get("username") else settings.smtp_username,
        password=str(config["password"]) if config.get("password") else password,
        sender=str(config.get("from") or settings.smtp_from),
        timeout=settings.smtp_timeout_seconds,
    )


def build_message(
    message: Message, *, sender: str, recipients: list[str], domain: str
) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = ", ".join(recipients)
    mail["Subject"] = message.subject
    mail["Date"] = formatdate(usegmt=True)
    # The same id on a repeated send, so a mail client shows a duplicate once.
    mail["Message-ID"] = f"<alert-{message.event_id}.{message.delivery_id}@{domain}>"
    mail.set_content(message.text)
    if message.html:
        mail.add_alternative(message.html, subtype="html")
    return mail


def describe_error(exc: BaseException) -> str:
    """One line that never carries the password."""
    text = f"{type(exc).__name__}: {exc}"
    return text.replace("\n", " ")[:500]


class EmailChannel:
    kind = "email"

    def __init__(self, *, to: list[str], server: SmtpServer, base_url: str) -> None:
        self.to = to
        self.server = server
        self.domain = urlsplit(base_url).hostname or "cipulse.local"

    def describe(self) -> str:
        via = self.server.host or "no SMTP server (CIPULSE_SMTP_HOST unset)"
        return f"email to {', '.join(self.to)} via {via}"

    async def send(self, message: Message) -> None:
        server = self.server
        if not server.host:
            raise PermanentError("no SMTP server: set CIPULSE_SMTP_HOST or the channel's host")
        mail = build_message(message, sender=server.sender, recipients=self.to, domain=self.domain)
        security = server.security
        client = aiosmtplib.SMTP(
            hostname=server.host,
            port=server.port,
            username=server.username or None,
            password=server.password if server.username else None,
            use_tls=security == "tls",
            start_tls=True
            if security == "starttls"
            else (False if security in ("none", "tls") else None),
            timeout=server.timeout,
        )
        try:
            async with client:
                await client.send_message(mail)
        except (
            aiosmtplib.SMTPRecipientsRefused,
            aiosmtplib.SMTPSenderRefused,
            aiosmtplib.SMTPAuthenticationError,
        ) as exc:
            raise PermanentError(describe_error(exc)) from None
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code >= 500:
                raise PermanentError(describe_error(exc)) from None
            raise TemporaryError(describe_error(exc)) from None
        except (
            aiosmtplib.SMTPConnectError,
            aiosmtplib.SMTPServerDisconnected,
            aiosmtplib.SMTPTimeoutError,
            OSError,
            TimeoutError,
        ) as exc:
            raise TemporaryError(describe_error(exc)) from None
        except aiosmtplib.SMTPException as exc:
            # The server lacks what the settings ask for (STARTTLS, AUTH): retrying won't help.
            raise PermanentError(describe_error(exc)) from None
        finally:
            client.close()  # also when the login or STARTTLS failed half-way
