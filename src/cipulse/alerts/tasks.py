"""The mail worker: sends what the outbox holds, retrying with backoff, after each commit."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from cipulse.alerts import mailer
from cipulse.alerts import service as alerts
from cipulse.db import Database
from cipulse.models import utcnow
from cipulse.settings import Settings

log = logging.getLogger(__name__)

IDLE_POLL_SECONDS = 30.0


class MailWorker:
    def __init__(self, *, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def wake(self) -> None:
        """Thread-safe nudge, called after a commit that added mail."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        while True:
            try:
                await self.send_due()
            except Exception:
                log.exception("mail worker pass failed; retrying later")
            timeout = await asyncio.to_thread(self._seconds_until_due)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=timeout)

    def _seconds_until_due(self) -> float:
        with self.db.read() as session:
            due = alerts.next_due(session)
        if due is None:
            return IDLE_POLL_SECONDS
        return min(max((due - utcnow()).total_seconds(), 0.05), IDLE_POLL_SECONDS)

    def _claim(self) -> list[tuple[int, str, str, str, str | None]]:
        with self.db.write() as uow:
            mails = alerts.claim_due(uow.session, now=utcnow())
            return [(m.id, m.recipients, m.subject, m.body_text, m.body_html) for m in mails]

    async def send_due(self) -> int:
        sent = 0
        for mail_id, recipients, subject, text, html in await asyncio.to_thread(self._claim):
            message = mailer.build_message(
                sender=self.settings.smtp_from,
                recipients=recipients,
                subject=subject,
                text=text,
                html=html,
            )
            try:
                await mailer.send(message, self.settings)
            except Exception as exc:
                error = mailer.describe_error(exc)
                state = await asyncio.to_thread(self._failed, mail_id, error)
                log.warning("email %s not sent (%s): %s", mail_id, state, error)
                continue
            await asyncio.to_thread(self._sent, mail_id)
            sent += 1
            log.info("email %s sent to %s", mail_id, recipients)
        return sent

    def _sent(self, mail_id: int) -> None:
        with self.db.write() as uow:
            alerts.mark_sent(uow.session, mail_id=mail_id, now=utcnow())

    def _failed(self, mail_id: int, error: str) -> str:
        with self.db.write() as uow:
            mail = alerts.mark_failed(
                uow.session, mail_id=mail_id, error=error, now=utcnow(), settings=self.settings
            )
            if mail.state == "failed":
                return f"given up after {mail.attempts} attempts"
            return f"attempt {mail.attempts}, next try at {mail.next_attempt_at:%H:%M:%S} UTC"
