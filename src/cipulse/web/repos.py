"""A repository (``/repos/{owner}/{repo}``: workflows, branches, runs) and one of its
workflows (``.../workflows/{workflow_id}``: run history, duration and success trends).

Filters live in the URL. htmx asks for the runs table alone (``HX-Target: runs``) when a
filter changes or a page turns, so the first paint and the update share one template.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.responses import Response

from cipulse.context import AppContext, get_ctx
from cipulse.explore import service as explore
from cipulse.models import utcnow
from cipulse.params import MAX_GITHUB_ID
from cipulse.web.navigation import (
    NO_STORE,
    PER_PAGE,
    Crumb,
    View,
    base_context,
    db_error,
    not_found,
    read_view,
    valid_name,
)
from cipulse.web.templating import templates

router = APIRouter(include_in_schema=False)
RUNS_TARGET = "runs"
MAX_ID = MAX_GITHUB_ID


def repo_crumbs(request: Request, view: View, owner: str, repo: str) -> list[Crumb]:
    orgs_path = request.url_for("orgs_page").path
    repo_path = request.url_for("repo_page", owner=owner, repo=repo).path
    return [
        Crumb("Organizations", view.with_days(orgs_path)),
        Crumb(owner, view.with_days(request.url_for("org_page", owner=owner).path)),
        Crumb(repo, view.with_days(repo_path)),
    ]


def _api_href(path: str, view: View) -> str:
    query = view.query()
    return f"{path}?{query}" if query else f"{path}?days={view.days}"


def _fragment(hx_request: str | None, hx_target: str | None) -> bool:
    return hx_request == "true" and hx_target == RUNS_TARGET


@router.get("/repos/{owner}/{repo}", response_class=HTMLResponse, name="repo_page")
def repo_page(
    request: Request,
    owner: str,
    repo: str,
    ctx: Annotated[AppContext, Depends(get_ctx)],
    hx_request: Annotated[str | None, Header()] = None,
    hx_target: Annotated[str | None, Header()] = None,
) -> Response:
    """Workflows with latest status and success rate, active branches, recent runs."""
    view = read_view(request)
    crumbs = repo_crumbs(request, view, owner, repo)
    if not valid_name(owner, repo):
        return not_found(request, f"Repository {owner}/{repo}", crumbs)
    now = utcnow()
    try:
        with ctx.db.read() as session:
            data = explore.repo_overview(
                session,
                full_name=f"{owner}/{repo}",
                days=view.days,
                now=now,
                filters=view.filters,
                page=view.page,
                per_page=PER_PAGE,
            )
    except SQLAlchemyError:
        return db_error(request, "repository")
    if data is None:
        return not_found(request, f"Repository {owner}/{repo}", crumbs[:2])
    repo_path = request.url_for("repo_page", owner=owner, repo=repo).path
    context: dict[str, Any] = base_context(request)
    context.update(
        view=view,
        now=now,
        data=data,
        crumbs=[*crumbs[:2], Crumb(data.repo.name, None)],
        repo_path=repo_path,
        workflows_by_id={w.id: w.name for w in data.workflows},
        branches=[b.name for b in data.branches],
        runs_api=_api_href(request.url_for("api_repo", owner=owner, repo=repo).path, view),
    )
    name = "_nav_runs.html" if _fragment(hx_request, hx_target) else "repo.html"
    context["page"] = data.recent_runs
    context["show_workflow"] = True
    return templates.TemplateResponse(request, name, context, headers=NO_STORE)


@router.get(
    "/repos/{owner}/{repo}/workflows/{workflow_id}",
    response_class=HTMLResponse,
    name="workflow_page",
)
def workflow_page(
    request: Request,
    owner: str,
    repo: str,
    workflow_id: str,
    ctx: Annotated[AppContext, Depends(get_ctx)],
    hx_request: Annotated[str | None, Header()] = None,
    hx_target: Annotated[str | None, Header()] = None,
) -> Response:
    """Run history (paged), duration p50/p95 per day, success rate over time."""
    view = read_view(request)
    crumbs = repo_crumbs(request, view, owner, repo)
    wid = int(workflow_id) if workflow_id.isdigit() and 0 < int(workflow_id) <= MAX_ID else None
    if not valid_name(owner, repo) or wid is None:
        return not_found(request, f"Workflow {workflow_id}", crumbs)
    now = utcnow()
    try:
        with ctx.db.read() as session:
            data = explore.workflow_detail(
                session,
                full_name=f"{owner}/{repo}",
                workflow_id=wid,
                days=view.days,
                now=now,
                filters=view.filters,
                page=view.page,
                per_page=PER_PAGE,
            )
    except SQLAlchemyError:
        return db_error(request, "workflow")
    if data is None:
        return not_found(request, f"Workflow {workflow_id} of {owner}/{repo}", crumbs)
    repo_path = request.url_for("repo_page", owner=owner, repo=repo).path
    api = request.url_for("api_workflow_runs", owner=owner, repo=repo, workflow_id=wid).path
    context: dict[str, Any] = base_context(request)
    context.update(
        view=view,
        now=now,
        data=data,
        crumbs=[*crumbs, Crumb(data.workflow.name, None)],
        repo_path=repo_path,
        workflows_by_id={},
        branches=[],
        page=data.runs,
        show_workflow=False,
        runs_api=_api_href(api, view),
        daily=[d.model_dump(mode="json") for d in data.daily],
    )
    name = "_nav_runs.html" if _fragment(hx_request, hx_target) else "workflow.html"
    return templates.TemplateResponse(request, name, context, headers=NO_STORE)
