"""Believable demo runs: the same events a real CI would push, through the same ingest."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from cipulse.ingest.schemas import RunEvent

DEFAULT_PIPELINES = ("build", "unit-tests", "integration-tests", "lint", "deploy-staging")
BRANCHES = ("main", "main", "main", "develop", "feature/login", "fix/flaky-cache")
PEOPLE = ("alice", "bob", "carol", "dependabot[bot]", "dave", "erin")
TYPICAL_SECONDS = {"build": 240, "unit-tests": 420, "integration-tests": 900, "lint": 60}


def _duration(rng: random.Random, pipeline: str) -> float:
    base = TYPICAL_SECONDS.get(pipeline, 300)
    return round(max(5.0, rng.gauss(base, base * 0.25)), 1)


def finished_event(
    rng: random.Random, *, pipeline: str, fail_rate: float, started_at: datetime
) -> RunEvent:
    duration = _duration(rng, pipeline)
    return RunEvent(
        pipeline=pipeline,
        status="failure" if rng.random() < fail_rate else "success",
        started_at=started_at,
        finished_at=started_at + timedelta(seconds=duration),
        duration_sec=duration,
        branch=rng.choice(BRANCHES),
        commit=f"{rng.getrandbits(160):040x}",
        triggered_by=rng.choice(PEOPLE),
    )


def recent_events(
    rng: random.Random,
    *,
    count: int,
    fail_rate: float,
    pipelines: list[str],
    now: datetime,
) -> list[RunEvent]:
    """``count`` finished runs that ended in the last hour, oldest first."""
    events = []
    for _ in range(count):
        pipeline = rng.choice(pipelines)
        duration = _duration(rng, pipeline)
        end = now - timedelta(seconds=rng.uniform(0, 3600))
        event = finished_event(
            rng,
            pipeline=pipeline,
            fail_rate=fail_rate,
            started_at=end - timedelta(seconds=duration),
        )
        events.append(event)
    events.sort(key=lambda e: e.started_at or now)
    return events


def history_events(
    rng: random.Random, *, days: int, runs_per_day: int, pipelines: list[str], now: datetime
) -> list[RunEvent]:
    """A past of ``days`` days with a bad patch in the middle, so the chart has a story."""
    events = []
    for day in range(days, 0, -1):
        fail_rate = 0.35 if days // 3 <= day <= days // 3 + 2 else 0.1
        per_day = max(1, int(rng.gauss(runs_per_day, runs_per_day * 0.2)))
        for _ in range(per_day):
            started = now - timedelta(days=day) + timedelta(seconds=rng.uniform(0, 86400))
            if started >= now - timedelta(minutes=10):
                continue
            events.append(
                finished_event(
                    rng, pipeline=rng.choice(pipelines), fail_rate=fail_rate, started_at=started
                )
            )
    events.sort(key=lambda e: e.started_at or now)
    return events
