"""Slack incoming webhooks: a Block Kit message with a plain-text fallback."""

from __future__ import annotations

import json
from typing import Any

import httpx

from cipulse.alerts.channels.base import Message, mask_url, post_json

MAX_JOBS = 10


def payload(message: Message) -> dict[str, Any]:
    ctx = message.context
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": ctx["headline"][:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _escape(ctx["summary"])}},
    ]
    facts = [f"*{_escape(k)}:* {_escape(v)}" for k, v in ctx.get("facts", [])]
    if facts:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(facts)}})
    jobs = []
    for job in ctx.get("failing", [])[:MAX_JOBS]:
        name = _escape(job["name"])
        line = f"• <{job['url']}|{name}>" if job.get("url") else f"• {name}"
        if job.get("error_line"):
            line += f"\n    `{_escape(job['error_line'][:200])}`"
        jobs.append(line)
    if jobs:
        text = "*Failing jobs*\n" + "\n".join(jobs)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    links = [f"<{url}|{_escape(label)}>" for label, url in ctx.get("links", [])]
    if links:
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(links)}]}
        )
    return {"text": message.subject, "blocks": blocks}


def _escape(text: Any) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class SlackChannel:
    kind = "slack"

    def __init__(self, *, url: str, client: httpx.AsyncClient) -> None:
        self.url = url
        self.client = client

    def describe(self) -> str:
        return f"Slack webhook {mask_url(self.url)}"

    async def send(self, message: Message) -> None:
        body = json.dumps(payload(message)).encode()
        await post_json(self.client, self.url, what="Slack", content=body)
