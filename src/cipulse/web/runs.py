"""The Run page (jobs as a graph ordered by ``needs``, attempts side by side, failing tests,
artifacts) and the Job page (steps as a timeline, queue time, runner, previous executions).

A run still going refreshes its graph live: ``nav.js`` listens to ``GET /api/stream`` and asks
htmx for the ``run-live`` fragment when an event names this run (polling every 15 s too, in
case the stream is cut). Failing tests and artifacts come from their own packages' services;
when one is not installed the section says so instead of failing the page.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.responses import Response

from cipulse.context import AppContext, get_ctx
from cipulse.explore import files
from cipulse.explore import repository as explore_repo
from cipulse.explore import service as explore
from cipulse.explore.schemas import RunOut
from cipulse.models import utcnow
from cipulse.web.navigation import (
    NO_STORE,
    Crumb,
    base_context,
    db_error,
    not_found,
    read_view,
    valid_name,
)
from cipulse.web.repos import MAX_ID, repo_crumbs
from cipulse.web.templating import templates

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
LIVE_TARGET = "run-live"


def _github_id(raw: str) -> int | None:
    return int(raw) if raw.isdigit() and 0 < int(raw) <= MAX_ID else None


def _section(module: str, call: Any) -> dict[str, Any]:
    """Another package's data for a section, or why it is not available."""
    try:
        loaded = importlib.import_module(module)
    except ImportError:
        return {"available": False, "note": "not available in this installation"}
    try:
        return {"available": True, "data": call(loaded)}
    except SQLAlchemyError:
        log.exception("the run page could not read %s", module)
        return {"available": False, "note": "could not be read now"}


def _extras(ctx: AppContext, full_name: str, out: RunOut) -> dict[str, Any]:
    with ctx.db.read() as session:
        repo = explore_repo.repository(session, full_name)
        rows = explore_repo.attempts(
            session, repo_id=repo.id if repo else -1, run_github_id=out.run.id
        )
        row_id = next((r.id for r in rows if r.run_attempt == out.shown_attempt), None)
        tests = _section(
            "cipulse.testreports.service",
            lambda m: m.failures_for_run(session, workflow_run_id=row_id) if row_id else [],
        )
        artifacts = _section(
            "cipulse.artifacts.service", lambda m: m.list_for_run(session, run_id=out.run.id)
        )
    return {"tests": tests, "artifacts": artifacts}


@router.get("/repos/{owner}/{repo}/runs/{run_id}", response_class=HTMLResponse, name="run_page")
async def run_page(
    request: Request,
    owner: str,
    repo: str,
    run_id: str,
    ctx: Annotated[AppContext, Depends(get_ctx)],
    hx_request: Annotated[str | None, Header()] = None,
    hx_target: Annotated[str | None, Header()] = None,
) -> Response:
    """A run: its jobs by ``needs`` (or start time), live while running; attempts side by side."""
    view = read_view(request)
    crumbs = repo_crumbs(request, view, owner, repo)
    rid = _github_id(run_id)
    raw_attempt = request.query_params.get("attempt", "")
    attempt = int(raw_attempt) if raw_attempt.isdigit() and len(raw_attempt) < 6 else None
    if not valid_name(owner, repo) or rid is None:
        return not_found(request, f"Run {run_id}", crumbs)
    try:
        out = await files.run_data(ctx, f"{owner}/{repo}", rid, attempt)
        extras = await asyncio.to_thread(_extras, ctx, f"{owner}/{repo}", out) if out else {}
    except SQLAlchemyError:
        return db_error(request, "run")
    if out is None:
        return not_found(request, f"Run {run_id} of {owner}/{repo}", crumbs)
    repo_path = request.url_for("repo_page", owner=owner, repo=repo).path
    wf_crumb = []
    if out.run.workflow_id is not None:
        wf_path = f"{repo_path}/workflows/{out.run.workflow_id}"
        wf_crumb = [Crumb(out.workflow_name or "Workflow", view.with_days(wf_path))]
    context: dict[str, Any] = base_context(request)
    stages: dict[int, list[Any]] = {}
    for node in out.jobs:
        stages.setdefault(node.stage, []).append(node)
    context.update(
        view=view,
        now=utcnow(),
        data=out,
        crumbs=[*crumbs, *wf_crumb, Crumb(f"Run #{out.run.run_number or out.run.id}", None)],
        repo_path=repo_path,
        stages=[stages[k] for k in sorted(stages)],
        names={n.id: n.name for n in out.jobs},
        live=out.run.status != "completed",
        stream_path=request.url_for("stream").path,
        api_path=request.url_for("api_run", owner=owner, repo=repo, run_id=rid).path,
        **extras,
    )
    fragment = hx_request == "true" and hx_target == LIVE_TARGET
    name = "_run_live.html" if fragment else "run.html"
    return templates.TemplateResponse(request, name, context, headers=NO_STORE)


@router.get("/repos/{owner}/{repo}/jobs/{job_id}", response_class=HTMLResponse, name="job_page")
def job_page(
    request: Request,
    owner: str,
    repo: str,
    job_id: str,
    ctx: Annotated[AppContext, Depends(get_ctx)],
) -> Response:
    """A job: steps as a timeline, queue time, runner, previous executions, log and GitHub."""
    view = read_view(request)
    crumbs = repo_crumbs(request, view, owner, repo)
    jid = _github_id(job_id)
    if not valid_name(owner, repo) or jid is None:
        return not_found(request, f"Job {job_id}", crumbs)
    try:
        with ctx.db.read() as session:
            out = explore.job_detail(session, full_name=f"{owner}/{repo}", job_id=jid)
    except SQLAlchemyError:
        return db_error(request, "job")
    if out is None:
        return not_found(request, f"Job {job_id} of {owner}/{repo}", crumbs)
    repo_path = request.url_for("repo_page", owner=owner, repo=repo).path
    trail = list(crumbs)
    if out.workflow_id is not None:
        wf_path = view.with_days(f"{repo_path}/workflows/{out.workflow_id}")
        trail.append(Crumb(out.workflow_name or "Workflow", wf_path))
    run_path = f"{repo_path}/runs/{out.run.id}"
    if out.attempt != out.run.attempt:
        run_path += f"?attempt={out.attempt}"
    trail += [Crumb(f"Run #{out.run.run_number or out.run.id}", run_path), Crumb(out.name, None)]
    steps = [s.model_dump(mode="json") for s in out.steps]
    context: dict[str, Any] = base_context(request)
    context.update(
        view=view,
        now=utcnow(),
        data=out,
        crumbs=trail,
        repo_path=repo_path,
        run_path=run_path,
        steps_json=steps,
        log_path=f"{repo_path}/jobs/{out.id}/log",
        api_path=request.url_for("api_job", owner=owner, repo=repo, job_id=jid).path,
    )
    return templates.TemplateResponse(request, "job.html", context, headers=NO_STORE)
