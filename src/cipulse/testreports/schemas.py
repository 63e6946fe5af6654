"""I/O shapes of test reports and test history."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

Outcome = Literal["passed", "failed", "error", "skipped"]


class StoredReport(BaseModel):
    """What storing one report did; ``created`` is false when the same report was stored before."""

    report_id: int
    created: bool
    name: str | None = None
    tests: int
    passed: int
    failed: int
    errors: int
    skipped: int
    flaky: int = Field(description="Tests that passed after a failing retry in this report.")
    duration_seconds: float
    workflow_run_id: int | None = None
    job_id: int | None = None


class StoredReports(BaseModel):
    reports: list[StoredReport]


class RetryOut(BaseModel):
    outcome: Outcome
    message: str | None
    duration_seconds: float


class TestSummary(BaseModel):
    __test__ = False

    id: int
    project: str
    suite: str
    classname: str
    name: str
    file: str | None
    runs: int
    passes: int
    failures: int = Field(description="Results that failed or errored.")
    skips: int
    flaky_retries: int = Field(description="Reports in which the test passed after a retry.")
    failure_rate: float | None = Field(description="Failures over runs that were not skipped.")
    avg_duration_seconds: float
    max_duration_seconds: float
    last_outcome: str
    last_seen_at: datetime
    url: str


class TestList(BaseModel):
    __test__ = False

    since: datetime
    sort: str
    total: int
    items: list[TestSummary]


class FlakyTest(BaseModel):
    id: int
    project: str
    suite: str
    classname: str
    name: str
    file: str | None
    retry_passes: int = Field(description="Reports in which it passed after a failing retry.")
    flaky_commits: int = Field(description="Commits on which it both failed and passed.")
    last_flaky_at: datetime
    url: str


class HistoryEntry(BaseModel):
    outcome: Outcome
    duration_seconds: float
    message: str | None
    details: str | None
    attempts: int
    flaky: bool
    retries: list[RetryOut]
    reported_at: datetime
    commit_sha: str | None
    branch: str | None
    report_id: int
    report_name: str | None
    source: str
    ci_run: str | None
    ci_job: str | None
    workflow_run_id: int | None
    run_number: int | None
    run_attempt: int | None
    run_url: str | None
    job_name: str | None
    job_url: str | None


class TestDetail(BaseModel):
    __test__ = False

    test: TestSummary
    history: list[HistoryEntry]


class RunTestResult(BaseModel):
    test_case_id: int
    suite: str
    classname: str
    name: str
    file: str | None
    outcome: Outcome
    duration_seconds: float
    message: str | None
    attempts: int
    flaky: bool
    report_id: int
    url: str


class RunReport(BaseModel):
    id: int
    name: str | None
    source: str
    tests: int
    passed: int
    failed: int
    errors: int
    skipped: int
    flaky: int
    duration_seconds: float


class RunTests(BaseModel):
    workflow_run_id: int
    reports: list[RunReport]
    tests: int
    passed: int
    failed: int
    errors: int
    skipped: int
    flaky: int
    results: list[RunTestResult]
