from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from cipulse.analytics import service as analytics
from cipulse.analytics.schemas import DailyCount, Summary
from cipulse.context import AppContext, get_ctx
from cipulse.ingest.schemas import RunOut

router = APIRouter(tags=["metrics"])

MAX_WINDOW_MINUTES = 366 * 24 * 60


@router.get("/api/metrics/summary", response_model=Summary)
def get_summary(
    ctx: Annotated[AppContext, Depends(get_ctx)],
    minutes: Annotated[int, Query(ge=1, le=MAX_WINDOW_MINUTES)] = 1440,
) -> Summary:
    """Totals, success rate, average duration and last status over the last ``minutes``."""
    with ctx.db.read() as session:
        return analytics.summary(session, minutes=minutes)


@router.get("/api/metrics/daily", response_model=list[DailyCount])
def get_daily(
    ctx: Annotated[AppContext, Depends(get_ctx)],
    days: Annotated[int, Query(ge=1, le=366)] = 30,
) -> list[DailyCount]:
    """Runs per UTC day by outcome, for the dashboard's chart."""
    with ctx.db.read() as session:
        return analytics.daily(session, days=days)


@router.get("/api/runs", response_model=list[RunOut])
def get_runs(
    ctx: Annotated[AppContext, Depends(get_ctx)],
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
) -> list[RunOut]:
    """The most recent runs, newest start first."""
    with ctx.db.read() as session:
        return analytics.recent_runs(session, limit=limit)
