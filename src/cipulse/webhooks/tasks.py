"""The webhook worker: processes stored deliveries after the answer, retrying failures.

It runs inside ``cipulse serve`` by default. With ``CIPULSE_WEBHOOK_WORKER_IN_SERVE=false`` the
web process only stores and answers, ``cipulse worker`` processes do the work (woken by
PostgreSQL NOTIFY), and the web process relays their live updates, which they NOTIFY in the same
transaction, onto its own bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from cipulse import db as database
from cipulse.db import Database
from cipulse.github.webhooks import decode_payload
from cipulse.live.bus import Bus
from cipulse.models import utcnow
from cipulse.webhooks import repository as inbox
from cipulse.webhooks import service

log = logging.getLogger(__name__)

GITHUB_CHANGED = "github_changed"
IDLE_POLL_SECONDS = 30.0
CHANGED_CHANNEL = "cipulse_github_changed"  # NOTIFY: a worker changed GitHub state


class WebhookWorker:
    """``relay_only``: this process does not process deliveries (``cipulse worker`` does) and
    only relays their live updates; ``notify_changes``: announce changes through the database
    for the web processes instead of on this process's bus."""

    def __init__(
        self,
        *,
        db: Database,
        bus: Bus,
        retry_seconds: float = 10.0,
        idle_poll_seconds: float = IDLE_POLL_SECONDS,
        relay_only: bool = False,
        notify_changes: bool = False,
    ) -> None:
        self.db = db
        self.bus = bus
        self.retry_seconds = retry_seconds
        self.idle_poll_seconds = idle_poll_seconds
        self.relay_only = relay_only
        self.notify_changes = notify_changes and not db.is_sqlite
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def wake(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self.relay_only:
            await self._relay()
            return
        listener = None
        if not self.db.is_sqlite:
            listener = asyncio.create_task(
                database.listen(
                    self.db.url, {inbox.STORED_CHANNEL: lambda _: self.wake()}, on_connect=self.wake
                ),
                name="webhook-worker-listen",
            )
        try:
            await self._work()
        finally:
            if listener is not None:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener

    async def _relay(self) -> None:
        if self.db.is_sqlite:
            log.warning(
                "webhook deliveries are processed by `cipulse worker`; on SQLite its live "
                "updates do not reach this process's pages (use PostgreSQL)"
            )
            await asyncio.Event().wait()
        await database.listen(self.db.url, {CHANGED_CHANNEL: self._relay_one})

    def _relay_one(self, payload: str) -> None:
        try:
            change = json.loads(payload)
        except ValueError:
            return
        self.bus.publish(GITHUB_CHANGED, change)

    async def _work(self) -> None:
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
            return self.idle_poll_seconds
        return min(max((due - utcnow()).total_seconds(), 0.05), self.idle_poll_seconds)

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
                if self.notify_changes:
                    for change in changes:
                        database.notify(uow.session, CHANGED_CHANNEL, _fit(change))
                else:
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


def _fit(change: dict[str, Any]) -> str:
    """The change as a NOTIFY payload; a job with too many steps to fit goes without them."""
    text = json.dumps(change, default=str)
    if len(text.encode()) > database.NOTIFY_LIMIT and "steps" in change:
        text = json.dumps({**change, "steps": []}, default=str)
    return text
