"""The webhook worker: processes stored deliveries after the answer, retrying failures."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from cipulse.db import Database
from cipulse.github.webhooks import decode_payload
from cipulse.live.bus import Bus
from cipulse.models import utcnow
from cipulse.webhooks import repository as inbox
from cipulse.webhooks import service

log = logging.getLogger(__name__)

GITHUB_CHANGED = "github_changed"
IDLE_POLL_SECONDS = 30.0


class WebhookWorker:
    def __init__(self, *, db: Database, bus: Bus, retry_seconds: float = 10.0) -> None:
        self.db = db
        self.bus = bus
        self.retry_seconds = retry_seconds
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def wake(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        while True:
            self._wake.clear()
            try:
                handled = await asyncio.to_thread(self.process_due)
            except Exception:
                log.exception("webhook worker pass failed; retrying later")
                handled = 0
            if handled:
                continue
            timeout = await asyncio.to_thread(self._seconds_until_due)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=timeout)

    def _seconds_until_due(self) -> float:
        with self.db.read() as session:
            due = inbox.next_due(session)
        if due is None:
            return IDLE_POLL_SECONDS
        return min(max((due - utcnow()).total_seconds(), 0.05), IDLE_POLL_SECONDS)

    def process_due(self) -> int:
        """Process what is due now; each delivery in its own transaction."""
        with self.db.write() as uow:
            claimed = [
                (d.id, d.event, d.body, (d.headers or {}).get("content-type"))
                for d in inbox.claim_due(uow.session, now=utcnow())
            ]
        for delivery_id, event, body, content_type in claimed:
            self.process_one(delivery_id, event, body, content_type)
        return len(claimed)

    def process_one(
        self, delivery_id: int, event: str, body: bytes, content_type: str | None
    ) -> None:
        changes: list[dict[str, Any]] = []
        try:
            with self.db.write() as uow:
                now = utcnow()
                payload = decode_payload(body, content_type)
                outcome = service.process(uow.session, event=event, payload=payload, now=now)
                inbox.finish(uow.session, delivery_id, state=outcome.state, now=now)
                changes = outcome.changes
                uow.after_commit(lambda: self._publish(changes))
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            with self.db.write() as uow:
                state = inbox.fail(
                    uow.session, delivery_id, error=error, now=utcnow(), base=self.retry_seconds
                )
            log.warning("webhook delivery %s (%s) failed, %s: %s", delivery_id, event, state, error)

    def _publish(self, changes: list[dict[str, Any]]) -> None:
        for change in changes:
            self.bus.publish(GITHUB_CHANGED, change)
