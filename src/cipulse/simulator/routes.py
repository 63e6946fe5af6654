from __future__ import annotations

import random
from typing import Annotated

from fastapi import APIRouter, Body, Depends, HTTPException, Query, status

from cipulse.auth import require_admin_token
from cipulse.context import AppContext, get_ctx
from cipulse.ingest import service as ingest
from cipulse.models import utcnow
from cipulse.simulator import service as simulator
from cipulse.simulator.schemas import SimulateBody, SimulateResult

router = APIRouter(tags=["simulator"])


@router.post(
    "/api/simulate",
    response_model=SimulateResult,
    status_code=status.HTTP_201_CREATED,
    dependencies=[Depends(require_admin_token)],
)
def post_simulate(
    ctx: Annotated[AppContext, Depends(get_ctx)],
    count: Annotated[int, Query(ge=1, le=1000)] = 10,
    fail_rate: Annotated[float, Query(ge=0.0, le=1.0)] = 0.25,
    body: Annotated[SimulateBody | None, Body()] = None,
) -> SimulateResult:
    """Generate ``count`` demo runs through the normal ingest (admin)."""
    pipelines = [p.strip() for p in (body.pipelines if body else []) if p.strip()]
    if any(len(p) > 200 for p in pipelines):
        raise HTTPException(422, detail="pipelines: a name is longer than 200 characters")
    events = simulator.recent_events(
        random.Random(),
        count=count,
        fail_rate=fail_rate,
        pipelines=pipelines or list(simulator.DEFAULT_PIPELINES),
        now=utcnow(),
    )
    with ctx.db.write() as uow:
        runs = [
            ingest.record_run(uow, ctx=ctx, event=event, source="simulator").run for event in events
        ]
    return SimulateResult(created=len(runs), runs=runs)
