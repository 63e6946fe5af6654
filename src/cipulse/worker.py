"""``cipulse worker``: background work without serving HTTP, and what long-lived processes share.

Design's scale path: web processes verify, store and answer; worker processes, woken by
PostgreSQL NOTIFY, claim the stored webhook deliveries with ``FOR UPDATE SKIP LOCKED``, so any
number of them can run. Each process is named by host, pid and start time in its claims, so the
claims of one that was killed are taken back at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal

from cipulse.context import AppContext
from cipulse.db import Database
from cipulse.live.bus import Bus
from cipulse.settings import Settings
from cipulse.webhooks.tasks import WebhookWorker

log = logging.getLogger(__name__)

# Without NOTIFY (SQLite) a worker in its own process only learns of new deliveries by looking.
SQLITE_POLL_SECONDS = 1.0


def freeze_startup_objects() -> None:
    """Keep the garbage collector off what startup left behind.

    A full collection walks every tracked object: some 170,000 after startup, 65-75 ms during
    which no request is answered. Frozen objects are never walked again.
    """
    gc.collect()
    gc.freeze()


async def freeze_after_startup(ctx: AppContext) -> None:
    """A background job for ``cipulse serve``: it runs once the app has started."""
    freeze_startup_objects()


async def run(settings: Settings) -> None:
    """Process webhook deliveries until cancelled or sent SIGTERM/SIGINT."""
    db = Database(settings.resolved_database_url)
    worker = WebhookWorker(
        db=db,
        bus=Bus(),
        idle_poll_seconds=SQLITE_POLL_SECONDS if db.is_sqlite else 30.0,
        notify_changes=True,
    )
    if db.is_sqlite:
        log.warning(
            "cipulse worker on SQLite: deliveries are found by polling every %.0f s, and the "
            "pages of `cipulse serve` get no live updates from it",
            SQLITE_POLL_SECONDS,
        )
    task = asyncio.create_task(worker.run(), name="webhook-worker")
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, task.cancel)
    freeze_startup_objects()
    log.info("cipulse worker: processing webhook deliveries")
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await asyncio.to_thread(db.dispose)
    log.info("cipulse worker: stopped")
