"""The pages: the dashboard here, the jobs and sync pages in their own modules.

The dashboard shows design E's KPI cards and recent runs, the daily chart, a line on the GitHub
sync, and the GitHub runs in progress ("Running now", kept live by ``static/live.js``).

One route renders the whole page or only the recent-runs table: htmx asks for the table with
``HX-Request``/``HX-Target`` headers, so the live refresh and the first paint share one template
and cannot drift apart. The page reads through the analytics service like the JSON API does.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.responses import Response

from cipulse.activity import service as activity
from cipulse.analytics import service as analytics
from cipulse.context import AppContext, get_ctx
from cipulse.models import utcnow
from cipulse.web import (
    alerts,
    artifacts,
    deliveries,
    jobs,
    live_panel,
    logs,
    orgs,
    overview,
    repos,
    runs,
    sync_status,
    test_reports,
)
from cipulse.web.templating import templates

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
router.include_router(jobs.router)
router.include_router(overview.router)
router.include_router(sync_status.router)
router.include_router(deliveries.router)
router.include_router(alerts.router)
router.include_router(orgs.router)
router.include_router(repos.router)
router.include_router(runs.router)
router.include_router(logs.router)
router.include_router(artifacts.router)
router.include_router(test_reports.router)

# minutes -> (selector label, phrase used in the cards)
WINDOWS: dict[int, tuple[str, str]] = {
    1440: ("24 h", "last 24 hours"),
    10080: ("7 d", "last 7 days"),
    43200: ("30 d", "last 30 days"),
}
DEFAULT_WINDOW = 1440
RECENT_RUNS = 20
RUNNING_NOW = 20  # cards in "Running now"; live.js asks /api/runs/in-progress for as many
CHART_DAYS = 30
RUNS_TARGET = "recent-runs"
# The same URL answers with a page or a fragment; caches must keep them apart.
VARY = {"Vary": "HX-Request, HX-Target", "Cache-Control": "no-cache"}


def window_minutes(raw: str | None) -> int:
    """The selected window; anything else falls back to 24 h rather than an error page."""
    try:
        minutes = int(raw or DEFAULT_WINDOW)
    except ValueError:
        return DEFAULT_WINDOW
    return minutes if minutes in WINDOWS else DEFAULT_WINDOW


def _base_context(request: Request, window: int, now: datetime) -> dict[str, Any]:
    return {
        "windows": WINDOWS,
        "window": window,
        "window_phrase": WINDOWS[window][1],
        "now": now,
        "dashboard_path": request.url_for("dashboard").path,
        "section": "dashboard",
    }


@router.get("/", response_class=HTMLResponse, name="dashboard")
def dashboard(
    request: Request,
    ctx: Annotated[AppContext, Depends(get_ctx)],
    minutes: str | None = None,
    hx_request: Annotated[str | None, Header()] = None,
    hx_target: Annotated[str | None, Header()] = None,
) -> Response:
    """The whole page, or only the recent-runs table when htmx asks for ``#recent-runs``."""
    window = window_minutes(minutes)
    fragment = hx_request == "true" and hx_target == RUNS_TARGET
    now = utcnow()
    context = _base_context(request, window, now)
    try:
        with ctx.db.read() as session:
            runs = analytics.recent_runs(session, limit=RECENT_RUNS)
            if not fragment:
                summary = analytics.summary(session, minutes=window, now=now)
                daily = analytics.daily(session, days=CHART_DAYS, now=now)
                statuses = sync_status.repo_statuses(session, ctx.sync.syncing())
                running = activity.in_progress(session, now=now, limit=RUNNING_NOW)
    except SQLAlchemyError:
        log.exception("the dashboard could not read the database")
        name = "_runs_error.html" if fragment else "error.html"
        return templates.TemplateResponse(request, name, context, status_code=503, headers=VARY)

    context["runs"] = runs
    if fragment:
        return templates.TemplateResponse(request, "_recent_runs.html", context, headers=VARY)
    token = ctx.settings.ingest_token
    context.update(
        summary=summary,
        daily=[day.model_dump(mode="json") for day in daily],
        empty=not runs,
        ingest_url=str(request.url_for("post_run_event")),
        ingest_token_required=bool(token and token.get_secret_value()),
        ws_path=request.url_for("ws_metrics").path,
        daily_path=request.url_for("get_daily").path,
        github=sync_status.github_line(statuses),
        sync_path=request.url_for("sync_page").path,
        running=live_panel.cards(running),
        running_data=[run.model_dump(mode="json") for run in running],
        github_known=bool(statuses),
        stream_path=request.url_for("stream").path,
        in_progress_path=f"{request.url_for('runs_in_progress').path}?limit={RUNNING_NOW}",
    )
    return templates.TemplateResponse(request, "dashboard.html", context, headers=VARY)
