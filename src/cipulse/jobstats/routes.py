from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Response

from cipulse.context import AppContext, get_ctx
from cipulse.jobstats import repository
from cipulse.jobstats import service as jobstats
from cipulse.jobstats.schemas import CiData
from cipulse.models import utcnow

router = APIRouter(tags=["jobs"])


def resolve_repo(ctx: AppContext, repo: str | None) -> tuple[int, str, bool]:
    """The repository asked for (or the only tracked one): id, name, synced at least once."""
    with ctx.db.read() as session:
        if repo is None:
            names = repository.tracked_names(session)
            if len(names) != 1:
                raise HTTPException(
                    422,
                    detail="repo: say which repository (owner/name)"
                    if names
                    else "repo: no repository is tracked yet (`cipulse repo add OWNER/NAME`)",
                )
            repo = names[0]
        found = repository.repo_by_name(session, repo)
        if found is None:
            raise HTTPException(404, detail=f"repo: {repo} is not a known repository")
        return found.id, found.full_name, repository.last_synced(session, found.id) is not None


@router.get("/api/ci-data", response_model=CiData)
async def get_ci_data(
    ctx: Annotated[AppContext, Depends(get_ctx)],
    response: Response,
    repo: Annotated[str | None, Query(max_length=201, description="owner/name")] = None,
    branch: Annotated[
        str | None, Query(max_length=255, description="One branch; all when left out.")
    ] = None,
    days: Annotated[int, Query(ge=1, le=400)] = 30,
) -> CiData:
    """Failure rate per job name (design A), with ``X-Data-Source: cache|fresh-fetch``.

    A repository never synced is synced first when a GitHub token is set (fresh-fetch);
    otherwise the answer comes from what is stored (cache).
    """
    repo_id, name, synced = await asyncio.to_thread(resolve_repo, ctx, repo)
    source = "cache"
    if not synced and ctx.settings.github_token is not None:
        result = await ctx.sync.sync(name)
        if result.error is None:
            source = "fresh-fetch"
    response.headers["X-Data-Source"] = source

    def read() -> CiData:
        with ctx.db.read() as session:
            return jobstats.ci_data(
                session, repo_id=repo_id, repo=name, branch=branch, days=days, now=utcnow()
            )

    return await asyncio.to_thread(read)
