"""``/api/stats/...``: the analytics of synced GitHub runs as JSON, or a table as CSV/JSON.

Every endpoint takes the same filters (``repo`` repeated for several, ``branch``,
``workflow``, ``days``); ``?format=csv|json`` answers with the endpoint's main table as a file.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Query
from sqlalchemy.orm import Session

from cipulse.context import AppContext, get_ctx
from cipulse.models import utcnow
from cipulse.stats import repository as stats_repo
from cipulse.stats import service as stats
from cipulse.stats.repository import Scope
from cipulse.stats.schemas import (
    Breakdown,
    Compare,
    Durations,
    Flaky,
    JobRates,
    Overview,
    QueueTimes,
    Recovery,
)
from cipulse.web import export
from cipulse.web.export import ExportFormat

router = APIRouter(prefix="/api/stats", tags=["stats"])
T = TypeVar("T")

MAX_DAYS = 400
EARLIEST, LATEST = date(2000, 1, 1), date(2999, 12, 31)  # keeps window arithmetic in range


class Filters:
    """The filters shared by every stats endpoint, resolved to a scope and a window."""

    def __init__(
        self,
        repo: Annotated[
            list[str] | None,
            Query(description="owner/name; repeat for several; all when left out"),
        ] = None,
        branch: Annotated[str | None, Query(max_length=255)] = None,
        workflow: Annotated[str | None, Query(max_length=500)] = None,
        days: Annotated[
            int, Query(ge=1, le=MAX_DAYS, description="Whole UTC days, today included")
        ] = 30,
    ) -> None:
        for name in repo or []:
            if not name or len(name) > 201:
                raise HTTPException(422, detail="repo: give owner/name (at most 201 characters)")
        for label, value in (
            ("repo", "".join(repo or [])),
            ("branch", branch),
            ("workflow", workflow),
        ):
            if value and "\x00" in value:
                raise HTTPException(422, detail=f"{label}: must not contain a NUL character")
        self.repos = repo or []
        self.branch = branch or None
        self.workflow = workflow or None
        self.days = days

    def scope(self, session: Session) -> Scope:
        ids: tuple[int, ...] | None = None
        if self.repos:
            found = stats_repo.repo_ids_by_name(session, self.repos)
            lowered = {n.lower() for n in found}
            missing = [n for n in self.repos if n.lower() not in lowered]
            if missing:
                raise HTTPException(404, detail=f"repo: {missing[0]} is not a known repository")
            ids = tuple(sorted(found.values()))
        return Scope(repo_ids=ids, branch=self.branch, workflow=self.workflow)

    def window(self) -> stats.Window:
        return stats.last_days(self.days, utcnow())


FiltersDep = Annotated[Filters, Depends()]
Ctx = Annotated[AppContext, Depends(get_ctx)]


async def _read(ctx: AppContext, fn: Callable[[Session], T]) -> T:
    def run() -> T:
        with ctx.db.read() as session:
            return fn(session)

    return await asyncio.to_thread(run)


def _answer(result: Any, rows: list[Any], fmt: str | None, name: str) -> Any:
    return export.table(rows, fmt=fmt, name=name) if fmt else result


FILE = {"description": "The main table as CSV or JSON when `format` is given"}
FILES: dict[int | str, dict[str, Any]] = {200: {"content": {"text/csv": {}}, **FILE}}


@router.get("/overview", response_model=Overview, responses=FILES)
async def get_overview(
    ctx: Ctx,
    f: FiltersDep,
    fmt: ExportFormat = None,
    table: Annotated[
        Literal["daily", "branches", "in_progress", "recent"],
        Query(description="Which of the overview's tables `format` exports"),
    ] = "daily",
) -> Any:
    """KPIs with trends, runs per day, branch health, runs in progress, recent runs.

    Tables for export (`table`): the daily series (default), branches, in progress, recent.
    """
    result = await _read(ctx, lambda s: stats.overview(s, scope=f.scope(s), window=f.window()))
    return _answer(result, getattr(result, table), fmt, f"overview-{table.replace('_', '-')}")


@router.get("/breakdown", response_model=Breakdown, responses=FILES)
async def get_breakdown(
    ctx: Ctx,
    f: FiltersDep,
    by: Annotated[Literal["repository", "workflow", "branch"], Query()] = "workflow",
    fmt: ExportFormat = None,
) -> Any:
    """Success and failure rates per repository, workflow or branch."""
    result = await _read(
        ctx, lambda s: stats.breakdown(s, scope=f.scope(s), window=f.window(), by=by)
    )
    return _answer(result, result.rows, fmt, f"rates-by-{by}")


@router.get("/jobs", response_model=JobRates, responses=FILES)
async def get_jobs(
    ctx: Ctx,
    f: FiltersDep,
    durations: Annotated[bool, Query(description="Add p50/p95 durations per job")] = False,
    fmt: ExportFormat = None,
) -> Any:
    """Failure rate per job (per attempt, first attempt, final), daily history, recent failures."""
    result = await _read(
        ctx,
        lambda s: stats.job_rates(s, scope=f.scope(s), window=f.window(), durations=durations),
    )
    return _answer(result, result.jobs, fmt, "job-failure-rates")


@router.get("/durations", response_model=Durations, responses=FILES)
async def get_durations(ctx: Ctx, f: FiltersDep, fmt: ExportFormat = None) -> Any:
    """Duration p50/p95 per workflow and per job, with trends against the previous window."""
    result = await _read(ctx, lambda s: stats.durations(s, scope=f.scope(s), window=f.window()))
    return _answer(result, [*result.workflows, *result.jobs], fmt, "durations")


@router.get("/queue", response_model=QueueTimes, responses=FILES)
async def get_queue(ctx: Ctx, f: FiltersDep, fmt: ExportFormat = None) -> Any:
    """Queue time p50/p95 per runner label and runner group (repository filter only)."""
    result = await _read(ctx, lambda s: stats.queue_times(s, scope=f.scope(s), window=f.window()))
    return _answer(result, result.rows, fmt, "queue-times")


@router.get("/recovery", response_model=Recovery, responses=FILES)
async def get_recovery(ctx: Ctx, f: FiltersDep, fmt: ExportFormat = None) -> Any:
    """MTTR per workflow and branch, time to green per commit, branches broken now."""
    result = await _read(ctx, lambda s: stats.recovery(s, scope=f.scope(s), window=f.window()))
    return _answer(result, result.mttr, fmt, "mttr")


@router.get("/flaky", response_model=Flaky, responses=FILES)
async def get_flaky(ctx: Ctx, f: FiltersDep, fmt: ExportFormat = None) -> Any:
    """Jobs with two conclusions on one commit or a failed-then-passed re-run, per day."""
    result = await _read(ctx, lambda s: stats.flaky(s, scope=f.scope(s), window=f.window()))
    return _answer(result, result.jobs, fmt, "flaky-jobs")


def compare_windows(
    days: int,
    a_from: date | None,
    a_to: date | None,
    b_from: date | None,
    b_to: date | None,
) -> tuple[stats.Window, stats.Window]:
    """Period B defaults to the last ``days``, period A to the equal window before it."""
    for name, value in (("a_from", a_from), ("a_to", a_to), ("b_from", b_from), ("b_to", b_to)):
        if value is not None and not EARLIEST <= value <= LATEST:
            raise HTTPException(422, detail=f"{name}: give a day between {EARLIEST} and {LATEST}")
    b = stats.last_days(days, utcnow())
    if b_from or b_to:
        b = stats.Window(b_from or b_to or b.first, b_to or b_from or b.last)
    _check("b", b)
    a = b.previous()
    if a_from or a_to:
        a = stats.Window(a_from or a_to or a.first, a_to or a_from or a.last)
    _check("a", a)
    return a, b


def _check(name: str, window: stats.Window) -> None:
    if window.last < window.first:
        raise HTTPException(422, detail=f"{name}_to: must not be before {name}_from")
    if window.days > MAX_DAYS:
        raise HTTPException(422, detail=f"{name}: at most {MAX_DAYS} days")


@router.get("/compare", response_model=Compare, responses=FILES)
async def get_compare(
    ctx: Ctx,
    f: FiltersDep,
    a_from: date | None = None,
    a_to: date | None = None,
    b_from: date | None = None,
    b_to: date | None = None,
    fmt: ExportFormat = None,
) -> Any:
    """Two periods side by side: KPIs, and failure rates per workflow and per job."""
    a, b = compare_windows(f.days, a_from, a_to, b_from, b_to)
    result = await _read(ctx, lambda s: stats.compare(s, scope=f.scope(s), a=a, b=b))
    return _answer(result, [*result.workflows, *result.jobs], fmt, "compare")
