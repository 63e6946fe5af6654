from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class RefreshSummary(BaseModel):
    newRuns: int
    newFiles: int
    updatedWorkflows: int


class RefreshResult(BaseModel):
    """Designs A and D's refresh answer, plus what each repository's sync did."""

    success: bool
    message: str
    lastUpdated: datetime | None
    totalRuns: int
    timestamp: datetime
    summary: RefreshSummary
    repos: list[RepoSyncOut]


class RepoSyncOut(BaseModel):
    repo: str
    mode: str
    new_runs: int
    updated_runs: int
    jobs_fetched_for: int
    requests: int
    not_modified: int
    points: int
    error: str | None


class RateLimitOut(BaseModel):
    limit: int | None
    remaining: int | None
    reset_at: datetime | None


class SyncStatus(BaseModel):
    repo: str
    tracked: bool
    branches: list[str]
    syncing: bool
    runs_stored: int
    last_started_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    initial_done_at: datetime | None
    last_requests: int
    last_not_modified: int
    last_points: int
    total_requests: int
    rate_limit: RateLimitOut


RefreshResult.model_rebuild()
