"""Microsoft Teams incoming webhooks (Workflows or the older connectors): an Adaptive Card."""

from __future__ import annotations

import json
from typing import Any

import httpx

from cipulse.alerts.channels.base import Message, mask_url, post_json

MAX_JOBS = 10
COLOURS = {"bad": "Attention", "good": "Good", "info": "Accent"}


def payload(message: Message) -> dict[str, Any]:
    ctx = message.context
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": ctx["headline"],
            "weight": "Bolder",
            "size": "Medium",
            "wrap": True,
            "color": COLOURS.get(ctx.get("tone", "info"), "Default"),
        },
        {"type": "TextBlock", "text": ctx["summary"], "wrap": True},
    ]
    facts = [{"title": str(k), "value": str(v)} for k, v in ctx.get("facts", [])]
    if facts:
        body.append({"type": "FactSet", "facts": facts})
    for job in ctx.get("failing", [])[:MAX_JOBS]:
        text = f"[{job['name']}]({job['url']})" if job.get("url") else job["name"]
        if job.get("error_line"):
            text += f"  \n`{job['error_line'][:200]}`"
        body.append({"type": "TextBlock", "text": "• " + text, "wrap": True, "spacing": "Small"})
    actions = [
        {"type": "Action.OpenUrl", "title": label, "url": url}
        for label, url in ctx.get("links", [])
    ]
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
        "actions": actions,
    }
    return {
        "type": "message",
        "summary": message.subject,
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
        ],
    }


class TeamsChannel:
    kind = "teams"

    def __init__(self, *, url: str, client: httpx.AsyncClient) -> None:
        self.url = url
        self.client = client

    def describe(self) -> str:
        return f"Teams webhook {mask_url(self.url)}"

    async def send(self, message: Message) -> None:
        body = json.dumps(payload(message)).encode()
        await post_json(self.client, self.url, what="Teams", content=body)
