"""Response shapes of ``/api/stats/...`` (snake_case; times in UTC, durations in seconds)."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field


class Period(BaseModel):
    first_day: date = Field(description="First UTC day of the window, included")
    last_day: date = Field(description="Last UTC day of the window, included")
    days: int


class TrendOut(BaseModel):
    value: float | None
    baseline: float | None = Field(description="The same metric over the previous equal window")
    samples: int
    baseline_samples: int
    change: float | None = Field(
        description="Percentage points for rates, percent of the baseline otherwise"
    )
    direction: str = Field(description="up, down, flat, too_few, no_data or no_baseline")
    better: bool | None


class Rates(BaseModel):
    """Counted by the rule of docs/metrics.md: cancelled and skipped beside, never in a rate."""

    success: int = 0
    failure: int = 0
    cancelled: int = 0
    skipped: int = 0
    failure_rate: float | None = None
    first_success: int = 0
    first_failure: int = 0
    first_failure_rate: float | None = None
    final_success: int = 0
    final_failure: int = 0
    final_failure_rate: float | None = None


class Kpis(Rates):
    runs: int
    runs_per_day: float
    success_rate: float | None
    duration_p50: int | None
    duration_p95: int | None
    retried_attempts: int
    minutes_lost_to_retries: float
    trends: dict[str, TrendOut]


class DayPoint(BaseModel):
    day: date
    runs: int
    success: int
    failure: int
    cancelled: int
    skipped: int
    failure_rate: float | None
    duration_p50: int | None
    duration_p95: int | None


class RunItem(BaseModel):
    repository: str
    workflow: str
    branch: str | None
    run_id: int
    run_number: int | None
    attempt: int
    status: str
    conclusion: str | None
    head_sha: str | None
    created_at: datetime
    duration_sec: int | None
    url: str | None


class BrokenWorkflow(BaseModel):
    workflow: str
    since: datetime | None = Field(description="Completion of the first failure of the streak")
    failures: int = Field(description="Failed runs in a row, newest first")
    last_url: str | None


class BranchHealth(BaseModel):
    repository: str
    branch: str
    broken: bool
    since: datetime | None
    checked_runs: int
    workflows: list[BrokenWorkflow]


class Overview(BaseModel):
    period: Period
    previous: Period
    kpis: Kpis
    daily: list[DayPoint]
    branches: list[BranchHealth]
    in_progress: list[RunItem]
    recent: list[RunItem]
    pending_days: int = Field(description="Days changed since their rollup; folded in from raw")


class BreakdownRow(Rates):
    key: str
    runs: int


class Breakdown(BaseModel):
    period: Period
    by: str
    rows: list[BreakdownRow]


class JobRate(Rates):
    workflow: str
    job: str
    executions: int
    flaky_runs: int
    duration_p50: int | None = None
    duration_p95: int | None = None
    daily_failure_rate: list[float | None]
    daily_failures: list[int]


class JobFailure(BaseModel):
    repository: str
    workflow: str
    job: str
    conclusion: str | None
    branch: str | None
    run_number: int | None
    attempt: int
    created_at: datetime
    run_url: str | None
    job_url: str | None


class JobRates(BaseModel):
    period: Period
    days: list[date]
    jobs: list[JobRate]
    recent_failures: list[JobFailure]


class DurationRow(BaseModel):
    workflow: str
    job: str | None
    samples: int
    p50: int | None
    p95: int | None
    p50_trend: TrendOut
    p95_trend: TrendOut


class Durations(BaseModel):
    period: Period
    workflows: list[DurationRow]
    jobs: list[DurationRow]


class QueueRow(BaseModel):
    kind: str = Field(description="label or group")
    value: str
    jobs: int
    p50: int | None
    p95: int | None


class QueueTimes(BaseModel):
    period: Period
    rows: list[QueueRow]


class MttrRow(BaseModel):
    repository: str
    workflow: str
    branch: str | None
    incidents: int = Field(description="Failure streaks that started in the window")
    recovered: int
    failed_seconds: int = Field(description="Time from each streak's first failure to recovery")
    mttr_seconds: int | None
    open_since: datetime | None


class TimeToGreenRow(BaseModel):
    repository: str
    workflow: str
    commits: int
    green: int
    p50: int | None
    p95: int | None


class Recovery(BaseModel):
    period: Period
    mttr: list[MttrRow]
    time_to_green: list[TimeToGreenRow]
    branches: list[BranchHealth]


class FlakyJob(BaseModel):
    workflow: str
    job: str
    flaky_commits: int = Field(description="Commits on which the job both failed and passed")
    flaky_runs: int = Field(description="Runs where it failed, then passed in a later attempt")
    commits: int
    daily: list[int] = Field(description="Flaky commits per day, by the day it flipped")


class Flaky(BaseModel):
    period: Period
    days: list[date]
    jobs: list[FlakyJob]


class CompareRow(BaseModel):
    key: str
    a: Rates
    b: Rates
    a_runs: int
    b_runs: int
    change: float | None = Field(description="b minus a failure rate, percentage points")


class Compare(BaseModel):
    a: Period
    b: Period
    a_kpis: Kpis
    b_kpis: Kpis
    workflows: list[CompareRow]
    jobs: list[CompareRow]
