from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from cipulse.artifacts import tasks as artifact_tasks
from cipulse.auth import require_admin_token
from cipulse.context import AppContext, get_ctx
from cipulse.models import utcnow
from cipulse.sync import repository
from cipulse.sync.schemas import (
    RateLimitOut,
    RefreshResult,
    RefreshSummary,
    RepoSyncOut,
    SyncStatus,
)

router = APIRouter(tags=["sync"])

REPO_QUERY = Query(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", description="owner/name")


def _tracked(ctx: AppContext) -> list[str]:
    with ctx.db.read() as session:
        return [r.full_name for r in repository.tracked_repos(session)]


def _totals(ctx: AppContext, names: list[str]) -> tuple[int, datetime | None]:
    with ctx.db.read() as session:
        repos = [r for r in (repository.get_repo(session, n) for n in names) if r is not None]
        ids = [r.id for r in repos]
        total = sum(repository.count_runs(session, i) for i in ids)
        return total, repository.last_success(session, ids) if ids else None


@router.post(
    "/api/refresh",
    response_model=RefreshResult,
    dependencies=[Depends(require_admin_token)],
    responses={400: {"model": RefreshResult}, 502: {"model": RefreshResult}},
)
async def refresh(
    ctx: Annotated[AppContext, Depends(get_ctx)],
    limit: Annotated[int | None, Query(ge=1, le=100_000)] = None,
    repo: Annotated[str | None, REPO_QUERY] = None,
) -> JSONResponse:
    """Sync now (admin). Joins a sync of the same repository that is already running."""
    names = [repo] if repo else await asyncio.to_thread(_tracked, ctx)
    now = utcnow()
    if not names:
        body = RefreshResult(
            success=False,
            message="no repository is tracked: add one with `cipulse repo add OWNER/NAME`",
            lastUpdated=None,
            totalRuns=0,
            timestamp=now,
            summary=RefreshSummary(newRuns=0, newFiles=0, updatedWorkflows=0),
            repos=[],
        )
        return JSONResponse(body.model_dump(mode="json"), status_code=400)
    results = [await ctx.sync.sync(name, limit=limit) for name in names]
    new_files = await artifact_tasks.process_now(ctx, [r.repo for r in results if not r.error])
    total, last = await asyncio.to_thread(_totals, ctx, names)
    failed = [r for r in results if r.error]
    new_runs = sum(r.new_runs for r in results)
    if failed:
        message = "; ".join(f"{r.repo}: {r.error}" for r in failed)
    else:
        message = f"synced {len(results)} repositor{'y' if len(results) == 1 else 'ies'}: " + (
            f"{new_runs} new run{'' if new_runs == 1 else 's'}"
        )
    body = RefreshResult(
        success=not failed,
        message=message,
        lastUpdated=last,
        totalRuns=total,
        timestamp=utcnow(),
        summary=RefreshSummary(
            newRuns=new_runs,
            newFiles=new_files,
            updatedWorkflows=sum(r.updated_workflows for r in results),
        ),
        repos=[
            RepoSyncOut(
                repo=r.repo,
                mode=r.mode,
                new_runs=r.new_runs,
                updated_runs=r.updated_runs,
                jobs_fetched_for=r.jobs_fetched_for,
                requests=r.requests,
                not_modified=r.not_modified,
                points=r.points,
                error=r.error,
            )
            for r in results
        ],
    )
    no_token = any("no GitHub token" in (r.error or "") for r in failed)
    status = 200 if not failed else (400 if no_token else 502)
    return JSONResponse(body.model_dump(mode="json"), status_code=status)


@router.get("/api/sync/status", response_model=list[SyncStatus])
def sync_status(ctx: Annotated[AppContext, Depends(get_ctx)]) -> list[SyncStatus]:
    """Per repository: last success and error, requests spent, GitHub rate-limit budget."""
    syncing = ctx.sync.syncing()
    with ctx.db.read() as session:
        rows = repository.status_rows(session)
        return [
            SyncStatus(
                repo=repo.full_name,
                tracked=repo.tracked,
                branches=list(repo.branches or []),
                syncing=repo.full_name.lower() in syncing,
                runs_stored=count,
                last_started_at=st.last_started_at if st else None,
                last_success_at=st.last_success_at if st else None,
                last_error=st.last_error if st else None,
                last_error_at=st.last_error_at if st else None,
                initial_done_at=st.initial_done_at if st else None,
                last_requests=st.last_requests if st else 0,
                last_not_modified=st.last_not_modified if st else 0,
                last_points=st.last_points if st else 0,
                total_requests=st.total_requests if st else 0,
                rate_limit=RateLimitOut(
                    limit=st.rate_limit if st else None,
                    remaining=st.rate_remaining if st else None,
                    reset_at=st.rate_reset_at if st else None,
                ),
            )
            for repo, st, count in rows
        ]
