"""A generic JSON webhook, signed so that the receiver can trust it.

Headers: ``X-Cipulse-Event`` (``alert.broken``, ...), ``X-Cipulse-Delivery`` (stable across
retries: a receiver drops a repeat), ``X-Cipulse-Timestamp`` (Unix seconds) and, with a secret,
``X-Cipulse-Signature-256: sha256=<hex>``, the HMAC-SHA256 of ``<timestamp>.<body>``, so a
captured request cannot be replayed later with another timestamp.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import httpx

from cipulse.alerts.channels.base import Message, mask_url, post_json


def payload(message: Message) -> dict[str, Any]:
    return {
        "event": message.kind,
        "alert_id": message.event_id,
        "delivery_id": message.delivery_id,
        "subject": message.subject,
        "text": message.text,
        **{k: v for k, v in message.context.items() if k not in ("links",)},
        "links": [{"label": label, "url": url} for label, url in message.context.get("links", [])],
    }


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class WebhookChannel:
    kind = "webhook"

    def __init__(self, *, url: str, secret: str | None, client: httpx.AsyncClient) -> None:
        self.url = url
        self.secret = secret
        self.client = client

    def describe(self) -> str:
        signed = "signed" if self.secret else "unsigned"
        return f"JSON webhook {mask_url(self.url)} ({signed})"

    async def send(self, message: Message) -> None:
        body = json.dumps(payload(message), separators=(",", ":")).encode()
        timestamp = str(int(time.time()))
        headers = {
            "User-Agent": "cipulse-alerts",
            "X-Cipulse-Event": f"alert.{message.kind}",
            "X-Cipulse-Delivery": str(message.delivery_id),
            "X-Cipulse-Timestamp": timestamp,
        }
        if self.secret:
            headers["X-Cipulse-Signature-256"] = signature(self.secret, timestamp, body)
        await post_json(self.client, self.url, what="The webhook", content=body, headers=headers)
