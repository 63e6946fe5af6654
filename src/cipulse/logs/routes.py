"""The job-log API: lines by page (with search), the raw text streamed, and a fetch request."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.responses import StreamingResponse

from cipulse.auth import require_admin_token
from cipulse.context import AppContext, get_ctx
from cipulse.logs import service
from cipulse.logs.chunks import Index
from cipulse.logs.schemas import (
    LogIssueOut,
    LogLineOut,
    LogMatchOut,
    LogPageOut,
    LogStatusOut,
)
from cipulse.models import utcnow
from cipulse.params import MAX_GITHUB_ID

router = APIRouter(tags=["logs"])

JobId = Annotated[int, Path(ge=1, le=MAX_GITHUB_ID, description="GitHub job id")]
STATE_WORDS = {
    "none": "was not fetched (only failed jobs' logs are, unless CIPULSE_FETCH_ALL_LOGS is on)",
    "pending": "is being fetched",
    "expired": "has expired on GitHub (410)",
    "missing": "does not exist on GitHub (404)",
    "failed": "could not be fetched",
}


def _stored(ctx: AppContext, job_id: int) -> tuple[str, Index]:
    """The storage prefix and index of a stored log, or a 404 that says why there is none."""
    with ctx.db.read() as session:
        info = service.find(session, job_github_id=job_id)
        if info is None:
            raise HTTPException(404, detail=f"no job {job_id} is known")
        row = info.log
        state = row.state if row is not None else "none"
        prefix = row.storage_key if row is not None else None
    if state != "stored" or prefix is None:
        raise HTTPException(404, detail=f"the log of job {job_id} {STATE_WORDS[state]}")
    try:
        return prefix, service.read_index(ctx.storage, prefix=prefix)
    except FileNotFoundError:
        raise HTTPException(404, detail=f"the log of job {job_id} is gone from storage") from None


def _page(ctx: AppContext, job_id: int, start: int, limit: int, query: str | None) -> LogPageOut:
    prefix, index = _stored(ctx, job_id)
    page = service.read_page(ctx.storage, prefix=prefix, index=index, start=start, limit=limit)
    out = LogPageOut(
        job_id=job_id,
        state="stored",
        line_count=index.lines,
        errors=index.errors,
        warnings=index.warnings,
        first_error_line=index.first_error[0] if index.first_error else None,
        start=start,
        limit=limit,
        next_start=page.next_start,
        lines=[
            LogLineOut(number=x.number, timestamp=x.timestamp, kind=x.kind, text=x.plain)
            for x in page.lines
        ],
        issues=[LogIssueOut(line=n, kind=k, text=t) for n, k, t in index.issues],
    )
    if query:
        found = service.search(ctx.storage, prefix=prefix, index=index, query=query)
        out.query = query
        out.matches = [LogMatchOut(line=m.number, text=m.text) for m in found.matches]
        out.matches_truncated = found.truncated
    return out


@router.get("/api/jobs/{job_id}/log", response_model=LogPageOut)
async def get_job_log(
    job_id: JobId,
    ctx: Annotated[AppContext, Depends(get_ctx)],
    start: Annotated[int, Query(ge=1, le=2**31 - 1, description="First line")] = 1,
    limit: Annotated[int, Query(ge=1, le=5000, description="Lines per page")] = 500,
    q: Annotated[
        str | None,
        Query(max_length=service.MAX_QUERY_CHARS, description="Text to search for"),
    ] = None,
) -> LogPageOut:
    """A page of a stored job log, its errors and warnings; with `q`, the lines matching it."""
    return await asyncio.to_thread(_page, ctx, job_id, start, limit, q or None)


@router.get(
    "/api/jobs/{job_id}/log.txt",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/plain": {}}, "description": "The log as GitHub sent it"}},
)
async def get_job_log_text(
    job_id: JobId, ctx: Annotated[AppContext, Depends(get_ctx)]
) -> StreamingResponse:
    """The whole log as plain text, streamed one stored chunk at a time."""
    prefix, index = await asyncio.to_thread(_stored, ctx, job_id)
    chunks = service.iter_raw(ctx.storage, prefix=prefix, index=index)

    async def body() -> AsyncIterator[bytes]:
        try:
            while True:
                piece = await asyncio.to_thread(next, chunks, None)
                if piece is None:
                    return
                yield piece
        finally:
            chunks.close()  # type: ignore[attr-defined]

    headers = {
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": f'inline; filename="job-{job_id}.log"',
        "Content-Length": str(index.raw_bytes),
    }
    return StreamingResponse(body(), media_type="text/plain; charset=utf-8", headers=headers)


def _request(ctx: AppContext, job_id: int) -> LogStatusOut:
    with ctx.db.write() as uow:
        info = service.find(uow.session, job_github_id=job_id)
        if info is None:
            raise HTTPException(404, detail=f"no job {job_id} is known")
        if info.job.status != "completed":
            raise HTTPException(409, detail=f"job {job_id} has not completed: it has no log yet")
        row = service.request_fetch(uow.session, job=info.job, now=utcnow())
        return LogStatusOut(
            job_id=job_id, state=row.state, attempts=row.attempts,
            last_error=row.last_error, fetched_at=row.fetched_at,
        )  # fmt: skip


@router.post(
    "/api/jobs/{job_id}/log/fetch",
    response_model=LogStatusOut,
    status_code=202,
    dependencies=[Depends(require_admin_token)],
)
async def request_job_log(
    job_id: JobId, ctx: Annotated[AppContext, Depends(get_ctx)]
) -> LogStatusOut:
    """Fetch this job's log (again): for a job whose log is not fetched automatically, or one
    that failed or went missing. A stored or expired log is left as it is."""
    return await asyncio.to_thread(_request, ctx, job_id)
