"""Pure decisions of the alert rules: what counts as bad, what the newest outcome is, and the
numbers behind thresholds. No database here, so each rule is easy to test on its own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

BAD = frozenset({"failure", "timed_out", "startup_failure"})
GOOD = frozenset({"success", "neutral"})
Outcome = Literal["good", "bad"]
Change = Literal["broken", "fixed"]


def outcome(conclusion: str | None) -> Outcome | None:
    """As docs/metrics.md counts runs: cancelled, skipped and the like say nothing."""
    if conclusion in BAD:
        return "bad"
    if conclusion in GOOD:
        return "good"
    return None


def pipeline_outcome(status: str) -> Outcome | None:
    return {"failure": "bad", "success": "good"}.get(status)  # type: ignore[return-value]


def remember_latest(
    detail: dict[str, Any], key: str, order: list[Any], result: Outcome, info: dict[str, Any]
) -> bool:
    """Keep the newest outcome per ``key`` (a workflow, a pipeline); an older run that arrives
    late changes nothing. ``order`` compares as a list: [ISO time, run id, attempt]."""
    latest: dict[str, Any] = detail.setdefault("latest", {})
    kept = latest.get(key)
    if kept is not None and list(kept["order"]) >= list(order):
        return False
    latest[key] = {"order": list(order), "outcome": result, **info}
    return True


def failing(detail: dict[str, Any]) -> list[dict[str, Any]]:
    """The remembered entries whose newest outcome is bad, oldest first."""
    entries = [v for v in detail.get("latest", {}).values() if v["outcome"] == "bad"]
    return sorted(entries, key=lambda v: list(v["order"]))


def change(status: str, now_bad: bool) -> Change | None:
    """A transition, or None: alerts fire on changes, not on every bad run."""
    if now_bad and status != "bad":
        return "broken"
    if not now_bad and status == "bad":
        return "fixed"
    return None


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100): always a value that was measured."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def regression(
    previous: Sequence[float], current: Sequence[float], *, q: float, min_runs: int
) -> tuple[float, float, float] | None:
    """(previous p, current p, change in %) when both periods have enough runs."""
    if len(previous) < min_runs or len(current) < min_runs:
        return None
    before = percentile(previous, q)
    now = percentile(current, q)
    if before is None or now is None or before <= 0:
        return None
    return before, now, (now - before) / before * 100


def failure_rate(results: Sequence[Outcome]) -> float:
    """Percent of bad results, as design A's ``failureRate``."""
    if not results:
        return 0.0
    return 100 * sum(1 for r in results if r == "bad") / len(results)


def branch_matches(wanted: Sequence[str], branch: str | None, default: Sequence[str]) -> bool:
    """``wanted`` empty: the repository's default branch(es); ``*``: every branch."""
    if branch is None:
        return False
    if "*" in wanted:
        return True
    return branch in (wanted or default)


def name_matches(wanted: Sequence[str], name: str | None) -> bool:
    if not wanted:
        return True
    lowered = {w.lower() for w in wanted}
    return (name or "").lower() in lowered
