"""Pure decisions about GitHub's answers: how long to wait before trying again, if at all.

Rules from GitHub's REST docs: honour ``retry-after``; when ``x-ratelimit-remaining`` is 0 wait
for ``x-ratelimit-reset``; a secondary limit without either waits at least a minute, then backs
off exponentially; 5xx and network errors back off exponentially. Every wait is bounded by the
number of tries.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

SECONDARY_MIN_WAIT = 60.0
BACKOFF_BASE = 1.0
BACKOFF_CAP = 300.0


@dataclass(frozen=True)
class RateLimit:
    limit: int | None
    remaining: int | None
    used: int | None
    reset_at: datetime | None
    resource: str | None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> RateLimit | None:
        """Read the ``x-ratelimit-*`` headers (any case); None when they are absent."""
        lower = {k.lower(): v for k, v in headers.items()}

        def number(name: str) -> int | None:
            try:
                return int(lower[name])
            except (KeyError, ValueError):
                return None

        if "x-ratelimit-remaining" not in lower:
            return None
        reset = number("x-ratelimit-reset")
        if reset is not None and reset > 10**11:  # some recordings give milliseconds
            reset //= 1000
        return cls(
            limit=number("x-ratelimit-limit"),
            remaining=number("x-ratelimit-remaining"),
            used=number("x-ratelimit-used"),
            reset_at=datetime.fromtimestamp(reset, UTC) if reset is not None else None,
            resource=lower.get("x-ratelimit-resource"),
        )


@dataclass(frozen=True)
class Verdict:
    """What to do with an answer: ``retry_after`` seconds, or give up (None) with a reason."""

    retry_after: float | None
    reason: str


def backoff(attempt: int, floor: float = BACKOFF_BASE) -> float:
    return float(min(max(floor, BACKOFF_BASE * 2**attempt), BACKOFF_CAP) if attempt else floor)


def is_rate_limited(status: int, headers: Mapping[str, str], message: str) -> bool:
    if status not in (403, 429):
        return False
    lower = {k.lower(): v for k, v in headers.items()}
    return (
        status == 429
        or "retry-after" in lower
        or lower.get("x-ratelimit-remaining") == "0"
        or "rate limit" in message.lower()
    )


def decide(
    status: int, headers: Mapping[str, str], message: str, *, attempt: int, now: datetime
) -> Verdict:
    """How long to wait after a failed answer; ``attempt`` counts earlier tries from 0."""
    lower = {k.lower(): v for k, v in headers.items()}
    if is_rate_limited(status, headers, message):
        if "retry-after" in lower:
            try:
                return Verdict(max(float(lower["retry-after"]), 0.0), "retry-after")
            except ValueError:
                pass
        limit = RateLimit.from_headers(headers)
        if limit and limit.remaining == 0 and limit.reset_at:
            wait = max((limit.reset_at - now).total_seconds(), 0.0) + 1.0
            return Verdict(wait, "primary rate limit exhausted")
        return Verdict(backoff(attempt, SECONDARY_MIN_WAIT), "secondary rate limit")
    if status >= 500:
        return Verdict(backoff(attempt), f"GitHub answered {status}")
    return Verdict(None, f"GitHub answered {status}")
