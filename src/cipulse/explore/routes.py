"""The JSON API of design C's navigation: ``/api/orgs`` down to one job.

With ``?format=csv`` (or ``json``) each answers its main table as a file, through the shared
export helper (``cipulse.web.export``). Ids in paths are GitHub's; names are
GitHub's own character set, so anything else is a 422 before a query runs.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query

from cipulse.context import AppContext, get_ctx
from cipulse.explore import files
from cipulse.explore import service as explore
from cipulse.explore.repository import STATUS_FILTERS
from cipulse.explore.schemas import JobOut, OrgOut, OrgsOut, RepoOut, RunOut, RunPage, WorkflowOut
from cipulse.models import utcnow
from cipulse.params import MAX_GITHUB_ID, GitHubId
from cipulse.web import export
from cipulse.web.export import ExportFormat

router = APIRouter(tags=["navigation"])

MAX_ID = MAX_GITHUB_ID
NAME = r"^[A-Za-z0-9._-]+$"
TEXT = r"^[^\x00-\x1f]*$"  # no NUL or control characters (PostgreSQL refuses NUL)

Owner = Annotated[str, Path(min_length=1, max_length=100, pattern=NAME)]
RepoName = Annotated[str, Path(min_length=1, max_length=100, pattern=NAME)]
Days = Annotated[int, Query(ge=1, le=365, description="Window in days")]
Branch = Annotated[str | None, Query(max_length=255, pattern=TEXT)]
Event = Annotated[str | None, Query(max_length=60, pattern=TEXT)]
Status = Annotated[
    Literal[STATUS_FILTERS] | None,  # type: ignore[valid-type]
    Query(description="A run status or conclusion"),
]
PageNo = Annotated[int, Query(ge=1, le=100_000)]
PerPage = Annotated[int, Query(ge=1, le=100)]
CSV: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {}}, "description": "The object, or with `format` its table"}
}
DEFAULT_DAYS = 7


def filters(branch: str | None, status: str | None, event: str | None) -> explore.Filters:
    return explore.Filters(branch=branch or None, status=status or None, event=event or None)


def _not_found(what: str) -> HTTPException:
    return HTTPException(404, detail=f"{what} is not known to cipulse (synced repositories only)")


@router.get("/api/orgs", response_model=OrgsOut, responses=CSV)
async def api_orgs(
    ctx: Annotated[AppContext, Depends(get_ctx)],
    days: Days = DEFAULT_DAYS,
    fmt: ExportFormat = None,
) -> Any:
    """Organisations and owners (App installations, or owners of configured repositories),
    each with its repositories and their health in the window."""

    def read() -> OrgsOut:
        with ctx.db.read() as session:
            return explore.orgs(session, days=days, now=utcnow(), app_mode=ctx.sync.app_mode)

    out = await asyncio.to_thread(read)
    if fmt is not None:
        rows = [
            {"org": o.login, "suspended": o.suspended, **r.model_dump(mode="json")}
            for o in out.orgs
            for r in o.repositories
        ]
        return export.table(rows, fmt=fmt, name="orgs")
    return out


@router.get("/api/orgs/{owner}", response_model=OrgOut, responses=CSV)
async def api_org(
    ctx: Annotated[AppContext, Depends(get_ctx)],
    owner: Owner,
    days: Days = DEFAULT_DAYS,
    fmt: ExportFormat = None,
) -> Any:
    """One organisation or owner and its repositories."""

    def read() -> OrgOut | None:
        with ctx.db.read() as session:
            return explore.org(session, owner=owner, days=days, now=utcnow())

    out = await asyncio.to_thread(read)
    if out is None:
        raise _not_found(f"owner {owner}")
    if fmt is not None:
        return export.table(out.org.repositories, fmt=fmt, name=f"{owner}-repos")
    return out


@router.get("/api/repos/{owner}/{repo}", response_model=RepoOut, responses=CSV)
async def api_repo(
    ctx: Annotated[AppContext, Depends(get_ctx)],
    owner: Owner,
    repo: RepoName,
    days: Days = DEFAULT_DAYS,
    branch: Branch = None,
    status: Status = None,
    event: Event = None,
    page: PageNo = 1,
    per_page: PerPage = 25,
    fmt: ExportFormat = None,
) -> Any:
    """A repository: workflows with latest status and success rate, active branches, and its
    runs (filtered, paged; CSV gives the runs)."""

    def read() -> RepoOut | None:
        with ctx.db.read() as session:
            return explore.repo_overview(
                session,
                full_name=f"{owner}/{repo}",
                days=days,
                now=utcnow(),
                filters=filters(branch, status, event),
                page=page,
                per_page=per_page,
            )

    out = await asyncio.to_thread(read)
    if out is None:
        raise _not_found(f"repository {owner}/{repo}")
    if fmt is not None:
        return export.table(out.recent_runs.runs, fmt=fmt, name=f"{owner}-{repo}-runs")
    return out


@router.get(
    "/api/repos/{owner}/{repo}/workflows/{workflow_id}", response_model=WorkflowOut, responses=CSV
)
async def api_workflow(
    ctx: Annotated[AppContext, Depends(get_ctx)],
    owner: Owner,
    repo: RepoName,
    workflow_id: GitHubId,
    days: Days = DEFAULT_DAYS,
    branch: Branch = None,
    status: Status = None,
    event: Event = None,
    page: PageNo = 1,
    per_page: PerPage = 25,
    fmt: ExportFormat = None,
) -> Any:
    """A workflow: success rate and p50/p95 duration per day, and its run history (paged).
    CSV gives the daily trend."""
    out = await asyncio.to_thread(
        _workflow,
        ctx,
        f"{owner}/{repo}",
        workflow_id,
        days,
        filters(branch, status, event),
        page,
        per_page,
    )
    if fmt is not None:
        return export.table(out.daily, fmt=fmt, name=f"workflow-{workflow_id}-daily")
    return out


@router.get(
    "/api/repos/{owner}/{repo}/workflows/{workflow_id}/runs",
    response_model=RunPage,
    responses=CSV,
)
async def api_workflow_runs(
    ctx: Annotated[AppContext, Depends(get_ctx)],
    owner: Owner,
    repo: RepoName,
    workflow_id: GitHubId,
    days: Days = DEFAULT_DAYS,
    branch: Branch = None,
    status: Status = None,
    event: Event = None,
    page: PageNo = 1,
    per_page: PerPage = 25,
    fmt: ExportFormat = None,
) -> Any:
    """A workflow's runs (each run once, by its latest attempt), newest first."""
    out = await asyncio.to_thread(
        _workflow,
        ctx,
        f"{owner}/{repo}",
        workflow_id,
        days,
        filters(branch, status, event),
        page,
        per_page,
    )
    if fmt is not None:
        return export.table(out.runs.runs, fmt=fmt, name=f"workflow-{workflow_id}-runs")
    return out.runs


def _workflow(
    ctx: AppContext,
    full_name: str,
    workflow_id: int,
    days: int,
    chosen: explore.Filters,
    page: int,
    per_page: int,
) -> WorkflowOut:
    with ctx.db.read() as session:
        out = explore.workflow_detail(
            session,
            full_name=full_name,
            workflow_id=workflow_id,
            days=days,
            now=utcnow(),
            filters=chosen,
            page=page,
            per_page=per_page,
        )
    if out is None:
        raise _not_found(f"workflow {workflow_id} of {full_name}")
    return out


@router.get("/api/repos/{owner}/{repo}/runs/{run_id}", response_model=RunOut, responses=CSV)
async def api_run(
    ctx: Annotated[AppContext, Depends(get_ctx)],
    owner: Owner,
    repo: RepoName,
    run_id: GitHubId,
    attempt: Annotated[int | None, Query(ge=1, le=10_000)] = None,
    fmt: ExportFormat = None,
) -> Any:
    """A run: its jobs as a graph ordered by ``needs`` (from the workflow file at the run's
    commit, else by start time), and every attempt side by side. CSV gives the jobs."""
    out = await files.run_data(ctx, f"{owner}/{repo}", run_id, attempt)
    if out is None:
        raise _not_found(f"run {run_id} of {owner}/{repo}")
    if fmt is not None:
        return export.table(out.jobs, fmt=fmt, name=f"run-{run_id}-jobs")
    return out


@router.get("/api/repos/{owner}/{repo}/jobs/{job_id}", response_model=JobOut, responses=CSV)
async def api_job(
    ctx: Annotated[AppContext, Depends(get_ctx)],
    owner: Owner,
    repo: RepoName,
    job_id: GitHubId,
    fmt: ExportFormat = None,
) -> Any:
    """A job: its steps with times, queue time, runner, and its previous executions (same
    workflow and job name). CSV gives the previous executions."""

    def read() -> JobOut | None:
        with ctx.db.read() as session:
            return explore.job_detail(session, full_name=f"{owner}/{repo}", job_id=job_id)

    out = await asyncio.to_thread(read)
    if out is None:
        raise _not_found(f"job {job_id} of {owner}/{repo}")
    if fmt is not None:
        return export.table(out.previous, fmt=fmt, name=f"job-{job_id}-previous")
    return out
