"""The test pages: ``GET /tests`` (most failing, flaky, slowest) and ``GET /tests/{id}``.

Every choice (tab, window, project, search, page) lives in the URL, so a view can be shared and
the tabs are plain links. Both pages read through ``testreports.service``, the same calls as the
JSON API under ``/api/tests``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.responses import Response

from cipulse.context import AppContext, get_ctx
from cipulse.models import utcnow
from cipulse.params import MAX_ROW_ID
from cipulse.testreports import service as testreports
from cipulse.web import formatting
from cipulse.web.templating import templates

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

VIEWS = {
    "failing": ("Most failing", "failing"),
    "flaky": ("Flaky", "failing"),
    "slowest": ("Slowest", "slowest"),
    "all": ("All tests", "name"),
}
WINDOWS = (1, 7, 14, 30, 90)
PAGE_SIZE = 50
HISTORY = 100
NO_STORE = {"Cache-Control": "no-cache"}


@dataclass(frozen=True)
class View:
    path: str
    view: str
    days: int
    project: str | None
    q: str | None
    page: int

    def href(self, **changes: Any) -> str:
        changed = replace(self, **({"page": 1} | changes))
        params: dict[str, str | int] = {"view": changed.view, "days": changed.days}
        if changed.project:
            params["project"] = changed.project
        if changed.q:
            params["q"] = changed.q
        if changed.page > 1:
            params["page"] = changed.page
        return f"{self.path}?{urlencode(params)}"


def _int(raw: str | None, default: int, allowed: tuple[int, ...] | None = None) -> int:
    try:
        value = int(raw or default)
    except ValueError:
        return default
    if allowed is not None and value not in allowed:
        return default
    return max(value, 1)


def seconds(value: float | None) -> str:
    """Test durations are mostly under a second: ``34 ms``, ``1.25 s``, then ``6m 12s``."""
    if value is None:
        return "—"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 10:
        return f"{value:.2f} s"
    return formatting.duration(value)


def _error(request: Request, context: dict[str, Any]) -> Response:
    return templates.TemplateResponse(
        request, "error.html", context, status_code=503, headers=NO_STORE
    )


@router.get("/tests", response_class=HTMLResponse, name="tests_page")
def tests_page(
    request: Request,
    ctx: Annotated[AppContext, Depends(get_ctx)],
    view: str | None = None,
    days: str | None = None,
    project: str | None = None,
    q: str | None = None,
    page: str | None = None,
) -> Response:
    """Tests over a window: most failing, flaky, slowest, or all of them by name."""
    now = utcnow()
    default_days = ctx.settings.flaky_window_days
    windows = tuple(sorted({*WINDOWS, default_days}))
    current = View(
        path=request.url.path,
        view=view if view in VIEWS else "failing",
        days=_int(days, default_days, windows),
        project=(project or "").strip()[:201] or None,
        q=(q or "").strip()[:200] or None,
        page=min(_int(page, 1), 10_000),
    )
    context: dict[str, Any] = {"now": now, "section": "tests", "seconds": seconds}
    since = now - timedelta(days=current.days)
    try:
        with ctx.db.read() as session:
            projects = testreports.projects(session)
            flaky = testreports.flaky_tests(session, since=since, project=current.project)
            if current.view == "flaky":
                if current.q:
                    needle = current.q.lower()
                    flaky = [
                        t
                        for t in flaky
                        if needle in t.name.lower()
                        or needle in t.classname.lower()
                        or needle in t.suite.lower()
                    ]
                listing = None
            else:
                listing = testreports.list_tests(
                    session,
                    since=since,
                    project=current.project,
                    query=current.q,
                    sort=VIEWS[current.view][1],
                    only_failing=current.view == "failing",
                    limit=PAGE_SIZE + 1,  # one more says whether there is a next page
                    offset=(current.page - 1) * PAGE_SIZE,
                )
            total = testreports.count_tests(session, since=since, project=current.project)
    except SQLAlchemyError:
        log.exception("the tests page could not read the database")
        return _error(request, context)
    items = listing.items[:PAGE_SIZE] if listing else []
    context.update(
        view=current,
        views=VIEWS,
        day_windows=windows,
        projects=projects,
        listing=listing,
        items=items,
        flaky=flaky,
        flaky_count=len(flaky),
        tests_total=total,
        has_next=bool(listing and len(listing.items) > PAGE_SIZE),
        ingest_url=str(request.url_for("post_test_report")),
        api_path=request.url_for("get_tests").path,
        page_size=PAGE_SIZE,
    )
    return templates.TemplateResponse(request, "tests.html", context, headers=NO_STORE)


@router.get("/tests/{test_id}", response_class=HTMLResponse, name="test_page")
def test_page(
    request: Request,
    test_id: int,
    ctx: Annotated[AppContext, Depends(get_ctx)],
    days: str | None = None,
) -> Response:
    """One test: counts, a chart of duration and outcome per result, and its history."""
    now = utcnow()
    window = _int(days, 90, (7, 14, 30, 90, 365))
    context: dict[str, Any] = {"now": now, "section": "tests", "seconds": seconds}
    try:
        if not 0 < test_id <= MAX_ROW_ID:
            detail = None  # no row has such an id (and SQLite could not even compare it)
        else:
            with ctx.db.read() as session:
                detail = testreports.test_detail(
                    session,
                    test_case_id=test_id,
                    since=now - timedelta(days=window),
                    limit=HISTORY,
                )
    except SQLAlchemyError:
        log.exception("the test page could not read the database")
        return _error(request, context)
    if detail is None:
        context.update(test_id=test_id, tests_path=request.url_for("tests_page").path)
        return templates.TemplateResponse(
            request, "tests_missing.html", context, status_code=404, headers=NO_STORE
        )
    chart = [
        {
            "at": entry.reported_at.isoformat(),
            "outcome": entry.outcome,
            "duration": entry.duration_seconds,
            "flaky": entry.flaky,
            "commit": (entry.commit_sha or "")[:7],
            "label": f"#{entry.run_number}" if entry.run_number else (entry.ci_run or ""),
        }
        for entry in reversed(detail.history)
    ]
    context.update(
        detail=detail,
        test=detail.test,
        history=detail.history,
        chart=chart,
        days=window,
        day_windows=(7, 14, 30, 90, 365),
        tests_path=request.url_for("tests_page").path,
        api_path=request.url_for("get_test", test_id=test_id).path,
    )
    return templates.TemplateResponse(request, "tests_detail.html", context, headers=NO_STORE)
