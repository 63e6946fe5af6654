"""Fold bursts of ingests into ``metrics_update`` messages for the WebSocket clients."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from cipulse.analytics import service as analytics
from cipulse.db import Database
from cipulse.live.bus import Bus

log = logging.getLogger(__name__)

RUNS_CHANGED = "runs_changed"
METRICS_UPDATE = "metrics_update"


def metrics_topic(minutes: int) -> str:
    return f"{METRICS_UPDATE}:{minutes}"


class MetricsBroadcaster:
    """One summary per distinct window per burst, however many clients and ingests."""

    def __init__(self, *, db: Database, bus: Bus, min_interval_ms: int) -> None:
        self.db = db
        self.bus = bus
        self.min_interval = min_interval_ms / 1000
        self.windows: dict[int, int] = {}

    def add_client(self, minutes: int) -> asyncio.Queue[Any]:
        self.windows[minutes] = self.windows.get(minutes, 0) + 1
        return self.bus.subscribe(metrics_topic(minutes))

    def remove_client(self, minutes: int, queue: asyncio.Queue[Any]) -> None:
        self.bus.unsubscribe(metrics_topic(minutes), queue)
        left = self.windows.get(minutes, 1) - 1
        if left <= 0:
            self.windows.pop(minutes, None)
        else:
            self.windows[minutes] = left

    def message(self, minutes: int) -> dict[str, Any]:
        with self.db.read() as session:
            summary = analytics.summary(session, minutes=minutes)
        return {"type": METRICS_UPDATE, "payload": summary.model_dump(mode="json")}

    async def run(self) -> None:
        changes = self.bus.subscribe(RUNS_CHANGED)
        try:
            while True:
                await changes.get()
                while not changes.empty():
                    changes.get_nowait()
                for minutes in list(self.windows):
                    try:
                        message = await asyncio.to_thread(self.message, minutes)
                    except Exception:
                        log.exception("could not compute the live summary")
                        continue
                    self.bus.publish(metrics_topic(minutes), message)
                if self.min_interval:
                    await asyncio.sleep(self.min_interval)
        finally:
            self.bus.unsubscribe(RUNS_CHANGED, changes)
