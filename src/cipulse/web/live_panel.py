"""The dashboard's "Running now" panel: GitHub runs in progress, one card per run.

The first paint renders ``activity.service.in_progress``; ``static/live.js`` re-renders a card from
each ``pipeline-update`` and ``job-update`` of ``GET /api/stream``. The wording, tones and the
"current step" rule here are mirrored there, and the browser test compares a card updated live
with the same card rendered by the server after a reload.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cipulse.activity.schemas import JobOut, RunInProgress, StepOut

ACTIVE = ("requested", "pending", "queued", "waiting", "in_progress")
# A finished job or run is toned by its conclusion; anything not listed reads as neutral.
TONES = {
    "success": "success",
    "failure": "failure",
    "timed_out": "failure",
    "startup_failure": "failure",
    "in_progress": "running",
}


def state_of(status: str, conclusion: str | None) -> str:
    """``queued``, ``in_progress``... while active; the conclusion once completed."""
    return (conclusion or "completed") if status == "completed" else status


def label(state: str) -> str:
    return state.replace("_", " ")


def tone(state: str) -> str:
    return TONES.get(state) or ("queued" if state in ACTIVE else "neutral")


def web_url(url: str | None) -> str | None:
    """Only http(s) addresses become links; anything else in a payload stays text."""
    return url if url and url.startswith(("https://", "http://")) else None


@dataclass(frozen=True)
class StepView:
    number: int
    name: str
    state: str

    @property
    def tone(self) -> str:
        return tone(self.state)

    @property
    def label(self) -> str:
        return label(self.state)


@dataclass(frozen=True)
class JobRow:
    id: int
    name: str
    state: str
    html_url: str | None
    started_at: datetime | None
    completed_at: datetime | None
    steps: list[StepView]

    @property
    def tone(self) -> str:
        return tone(self.state)

    @property
    def label(self) -> str:
        return label(self.state)

    @property
    def done(self) -> bool:
        return self.state not in ACTIVE

    @property
    def current(self) -> tuple[int, StepView] | None:
        """The running step and its position (1-based) among the job's steps."""
        for index, step in enumerate(self.steps, start=1):
            if step.state == "in_progress":
                return index, step
        return None

    @property
    def seconds(self) -> float | None:
        if not self.done or self.started_at is None or self.completed_at is None:
            return None
        return max(0.0, (self.completed_at - self.started_at).total_seconds())


@dataclass(frozen=True)
class RunCard:
    id: int
    attempt: int
    repo: str
    name: str | None
    branch: str | None
    state: str
    html_url: str | None
    jobs: list[JobRow]

    @property
    def tone(self) -> str:
        return tone(self.state)

    @property
    def label(self) -> str:
        return label(self.state)

    @property
    def finished_jobs(self) -> int:
        return sum(1 for job in self.jobs if job.done)

    @property
    def percent(self) -> float:
        """Rounded half up to a tenth, as ``Math.round`` does in live_cards.js."""
        if not self.jobs:
            return 0.0
        return math.floor(1000 * self.finished_jobs / len(self.jobs) + 0.5) / 10

    @property
    def failing(self) -> bool:
        return any(job.tone == "failure" for job in self.jobs)


def _step(step: StepOut) -> StepView:
    return StepView(step.number, step.name, state_of(step.status, step.conclusion))


def _job(job: JobOut) -> JobRow:
    return JobRow(
        id=job.id,
        name=job.name,
        state=state_of(job.status, job.conclusion),
        html_url=web_url(job.html_url),
        started_at=job.started_at,
        completed_at=job.completed_at,
        steps=[_step(s) for s in job.steps],
    )


def cards(runs: Sequence[RunInProgress]) -> list[RunCard]:
    return [
        RunCard(
            id=run.id,
            attempt=run.attempt,
            repo=run.repo,
            name=run.name,
            branch=run.branch,
            state=run.status,
            html_url=web_url(run.html_url),
            jobs=[_job(j) for j in run.jobs],
        )
        for run in runs
    ]
