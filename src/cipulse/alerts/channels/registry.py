"""Builds the channel object of a stored channel row."""

from __future__ import annotations

from typing import Any

import httpx

from cipulse.alerts.channels.base import Channel
from cipulse.alerts.channels.email import EmailChannel, server_for
from cipulse.alerts.channels.null import NullChannel
from cipulse.alerts.channels.slack import SlackChannel
from cipulse.alerts.channels.teams import TeamsChannel
from cipulse.alerts.channels.webhook import WebhookChannel
from cipulse.settings import Settings


def build(
    kind: str, config: dict[str, Any], *, settings: Settings, client: httpx.AsyncClient
) -> Channel:
    if kind == "email":
        return EmailChannel(
            to=list(config.get("to", [])),
            server=server_for(config, settings),
            base_url=settings.base_url,
        )
    if kind == "slack":
        return SlackChannel(url=config["url"], client=client)
    if kind == "teams":
        return TeamsChannel(url=config["url"], client=client)
    if kind == "webhook":
        return WebhookChannel(url=config["url"], secret=config.get("secret"), client=client)
    if kind == "null":
        return NullChannel()
    raise ValueError(f"unknown channel kind {kind!r}")


def describe(kind: str, config: dict[str, Any], *, settings: Settings) -> str:
    """Where a channel sends, with secrets masked; no client needed."""
    with_client: Any = None
    return build(kind, config, settings=settings, client=with_client).describe()
