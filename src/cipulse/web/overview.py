"""The GitHub Overview (``GET /overview``) and Compare (``GET /compare``) pages.

Design E's dashboard at ``/`` keeps its pushed-pipeline KPIs and live updates (its contracts and
tests stay as they are); the synced GitHub runs get their own overview here, linked from the
navigation. Filters (repository, branch, workflow, window) live in the URL; the filter form
swaps only ``#overview-body`` through htmx (the same template renders the whole page or the
fragment, chosen by the ``HX-Request`` header) and pushes the URL, so every view is a link.
Numbers come from ``stats.service``, the same calls as ``/api/stats``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from starlette.responses import Response

from cipulse.context import AppContext, get_ctx
from cipulse.models import utcnow
from cipulse.stats import repository as stats_repo
from cipulse.stats import routes as stats_routes
from cipulse.stats import service as stats
from cipulse.stats.repository import Scope
from cipulse.web import export
from cipulse.web.templating import templates

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

WINDOWS = (7, 14, 30, 90)
DEFAULT_DAYS = 30
HEADERS = {"Vary": "HX-Request", "Cache-Control": "no-cache"}

# KPI cards: (key in Kpis/trends, label, kind)
CARDS = (
    ("runs_per_day", "Runs per day", "number"),
    ("failure_rate", "Failure rate (every attempt)", "rate"),
    ("first_failure_rate", "First-attempt failure rate", "rate"),
    ("final_failure_rate", "Final failure rate", "rate"),
    ("duration_p50", "Duration p50", "duration"),
    ("duration_p95", "Duration p95", "duration"),
    ("minutes_lost_to_retries", "Minutes lost to retries", "number"),
)


@dataclass(frozen=True)
class View:
    """The filters as they appear in the URL; ``href`` links to a variant of the view."""

    path: str
    repo: str | None
    branch: str | None
    workflow: str | None
    days: int

    def params(self, **changes: Any) -> dict[str, Any]:
        view = replace(self, **changes)
        params = {
            "repo": view.repo,
            "branch": view.branch,
            "workflow": view.workflow,
            "days": view.days,
        }
        return {k: v for k, v in params.items() if v not in (None, "")}

    def href(self, **changes: Any) -> str:
        return f"{self.path}?{urlencode(self.params(**changes))}"

    def export(self, api: str, fmt: str, **extra: Any) -> str:
        return export.link(api, {**self.params(), **extra}, fmt)


def _days(raw: str | None) -> int:
    try:
        value = int(raw or DEFAULT_DAYS)
    except ValueError:
        return DEFAULT_DAYS
    return value if value in WINDOWS else DEFAULT_DAYS


def _clean(raw: str | None) -> str | None:
    value = (raw or "").strip()
    return value[:500] or None


def _scope(session: Session, view: View) -> Scope:
    ids = None
    if view.repo:
        found = stats_repo.repo_ids_by_name(session, [view.repo])
        if not found:
            raise HTTPException(404, detail=f"repo: {view.repo} is not a known repository")
        ids = tuple(found.values())
    return Scope(repo_ids=ids, branch=view.branch, workflow=view.workflow)


def _choices(session: Session, scope: Scope) -> dict[str, Any]:
    return {
        "repos": [r.full_name for r in stats_repo.repositories(session)],
        "workflows": stats_repo.workflow_names(session, Scope(repo_ids=scope.repo_ids)),
    }


def trend_view(trend: Any, kind: str) -> dict[str, Any]:
    """Arrow, tone and sentence of a trend, worded so no data never reads as no change."""
    words = {
        "no_data": "no runs in this window",
        "no_baseline": "no runs in the previous window",
        "too_few": "too few runs to call a trend",
        "flat": "about the same as the previous window",
    }
    unit = " pts" if kind == "rate" else " %"
    change = "" if trend.change is None else f"{trend.change:+g}{unit}"
    if trend.direction in ("up", "down"):
        sentence = f"{change} vs the previous window"
    else:
        sentence = words[trend.direction] + (
            f" ({change})" if change and trend.direction in ("too_few", "flat") else ""
        )
    arrow = {"up": "▲", "down": "▼", "flat": "→"}.get(trend.direction, "")
    tone = "neutral" if trend.better is None else ("good" if trend.better else "bad")
    return {"arrow": arrow, "tone": tone, "sentence": sentence, "direction": trend.direction}


def cards(kpis: Any) -> list[dict[str, Any]]:
    out = []
    for key, label, kind in CARDS:
        value = getattr(kpis, key)
        out.append(
            {
                "key": key,
                "label": label,
                "kind": kind,
                "value": value,
                "trend": trend_view(kpis.trends[key], kind),
                "samples": kpis.trends[key].samples,
            }
        )
    return out


PARTS = {"overview.html": "_overview_body.html", "compare.html": "_compare_body.html"}
TARGETS = {"overview": "overview-body", "compare": "compare-body"}


def _render(
    request: Request, name: str, context: dict[str, Any], fragment: bool, status: int = 200
) -> Response:
    """The whole page, or (htmx) only the body the filters replace."""
    if fragment:
        if name == "error.html":
            name = "_stats_error.html"
            context["target"] = TARGETS[context["section"]]
        name = PARTS.get(name, name)
    return templates.TemplateResponse(request, name, context, status_code=status, headers=HEADERS)


@router.get("/overview", response_class=HTMLResponse, name="overview_page")
def overview_page(
    request: Request,
    ctx: Annotated[AppContext, Depends(get_ctx)],
    repo: str | None = None,
    branch: str | None = None,
    workflow: str | None = None,
    days: str | None = None,
    hx_request: Annotated[str | None, Header()] = None,
) -> Response:
    """KPIs with trends, runs per day, branches broken now, runs in progress, recent runs."""
    now = utcnow()
    fragment = hx_request == "true"
    view = View(request.url.path, _clean(repo), _clean(branch), _clean(workflow), _days(days))
    context: dict[str, Any] = {"now": now, "section": "overview", "view": view}
    context["windows_days"] = WINDOWS
    try:
        with ctx.db.read() as session:
            try:
                scope = _scope(session, view)
            except HTTPException as exc:
                context.update(missing=view.repo, **_choices(session, Scope()))
                return _render(request, "overview.html", context, fragment, exc.status_code)
            context.update(_choices(session, scope))
            if not context["repos"]:
                return _render(request, "overview.html", context, fragment)
            data = stats.overview(session, scope=scope, window=stats.last_days(view.days, now))
            by_workflow = stats.breakdown(
                session, scope=scope, window=stats.last_days(view.days, now), by="workflow"
            )
    except SQLAlchemyError:
        log.exception("the overview could not read the database")
        return _render(request, "error.html", context, fragment, 503)
    context.update(
        data=data,
        cards=cards(data.kpis),
        by_workflow=by_workflow.rows,
        chart=[d.model_dump(mode="json") for d in data.daily],
        broken=[b for b in data.branches if b.broken],
        sync_path=request.url_for("sync_page").path,
    )
    return _render(request, "overview.html", context, fragment)


@router.get("/compare", response_class=HTMLResponse, name="compare_page")
def compare_page(
    request: Request,
    ctx: Annotated[AppContext, Depends(get_ctx)],
    repo: str | None = None,
    branch: str | None = None,
    workflow: str | None = None,
    days: str | None = None,
    a_from: date | None = None,
    a_to: date | None = None,
    b_from: date | None = None,
    b_to: date | None = None,
    hx_request: Annotated[str | None, Header()] = None,
) -> Response:
    """Two periods side by side: KPIs, failure rates per workflow and per job."""
    now = utcnow()
    fragment = hx_request == "true"
    view = View(request.url.path, _clean(repo), _clean(branch), _clean(workflow), _days(days))
    context: dict[str, Any] = {"now": now, "section": "compare", "view": view}
    context["windows_days"] = WINDOWS
    try:
        a, b = stats_routes.compare_windows(view.days, a_from, a_to, b_from, b_to)
    except HTTPException as exc:
        context["problem"] = exc.detail
        b = stats.last_days(view.days, now)
        a = b.previous()
    periods = {"a_from": a.first, "a_to": a.last, "b_from": b.first, "b_to": b.last}
    context.update(a=a, b=b, periods=periods, today=now.date())
    try:
        with ctx.db.read() as session:
            try:
                scope = _scope(session, view)
            except HTTPException:
                context.update(missing=view.repo, **_choices(session, Scope()))
                return _render(request, "compare.html", context, fragment, 404)
            context.update(_choices(session, scope))
            if context["repos"] and "problem" not in context:
                context["data"] = stats.compare(session, scope=scope, a=a, b=b)
    except SQLAlchemyError:
        log.exception("the compare page could not read the database")
        return _render(request, "error.html", context, fragment, 503)
    data = context.get("data")
    if data is not None:
        context["rows"] = [
            (label, kind, getattr(data.a_kpis, key), getattr(data.b_kpis, key))
            for key, label, kind in (*CARDS[:1], ("runs", "Runs", "number"), *CARDS[1:])
        ]
        context["chart"] = {
            "workflows": [r.key for r in data.workflows],
            "a": [r.a.failure_rate for r in data.workflows],
            "b": [r.b.failure_rate for r in data.workflows],
        }
        context["export_params"] = {**view.params(), **{k: str(v) for k, v in periods.items()}}
    return _render(request, "compare.html", context, fragment)
