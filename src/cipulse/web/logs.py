"""The job-log viewer (``/repos/{owner}/{repo}/jobs/{job_id}/log``), rendered on the server.

A page shows ``PER_PAGE`` lines read from the one or two stored chunks that hold them, so a
100 MB log opens as fast as a small one. It opens at the log's most telling error (or the line
in ``?line=``); ``##[group]`` folds are ``<details>`` elements, closed unless they hold the line
in focus or an error; errors and warnings are listed on top; ``?q=`` searches the whole log on
the server, chunk by chunk. ``static/log.js`` only follows a ``#L<n>`` link to the page holding
that line and scrolls to the focus: the page reads fine without it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup
from sqlalchemy.exc import SQLAlchemyError
from starlette.responses import Response

from cipulse.context import AppContext, get_ctx
from cipulse.logs import parse, service
from cipulse.logs.chunks import Index
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

PER_PAGE = 1000
ISSUES_SHOWN = 50


@dataclass
class Row:
    number: int
    kind: str
    time: str | None
    timestamp: str | None
    html: Markup


@dataclass
class Block:
    """Lines outside any fold (``header`` None), or one fold: its title row and its lines."""

    header: Row | None
    rows: list[Row] = field(default_factory=list)
    continued: bool = False  # the fold opened before this page
    open: bool = False


def _row(line: parse.LogLine) -> Row:
    html = parse.ansi_to_html(line.text)
    if line.title:
        html = f"{html} <span class='log-props'>({parse.ansi_to_html(line.title)})</span>"
    return Row(line.number, line.kind, line.short_time, line.timestamp, Markup(html))  # noqa: S704 (escaped by ansi_to_html)


def blocks(page: service.Page, *, focus: int | None) -> list[Block]:
    """The page's lines grouped into folds; ``##[endgroup]`` lines close a fold and are hidden."""
    out: list[Block] = []
    current = Block(header=None)
    if page.open_group is not None:
        number, title = page.open_group
        header = Row(number, "group", None, None, Markup(parse.ansi_to_html(title)))  # noqa: S704 (escaped by ansi_to_html)
        current = Block(header=header, continued=True)
    for line in page.lines:
        if line.kind == "group":
            out.append(current)
            current = Block(header=_row(line))
        elif line.kind == "endgroup":
            out.append(current)
            current = Block(header=None)
        else:
            current.rows.append(_row(line))
    out.append(current)
    for block in out:
        if block.header is not None:
            numbers = {r.number for r in block.rows} | {block.header.number}
            block.open = (focus in numbers) or any(r.kind == "error" for r in block.rows)
    return [b for b in out if b.header is not None or b.rows]


def _int(raw: str | None, *, low: int = 1, high: int = 2**31 - 1) -> int | None:
    if raw is None or not raw.isdigit() or len(raw) > len(str(high)):  # GitHub ids: 19 digits
        return None
    value = int(raw)
    return value if low <= value <= high else None


def _load(ctx: AppContext, full_name: str, job_id: int) -> dict[str, Any] | None:
    with ctx.db.read() as session:
        info = service.find(session, job_github_id=job_id)
        if info is None or info.repository.full_name.lower() != full_name.lower():
            return None
        row = info.log
        return {
            "job": {
                "id": info.job.github_id,
                "name": info.job.name,
                "status": info.job.status,
                "conclusion": info.job.conclusion,
                "html_url": info.job.html_url,
            },
            "state": row.state if row is not None else "none",
            "prefix": row.storage_key if row is not None else None,
            "attempts": row.attempts if row is not None else 0,
            "last_error": row.last_error if row is not None else None,
            "next_attempt_at": row.next_attempt_at if row is not None else None,
            "fetched_at": row.fetched_at if row is not None else None,
            "stored_bytes": row.stored_bytes if row is not None else None,
            "fetch_all": ctx.settings.fetch_all_logs,
        }


def _view(
    ctx: AppContext, prefix: str, *, page_no: int | None, line: int | None, query: str | None
) -> dict[str, Any]:
    index: Index = service.read_index(ctx.storage, prefix=prefix)
    pages = max(1, -(-index.lines // PER_PAGE))
    focus = line
    if focus is None and page_no is None and not query and index.first_error:
        focus = index.first_error[0]
    if focus is not None:
        focus = min(focus, max(index.lines, 1))
        page_no = (focus - 1) // PER_PAGE + 1
    page_no = min(page_no or 1, pages)
    start = (page_no - 1) * PER_PAGE + 1
    page = service.read_page(ctx.storage, prefix=prefix, index=index, start=start, limit=PER_PAGE)
    found = None
    if query:
        found = service.search(ctx.storage, prefix=prefix, index=index, query=query)
    return {
        "index": index,
        "page": page,
        "page_no": page_no,
        "pages": pages,
        "per_page": PER_PAGE,
        "blocks": blocks(page, focus=focus),
        "focus": focus,
        "found": found,
        "issues_shown": ISSUES_SHOWN,
    }


@router.get(
    "/repos/{owner}/{repo}/jobs/{job_id}/log", response_class=HTMLResponse, name="job_log_page"
)
async def job_log_page(
    request: Request,
    owner: str,
    repo: str,
    job_id: str,
    ctx: Annotated[AppContext, Depends(get_ctx)],
) -> Response:
    """A job's log: a page of lines around the first error, folds, errors on top, search."""
    view = read_view(request)
    crumbs = repo_crumbs(request, view, owner, repo)
    jid = _int(job_id, high=MAX_ID)
    if not valid_name(owner, repo) or jid is None:
        return not_found(request, f"Job {job_id}", crumbs)
    params = request.query_params
    query = (params.get("q") or "").strip()[: service.MAX_QUERY_CHARS] or None
    try:
        data = await asyncio.to_thread(_load, ctx, f"{owner}/{repo}", jid)
    except SQLAlchemyError:
        return db_error(request, "job log")
    if data is None:
        return not_found(request, f"Job {job_id} of {owner}/{repo}", crumbs)
    repo_path = request.url_for("repo_page", owner=owner, repo=repo).path
    job_path = f"{repo_path}/jobs/{jid}"
    admin = ctx.settings.admin_token
    context: dict[str, Any] = base_context(request)
    context.update(
        now=utcnow(),
        data=data,
        crumbs=[*crumbs, Crumb(data["job"]["name"], job_path), Crumb("Log", None)],
        job_path=job_path,
        log_path=f"{job_path}/log",
        raw_path=request.url_for("get_job_log_text", job_id=jid).path,
        api_path=request.url_for("get_job_log", job_id=jid).path,
        query=query,
        admin_required=bool(admin and admin.get_secret_value()),
    )
    if data["state"] != "stored" or data["prefix"] is None:
        status = 200 if data["state"] in ("pending", "none") else 404
        return templates.TemplateResponse(
            request, "log_state.html", context, status_code=status, headers=NO_STORE
        )
    try:
        shown = await asyncio.to_thread(
            _view,
            ctx,
            data["prefix"],
            page_no=_int(params.get("page")),
            line=_int(params.get("line")),
            query=query,
        )
    except (FileNotFoundError, ValueError):
        log.exception("the stored log of job %s cannot be read", jid)
        context["data"] = {**data, "state": "unreadable"}
        return templates.TemplateResponse(
            request, "log_state.html", context, status_code=500, headers=NO_STORE
        )
    context.update(shown)
    return templates.TemplateResponse(request, "log.html", context, headers=NO_STORE)
