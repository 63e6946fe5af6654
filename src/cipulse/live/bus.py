"""In-process publish/subscribe that any thread may publish to.

Sync request handlers run in a thread pool, so ``publish`` hops onto the event loop with
``call_soon_threadsafe``. Several processes would put PostgreSQL LISTEN/NOTIFY behind the same
interface.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

QUEUE_SIZE = 1000


class Bus:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscribers: dict[str, set[asyncio.Queue[Any]]] = defaultdict(set)

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def subscribe(self, topic: str) -> asyncio.Queue[Any]:
        queue: asyncio.Queue[Any] = asyncio.Queue(QUEUE_SIZE)
        self._subscribers[topic].add(queue)
        return queue

    def unsubscribe(self, topic: str, queue: asyncio.Queue[Any]) -> None:
        self._subscribers[topic].discard(queue)

    def subscriber_count(self, topic: str) -> int:
        return len(self._subscribers[topic])

    def publish(self, topic: str, message: Any) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._deliver(topic, message)
        else:
            loop.call_soon_threadsafe(self._deliver, topic, message)

    def _deliver(self, topic: str, message: Any) -> None:
        for queue in list(self._subscribers[topic]):
            if queue.full():
                # A slow consumer loses its oldest message, never blocks the publisher.
                queue.get_nowait()
            queue.put_nowait(message)
