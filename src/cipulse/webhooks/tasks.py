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
import math
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from cipulse import db as database
from cipulse.db import Database
from cipulse.github.webhooks import Delivery, decode_payload
from cipulse.live.bus import Bus
from cipulse.models import utcnow
from cipulse.webhooks import repository as inbox
from cipulse.webhooks import service

log = logging.getLogger(__name__)

GITHUB_CHANGED = "github_changed"
BATCH_SECONDS = 0.2  # the longest a batch of deliveries holds its transaction open
STAND_BACK_SECONDS = 0.05  # the longest the worker waits for answers in progress, each time
IDLE_POLL_SECONDS = 30.0
CHANGED_CHANNEL = "cipulse_github_changed"  # NOTIFY: a worker changed GitHub state


@dataclass(frozen=True)
class _Claimed:
    """A claimed delivery, its body already decoded (or why it could not be)."""

    id: int
    event: str
    payload: dict[str, Any] | None
    error: Exception | None = None


def _decoded(delivery_id: int, event: str, body: bytes, content_type: str | None) -> _Claimed:
    try:
        return _Claimed(delivery_id, event, decode_payload(body, content_type))
    except Exception as exc:
        return _Claimed(delivery_id, event, None, exc)


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
        self._acks = 0  # acknowledgements being answered in this process (event loop only)
        self._no_acks = threading.Event()
        self._no_acks.set()
        self._last_ack = -math.inf

    @contextlib.contextmanager
    def acknowledging(self) -> Iterator[None]:
        """Around the answer to a delivery: the worker of this process stands back meanwhile.

        The worker and the answers share one GIL, and Python hands it over only every few
        milliseconds; a worker that pauses between deliveries while a delivery is being
        answered keeps that answer from waiting on it.
        """
        self._acks += 1
        self._no_acks.clear()
        try:
            yield
        finally:
            self._acks -= 1
            self._last_ack = time.monotonic()
            if self._acks == 0:
                self._no_acks.set()

    def answered_within(self, seconds: float) -> bool:
        """Whether this process answered a delivery lately: a burst may be under way."""
        return self._acks > 0 or time.monotonic() - self._last_ack < seconds

    def _stand_back(self) -> None:
        """Wait, a little at most, until no delivery is being answered."""
        self._no_acks.wait(STAND_BACK_SECONDS)

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
        """Process what is due now, in batches that each commit once."""
        with self.db.write() as uow:
            raw = [
                (d.id, d.event, d.body, (d.headers or {}).get("content-type"))
                for d in inbox.claim_due(uow.session, now=utcnow())
            ]
        # Decoded before the batches' transactions, which on SQLite hold the one write lock.
        claimed = [_decoded(*fields) for fields in raw]
        done = 0
        while done < len(claimed):
            self._stand_back()
            done += self._process_batch(claimed[done:])
        return len(claimed)

    def _process_batch(self, claimed: list[_Claimed]) -> int:
        """Process from the front of ``claimed`` in one transaction; answers how many it took.

        One commit per batch instead of one per delivery is what lets the worker keep up. The
        batch ends early after ``BATCH_SECONDS``, so that live updates are not held back, or as
        soon as another writer of this process (an acknowledgement) waits for SQLite's lock. If
        any delivery fails, the batch is undone and its deliveries are processed one per
        transaction, so that only the failing one is marked failed.
        """
        changes: list[dict[str, Any]] = []
        finished: dict[str, list[int]] = {}
        started = time.monotonic()
        taken = 0
        try:
            with self.db.write() as uow:
                for item in claimed:
                    taken += 1
                    now = utcnow()
                    if item.payload is None:
                        raise item.error or ValueError("no payload")
                    outcome = service.process(
                        uow.session, event=item.event, payload=item.payload, now=now
                    )
                    finished.setdefault(outcome.state, []).append(item.id)
                    changes.extend(outcome.changes)
                    if (
                        self._acks
                        or self.db.writers_waiting()
                        or time.monotonic() - started > BATCH_SECONDS
                    ):
                        break
                for state, ids in finished.items():
                    inbox.finish(uow.session, ids, state=state, now=utcnow())
                if self.notify_changes:
                    for change in changes:
                        database.notify(uow.session, CHANGED_CHANNEL, _fit(change))
                else:
                    uow.after_commit(lambda: self._publish(changes))
        except Exception as exc:
            if taken == 1:
                self._record_failure(claimed[0], exc)
                return 1
            return sum(self._process_batch([item]) for item in claimed[:taken])
        return taken

    def _record_failure(self, item: _Claimed, exc: Exception) -> None:
        """A delivery whose own transaction could not commit: count the attempt on its own."""
        error = f"{type(exc).__name__}: {exc}"
        with self.db.write() as uow:
            state = inbox.fail(
                uow.session, item.id, error=error, now=utcnow(), base=self.retry_seconds
            )
        log.warning("webhook delivery %s (%s) failed, %s: %s", item.id, item.event, state, error)

    def _publish(self, changes: list[dict[str, Any]]) -> None:
        for change in changes:
            self.bus.publish(GITHUB_CHANGED, change)


def _fit(change: dict[str, Any]) -> str:
    """The change as a NOTIFY payload; a job with too many steps to fit goes without them."""
    text = json.dumps(change, default=str)
    if len(text.encode()) > database.NOTIFY_LIMIT and "steps" in change:
        text = json.dumps({**change, "steps": []}, default=str)
    return text


# -- the inbox writer: acknowledgements stored many to a transaction -----------------------------

INBOX_BATCH = 200  # deliveries stored in one transaction at most


@dataclass(frozen=True)
class _Pending:
    delivery: Delivery
    body: bytes
    loop: asyncio.AbstractEventLoop
    answer: asyncio.Future[int | None]


class InboxWriter:
    """Stores received deliveries for ``POST /webhooks/github``, many per transaction.

    Every request still waits for the commit that stores its delivery before it answers, so an
    acknowledged delivery is never lost; but under a burst the deliveries that arrived while one
    transaction ran share the next one (group commit), so that a burst costs a few commits and
    a few takes of SQLite's lock instead of one per delivery. ``on_stored`` runs after a commit
    that stored something new (it wakes the worker); ``announce`` also NOTIFYs the
    ``cipulse worker`` processes in that transaction.
    """

    def __init__(
        self, *, db: Database, on_stored: Callable[[], None], announce: bool = False
    ) -> None:
        self.db = db
        self.on_stored = on_stored
        self.announce = announce
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()

    async def store(self, delivery: Delivery, body: bytes) -> int | None:
        """The stored row's id, or None for a delivery this hook sent before (a duplicate)."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[int | None] = loop.create_future()
        self._ensure_started()
        self._queue.put(_Pending(delivery, body, loop, answer))
        return await answer

    def close(self, timeout: float = 10.0) -> None:
        """Store what is queued, then stop the thread."""
        thread = self._thread
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout)

    def _ensure_started(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._start:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="webhook-inbox-writer", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < INBOX_BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True
                    break
                batch.append(more)
            try:
                self._write(batch)
            except Exception:  # never leave the thread, or every later answer would hang
                log.exception("storing %d webhook deliveries failed", len(batch))

    def _write(self, batch: list[_Pending]) -> None:
        try:
            with self.db.write() as uow:
                now = utcnow()
                ids = [inbox.store(uow.session, p.delivery, p.body, now=now) for p in batch]
                if self.announce and any(i is not None for i in ids):
                    inbox.announce(uow.session)
        except Exception as exc:
            if len(batch) > 1:  # store the others; only the one that fails gets the error
                for pending in batch:
                    self._write([pending])
                return
            _answer(batch[0], error=exc)
            return
        for pending, stored_id in zip(batch, ids, strict=True):
            _answer(pending, stored_id=stored_id)
        if any(i is not None for i in ids):
            self.on_stored()


def _answer(
    pending: _Pending, *, stored_id: int | None = None, error: Exception | None = None
) -> None:
    def settle() -> None:
        if pending.answer.done():  # the request was cancelled (its client went away)
            return
        if error is not None:
            pending.answer.set_exception(error)
        else:
            pending.answer.set_result(stored_id)

    if not pending.loop.is_closed():
        pending.loop.call_soon_threadsafe(settle)
