"""Design A's ``/api/ci-data`` shape (camelCase kept for its existing clients)."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel


class Counts(BaseModel):
    totalRuns: int
    failures: int
    successes: int
    failureRate: float


class RecentFailure(BaseModel):
    runId: int
    runNumber: int | None
    runAttempt: int
    runUrl: str | None
    createdAt: datetime
    jobUrl: str | None
    conclusion: str | None


class JobStat(Counts):
    name: str
    last7Days: Counts
    recentFailures: list[RecentFailure]
    flaky: int
    dailyFailureRate: list[float | None]


class DayCounts(Counts):
    date: date


class CiData(BaseModel):
    repo: str
    branch: str | None
    days: int
    jobStats: dict[str, JobStat]
    jobHistory: dict[str, list[DayCounts]]
    lastUpdated: datetime | None
    totalRuns: int
