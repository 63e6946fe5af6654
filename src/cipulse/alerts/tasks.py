"""The alert worker: evaluates newly finished runs, then sends what the outbox holds.

It wakes every ``CIPULSE_ALERT_EVALUATE_SECONDS``, when a delivery is due, and right after a
commit that stored runs (the ingest nudge and the live bus's change events), so an alert usually
leaves within a second of the run that caused it. Every step is claimed in the database, so
several processes may run it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import httpx
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from cipulse import claims
from cipulse.alerts import checks, evaluate, repository, service
from cipulse.alerts import config as alert_config
from cipulse.alerts.channels import registry
from cipulse.alerts.channels.base import PermanentError, TemporaryError
from cipulse.alerts.messages import render
from cipulse.db import Database
from cipulse.live.bus import Bus
from cipulse.models import AlertChannel, AlertDelivery, AlertEvent, utcnow
from cipulse.settings import Settings

log = logging.getLogger(__name__)

HTTP_TIMEOUT_SECONDS = 15.0
SHUTDOWN_GRACE_SECONDS = 10.0
WAKE_TOPICS = ("runs_changed", "github_changed")  # live.service and webhooks.tasks publish these
# Woken passes start at most this often: a webhook burst publishes hundreds of changes a
# second, and each pass is a write transaction that would queue behind (and before) them.
MIN_PASS_INTERVAL_SECONDS = 0.5


def _with_error_lines(session: Session, context: dict[str, Any]) -> dict[str, Any]:
    """Fill in first error lines of logs stored since the alert was raised."""
    failing = context.get("failing") or []
    if any(job.get("job_id") and not job.get("error_line") for job in failing):
        context["failing"] = [
            {**job, "error_line": checks.first_error_line(session, job["job_id"])}
            if job.get("job_id") and not job.get("error_line")
            else job
            for job in failing
        ]
    return context


class AlertWorker:
    def __init__(self, *, db: Database, settings: Settings, bus: Bus | None = None) -> None:
        self.db = db
        self.settings = settings
        self.bus = bus
        self.holder = claims.process_id()
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._config_applied = False

    def wake(self) -> None:
        """Thread-safe nudge, called after a commit that may have finished a run."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    def load_config(self) -> bool:
        """Apply the alerts file (or the SMTP defaults). The file was checked with the settings;
        a database that cannot take it yet (not migrated) is retried by each pass of ``run``."""
        cfg = alert_config.configured(self.settings)
        try:
            with self.db.write() as uow:
                alert_config.apply(uow.session, config=cfg, now=utcnow())
        except SQLAlchemyError as exc:
            log.error("alert rules and channels not applied yet: %s", type(exc).__name__)
            self._config_applied = False
            return False
        self._config_applied = True
        return True

    async def run(self) -> None:
        self._loop = loop = asyncio.get_running_loop()
        listeners = [asyncio.create_task(self._listen(t)) for t in WAKE_TOPICS if self.bus]
        try:
            async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_SECONDS) as client:
                while True:
                    self._wake.clear()
                    started = loop.time()
                    try:
                        if not self._config_applied:
                            await asyncio.to_thread(self.load_config)
                        await asyncio.to_thread(self.evaluate_once)
                        await self.send_due(client)
                    except Exception:
                        log.exception("alert worker pass failed; retrying later")
                    timeout = await asyncio.to_thread(self._seconds_until_due)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout=timeout)
                    await asyncio.sleep(started + MIN_PASS_INTERVAL_SECONDS - loop.time())
        finally:
            for task in listeners:
                task.cancel()

    async def _listen(self, topic: str) -> None:
        assert self.bus is not None
        queue = self.bus.subscribe(topic)
        try:
            while True:
                await queue.get()
                self._wake.set()
        finally:
            self.bus.unsubscribe(topic, queue)

    def _seconds_until_due(self) -> float:
        idle = self.settings.alert_evaluate_seconds
        with self.db.read() as session:
            due = repository.next_due(session)
        if due is None:
            return idle
        return min(max((due - utcnow()).total_seconds(), 0.05), idle)

    def evaluate_once(self) -> evaluate.Result:
        """Evaluate until no new run is left (each batch is its own transaction)."""
        total = evaluate.Result()
        while True:
            with self.db.write() as uow:
                result = evaluate.evaluate(
                    uow.session, settings=self.settings, now=utcnow(), holder=self.holder
                )
            total.runs += result.runs
            total.events += result.events
            if result.runs < evaluate.BATCH:
                break
        if total.events:
            log.info("alerts: %d new from %d runs", total.events, total.runs)
        return total

    def _claim(self) -> list[dict[str, Any]]:
        with self.db.write() as uow:
            session = uow.session
            ids = repository.claim_due(session, now=utcnow(), holder=self.holder)
            out = []
            for delivery_id in ids:
                delivery = session.get_one(AlertDelivery, delivery_id)
                event = session.get_one(AlertEvent, delivery.event_id)
                channel = session.get_one(AlertChannel, delivery.channel_id)
                out.append(
                    {
                        "delivery_id": delivery.id,
                        "event_id": event.id,
                        "kind": event.kind,
                        "title": event.title,
                        "context": _with_error_lines(session, dict(event.context)),
                        "channel": channel.name,
                        "channel_kind": channel.kind,
                        "config": dict(channel.config),
                    }
                )
            return out

    async def send_due(self, client: httpx.AsyncClient | None = None) -> int:
        if client is None:
            async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_SECONDS) as own:
                return await self.send_due(own)
        sent = 0
        while claimed := await asyncio.to_thread(self._claim):
            for item in claimed:
                sending = asyncio.ensure_future(self._send_one(item, client))
                try:
                    sent += await asyncio.shield(sending)
                except asyncio.CancelledError:
                    # Shutting down: let the message on the wire finish and its outcome be
                    # stored, or a restart would send it a second time.
                    with contextlib.suppress(Exception, asyncio.CancelledError):
                        await asyncio.wait_for(sending, timeout=SHUTDOWN_GRACE_SECONDS)
                    raise
        return sent

    async def _send_one(self, item: dict[str, Any], client: httpx.AsyncClient) -> int:
        delivery_id = item["delivery_id"]
        name = item["channel"]
        try:
            channel = registry.build(
                item["channel_kind"], item["config"], settings=self.settings, client=client
            )
            message = render(
                event_id=item["event_id"],
                delivery_id=delivery_id,
                kind=item["kind"],
                title=item["title"],
                context=item["context"],
            )
            await channel.send(message)
        except PermanentError as exc:
            await asyncio.to_thread(self._finish, delivery_id, "permanent", str(exc), exc.disable)
            log.warning("alert %s to %s failed for good: %s", delivery_id, name, exc)
            return 0
        except TemporaryError as exc:
            await asyncio.to_thread(
                self._finish, delivery_id, "temporary", str(exc), exc.retry_after
            )
            log.warning("alert %s to %s not sent, will retry: %s", delivery_id, name, exc)
            return 0
        except Exception as exc:  # a bug or an unexpected answer: retry, never lose it
            error = f"{type(exc).__name__}: {exc}"[:500]
            await asyncio.to_thread(self._finish, delivery_id, "temporary", error, None)
            log.exception("alert %s to %s failed unexpectedly", delivery_id, name)
            return 0
        await asyncio.to_thread(self._finish, delivery_id, "sent", "", None)
        log.info("alert %s sent to %s", delivery_id, name)
        return 1

    def _finish(self, delivery_id: int, outcome: str, error: str, extra: Any) -> None:
        now = utcnow()
        with self.db.write() as uow:
            if outcome == "sent":
                service.mark_sent(uow.session, delivery_id=delivery_id, now=now)
            elif outcome == "permanent":
                service.mark_permanent(
                    uow.session, delivery_id=delivery_id, error=error, disable=bool(extra), now=now
                )
            else:
                service.mark_temporary(
                    uow.session,
                    delivery_id=delivery_id,
                    error=error,
                    now=now,
                    settings=self.settings,
                    retry_after=extra,
                )
