"""The null channel: for development, every delivery succeeds and is only logged."""

from __future__ import annotations

import logging

from cipulse.alerts.channels.base import Message

log = logging.getLogger(__name__)


class NullChannel:
    kind = "null"

    def describe(self) -> str:
        return "nowhere (logged only)"

    async def send(self, message: Message) -> None:
        log.info("null channel: alert %s: %s", message.event_id, message.subject)
