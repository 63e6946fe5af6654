"""Alert messages rendered from templates (``web/templates/mail/``): HTML and plain text.

An alert stores its ``context`` (what broke, since when, commit, author, failing jobs, links)
when it is raised; the message is rendered from it when sent, so a retry says the same thing.
Chat channels build their own layout from the same context (``channels/slack.py``, ...).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from cipulse.alerts.channels.base import Message

MAIL_TEMPLATES = Path(__file__).resolve().parent.parent / "web" / "templates" / "mail"

_env = Environment(
    loader=FileSystemLoader(MAIL_TEMPLATES),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


def span(seconds: float | None) -> str:
    """``2 h 5 min``: how long something was broken, for people."""
    if seconds is None:
        return "unknown"
    whole = int(max(seconds, 0))
    if whole < 60:
        return f"{whole} s"
    minutes = whole // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def when(iso: str | None) -> str:
    if not iso:
        return "unknown"
    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


_env.filters.update(span=span, when=when, format_label=lambda label: str(label).ljust(14))


def render(
    *, event_id: int, delivery_id: int, kind: str, title: str, context: dict[str, Any]
) -> Message:
    values = {"title": title, "kind": kind, **_defaults(context)}
    return Message(
        event_id=event_id,
        delivery_id=delivery_id,
        kind=kind,
        subject=title,
        text=_env.get_template("alert.txt").render(values),
        html=_env.get_template("alert.html").render(values),
        context={"kind": kind, **values},
    )


def _defaults(context: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "headline": "",
        "summary": "",
        "tone": "info",
        "facts": [],
        "failing": [],
        "links": [],
        "note": None,
        "rule": "test",
        "subject": "",
    }
    out.update(context)
    return out
