"""What the navigation pages and their JSON API answer with (design C: Organizations →
Repositories → Workflows → Runs → Job). Ids in URLs and here are GitHub's."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class Health(BaseModel):
    """A repository's or workflow's health in the window, counted on each run's final attempt:
    success and neutral pass, failure, timed_out and startup_failure fail; cancelled and
    skipped are shown beside, never in the rate."""

    runs: int = Field(description="Runs created in the window (each run once, any state)")
    passed: int
    failed: int
    cancelled: int = Field(description="Cancelled or skipped: not in the rate")
    in_progress: int
    failure_rate: float | None = Field(description="failed / (passed + failed), 0..1; null: none")


class RunRef(BaseModel):
    """A run as lists show it: its latest attempt."""

    id: int = Field(description="GitHub run id")
    attempt: int
    run_number: int | None
    name: str | None
    workflow_id: int | None = Field(description="GitHub workflow id")
    branch: str | None
    sha: str | None
    event: str | None
    actor: str | None
    status: str
    conclusion: str | None
    created_at: datetime
    started_at: datetime | None
    updated_at: datetime | None
    duration_seconds: float | None = Field(description="updated_at - run_started_at, if done")
    html_url: str | None


class RepoHealth(BaseModel):
    full_name: str
    owner: str
    name: str
    html_url: str | None
    default_branch: str | None
    tracked: bool
    health: Health
    last_default_branch_run: RunRef | None = Field(
        description="The newest run on the default branch (its latest attempt)"
    )


class Org(BaseModel):
    """An owner of repositories: a GitHub App installation's account, or (token mode) the owner
    of configured repositories."""

    login: str
    kind: str = Field(description="Organization, User, or 'owner' when no installation is known")
    installation_id: int | None
    suspended: bool
    suspended_at: datetime | None
    uninstalled: bool
    repositories: list[RepoHealth]
    health: Health


class OrgsOut(BaseModel):
    days: int
    generated_at: datetime
    app_mode: bool
    orgs: list[Org]


class OrgOut(BaseModel):
    days: int
    generated_at: datetime
    org: Org


class WorkflowSummary(BaseModel):
    id: int = Field(description="GitHub workflow id")
    name: str
    path: str | None
    state: str | None
    html_url: str | None
    health: Health
    success_rate: float | None = Field(description="passed / (passed + failed), 0..1")
    latest_run: RunRef | None


class BranchSummary(BaseModel):
    name: str
    runs: int
    latest_run: RunRef


class RunPage(BaseModel):
    total: int
    page: int
    per_page: int
    runs: list[RunRef]


class RepoOut(BaseModel):
    repo: RepoHealth
    days: int
    workflows: list[WorkflowSummary]
    branches: list[BranchSummary]
    recent_runs: RunPage


class DayPoint(BaseModel):
    day: str = Field(description="UTC date, YYYY-MM-DD")
    runs: int
    passed: int
    failed: int
    success_rate: float | None
    p50_seconds: float | None = Field(description="Median duration of completed runs that day")
    p95_seconds: float | None


class WorkflowOut(BaseModel):
    repo: str
    workflow: WorkflowSummary
    days: int
    daily: list[DayPoint]
    p50_seconds: float | None
    p95_seconds: float | None
    runs: RunPage


class StepOut(BaseModel):
    number: int
    name: str
    status: str
    conclusion: str | None
    started_at: datetime | None
    completed_at: datetime | None
    duration_seconds: float | None


class JobNode(BaseModel):
    """One job in the run graph."""

    id: int = Field(description="GitHub job id")
    name: str
    key: str | None = Field(description="The job's key in the workflow file, when matched")
    stage: int = Field(description="Column of the graph: 0 runs first")
    needs: list[int] = Field(description="GitHub ids of the jobs this one waited for")
    attempt: int = Field(description="The attempt this execution ran in")
    carried_over: bool = Field(description="Not re-run in the shown attempt: an earlier result")
    status: str
    conclusion: str | None
    started_at: datetime | None
    completed_at: datetime | None
    duration_seconds: float | None
    html_url: str | None


class AttemptCell(BaseModel):
    job_id: int
    status: str
    conclusion: str | None
    duration_seconds: float | None


class AttemptRow(BaseModel):
    """One job name across attempts; a missing cell means it did not run in that attempt."""

    name: str
    cells: dict[int, AttemptCell | None]


class AttemptOut(BaseModel):
    number: int
    status: str
    conclusion: str | None
    started_at: datetime | None
    updated_at: datetime | None
    duration_seconds: float | None
    html_url: str | None


class RunOut(BaseModel):
    repo: str
    run: RunRef
    shown_attempt: int
    workflow_name: str | None
    workflow_path: str | None
    order: str = Field(description="'needs' (from the workflow file) or 'start-time' (fallback)")
    order_note: str
    jobs: list[JobNode]
    attempts: list[AttemptOut]
    attempt_rows: list[AttemptRow]


class Execution(BaseModel):
    job_id: int
    run_id: int
    run_number: int | None
    attempt: int
    branch: str | None
    sha: str | None
    status: str
    conclusion: str | None
    started_at: datetime | None
    duration_seconds: float | None
    html_url: str | None


class JobOut(BaseModel):
    repo: str
    id: int
    name: str
    run: RunRef
    attempt: int
    workflow_id: int | None
    workflow_name: str | None
    status: str
    conclusion: str | None
    created_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    queue_seconds: float | None = Field(description="started_at - created_at")
    duration_seconds: float | None
    runner_name: str | None
    runner_group: str | None
    labels: list[str]
    html_url: str | None
    steps: list[StepOut]
    previous: list[Execution] = Field(description="Earlier executions of this job, newest first")
