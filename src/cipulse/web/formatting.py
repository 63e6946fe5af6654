"""How the dashboard writes numbers and times for people.

Pure functions, used as Jinja filters for the first paint. ``static/dashboard.js`` writes the same
values when live updates arrive, so a change here must be mirrored there (the browser test compares
the two on the same page).
"""

from __future__ import annotations

from datetime import UTC, datetime


def duration(seconds: float | None) -> str:
    """``6m 12s``; sub-10-second runs keep a decimal because they are usually cached steps."""
    if seconds is None:
        return "—"
    if seconds < 10:
        return f"{seconds:.1f}s".replace(".0s", "s")
    whole = int(seconds + 0.5)  # half up, like Math.round in the browser
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m {whole % 60}s"
    if whole < 86400:
        return f"{whole // 3600}h {whole % 3600 // 60}m"
    return f"{whole // 86400}d {whole % 86400 // 3600}h"


def relative(moment: datetime | None, now: datetime) -> str:
    """``5 min ago``, rounded down; past a month a date reads better than a count of days."""
    if moment is None:
        return "—"
    seconds = (now - moment).total_seconds()
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    days = int(seconds // 86400)
    if days <= 30:
        return "yesterday" if days == 1 else f"{days} days ago"
    return moment.astimezone(UTC).strftime("%Y-%m-%d")


def utc_title(moment: datetime | None) -> str:
    """The exact time, for a tooltip: relative times are friendly but not precise."""
    if moment is None:
        return ""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def iso(moment: datetime | None) -> str:
    """Machine-readable time for ``<time datetime>``, which the refresh script parses."""
    if moment is None:
        return ""
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def percent(rate: float | None) -> str:
    """``87.5%``; ``100%`` rather than ``100.0%``."""
    if rate is None:
        return "—"
    text = f"{rate:.1f}"
    return f"{text.removesuffix('.0')}%"


def short_commit(sha: str | None) -> str:
    return sha[:7] if sha else "—"


def count(value: int | None) -> str:
    """``4,870``: counts of requests and runs read better with a thousands separator."""
    return "—" if value is None else f"{value:,}"


def utc_clock(moment: datetime | None) -> str:
    """``13:05 UTC``, for a reset time within the next hour or so."""
    if moment is None:
        return "—"
    return moment.astimezone(UTC).strftime("%H:%M UTC")
