"""``GET /api/stream`` (design B's server-sent events) and the runs in progress."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from cipulse.activity import service as activity
from cipulse.activity.schemas import RunInProgress
from cipulse.context import AppContext, get_ctx
from cipulse.models import utcnow
from cipulse.webhooks.tasks import GITHUB_CHANGED

router = APIRouter(tags=["live"])

HEARTBEAT_SECONDS = 15.0
STREAM_LIFETIME_SECONDS = 3600.0  # the browser's EventSource reconnects by itself


def sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, default=str)}\n\n".encode()


@router.get("/api/runs/in-progress", response_model=list[RunInProgress])
def runs_in_progress(
    ctx: Annotated[AppContext, Depends(get_ctx)],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> list[RunInProgress]:
    """GitHub runs queued or running now, with their jobs and steps."""
    with ctx.db.read() as session:
        return activity.in_progress(session, now=utcnow(), limit=limit)


@router.get(
    "/api/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream(
    request: Request, ctx: Annotated[AppContext, Depends(get_ctx)]
) -> StreamingResponse:
    """Server-sent events: ``pipeline-update`` when a GitHub run or job changes (design B's
    shape, stages being jobs), ``job-update`` with the job and its steps, and ``log`` lines
    saying what happened. One subscription on the in-process bus per open page."""
    queue = ctx.bus.subscribe(GITHUB_CHANGED)

    async def events() -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        ends = loop.time() + STREAM_LIFETIME_SECONDS
        try:
            yield b"retry: 2000\n\n"
            while loop.time() < ends:
                if await request.is_disconnected():
                    return
                try:
                    change = await asyncio.wait_for(queue.get(), HEARTBEAT_SECONDS)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                for chunk in await asyncio.to_thread(_render, ctx, change):
                    yield chunk
        finally:
            ctx.bus.unsubscribe(GITHUB_CHANGED, queue)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _render(ctx: AppContext, change: dict[str, Any]) -> list[bytes]:
    out = []
    now = utcnow()
    kind = change.get("kind")
    if kind in ("run", "job"):
        with ctx.db.read() as session:
            update = activity.pipeline_update(
                session, run_id=change["run_id"], attempt=change["attempt"], now=now
            )
        if update is not None:
            out.append(sse("pipeline-update", update.model_dump(mode="json")))
    if kind == "job":
        out.append(sse("job-update", change))
    subject = change.get("name") or change.get("kind")
    state = change.get("conclusion") or change.get("status") or change.get("action")
    out.append(
        sse(
            "log",
            {
                "type": kind,
                "stage": change.get("name"),
                "timestamp": now.isoformat(),
                "message": f"{kind} {subject}: {state}",
            },
        )
    )
    return out
