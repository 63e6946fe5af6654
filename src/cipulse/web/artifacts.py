"""A run's artifacts page and the file viewer (design D), rendered on the server.

``/repos/{owner}/{repo}/runs/{run_id}/artifacts`` lists what became of each artifact (extracted,
expired, refused and why, waiting for a retry) with its files; ``/files/{file_id}`` shows one
file: an image inline, JSON as a foldable tree, text as numbered lines a page at a time, binary
as a download. The page never embeds artifact bytes as markup: text is escaped by Jinja, and
images and downloads come from ``/api/files/{id}/content`` with its protective headers.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.responses import Response

from cipulse.artifacts import classify, viewer
from cipulse.artifacts import repository as artifacts_repo
from cipulse.artifacts import service as artifacts
from cipulse.context import AppContext, get_ctx
from cipulse.models import utcnow
from cipulse.web.templating import templates

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

NO_STORE = {"Cache-Control": "no-cache"}
STATE_LABELS = {
    "pending": "waiting",
    "done": "extracted",
    "expired": "expired",
    "refused": "refused",
    "failed": "failed",
    "removed": "removed",
}


def filesize(value: int | None) -> str:
    """1,234 bytes, 12.3 kB, 4.5 MB: a size a person reads at a glance."""
    if value is None:
        return "—"
    if value < 1024:
        return f"{value:,} byte{'' if value == 1 else 's'}"
    size = value / 1024
    if size < 1024:
        return f"{size:,.1f} kB"
    size /= 1024
    return f"{size:,.1f} MB" if size < 1024 else f"{size / 1024:,.1f} GB"


# Registered here: only this module's pages use it.
templates.env.filters["filesize"] = filesize


def _error(request: Request, context: dict[str, Any]) -> Response:
    return templates.TemplateResponse(
        request, "error.html", context, status_code=503, headers=NO_STORE
    )


def _missing(request: Request, context: dict[str, Any], what: str) -> Response:
    context["missing_what"] = what
    return templates.TemplateResponse(
        request, "artifact_missing.html", context, status_code=404, headers=NO_STORE
    )


@router.get(
    "/repos/{owner}/{repo}/runs/{run_id}/artifacts",
    response_class=HTMLResponse,
    name="run_artifacts_page",
)
def run_artifacts_page(
    request: Request,
    ctx: Annotated[AppContext, Depends(get_ctx)],
    owner: str,
    repo: str,
    run_id: int,
) -> Response:
    """The artifacts of one run (GitHub's run id) and their files."""
    now = utcnow()
    context: dict[str, Any] = {"now": now, "section": None}
    try:
        with ctx.db.read() as session:
            found = artifacts_repo.run_with_repo(session, run_id)
            if found is None or found[1].full_name.lower() != f"{owner}/{repo}".lower():
                return _missing(request, context, f"run {run_id} of {owner}/{repo}")
            run, repository = found
            data = artifacts.list_for_run(session, run_id=run_id)
    except SQLAlchemyError:
        log.exception("the artifacts page could not read the database")
        return _error(request, context)
    images = [(a, f) for a in data.artifacts for f in a.files if f.kind == classify.IMAGE][:24]
    context.update(
        run=run,
        repo=repository,
        data=data,
        images=images,
        state_labels=STATE_LABELS,
        github_enabled=ctx.settings.github_token is not None
        or ctx.settings.github_app_id is not None,
    )
    return templates.TemplateResponse(request, "artifacts.html", context, headers=NO_STORE)


@router.get("/files/{file_id}", response_class=HTMLResponse, name="file_page")
def file_page(
    request: Request,
    ctx: Annotated[AppContext, Depends(get_ctx)],
    file_id: int,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    view: Annotated[str | None, Query(pattern="^(tree|text)$")] = None,
) -> Response:
    """One extracted file, shown by its kind."""
    context: dict[str, Any] = {"now": utcnow(), "section": None}
    try:
        with ctx.db.read() as session:
            found = artifacts_repo.file_with_artifact(session, file_id)
            if found is None:
                return _missing(request, context, f"file {file_id}")
            file, artifact = found
            header = artifacts_repo.run_with_repo(session, artifact.run_github_id)
    except SQLAlchemyError:
        log.exception("the file page could not read the database")
        return _error(request, context)
    context.update(
        file=file,
        artifact=artifact,
        run=header[0] if header else None,
        repo=header[1] if header else None,
        name=file.path.rsplit("/", 1)[-1],
        content_url=f"/api/files/{file.id}/content",
        view=view,
    )
    if file.removed_at is not None:
        context["removed"] = True
        return templates.TemplateResponse(request, "file.html", context, headers=NO_STORE)
    try:
        context.update(_body(ctx, file.kind, file.storage_key, file.size, page, view))
    except FileNotFoundError:
        context["removed"] = True
    return templates.TemplateResponse(request, "file.html", context, headers=NO_STORE)


def _body(
    ctx: AppContext, kind: str, key: str, size: int, page: int, view: str | None
) -> dict[str, Any]:
    """What the viewer needs for this kind: a JSON tree, or a page of text lines."""
    out: dict[str, Any] = {}
    if kind == classify.JSON and view != "text" and size <= viewer.TREE_MAX_BYTES:
        with ctx.storage.open_read(key) as stream:
            data = stream.read()
        try:
            out["tree"] = viewer.json_tree(viewer.parse_json(data))
            return out
        except viewer.TooLarge:
            out["tree_note"] = "too large to fold: shown as text"
        except ValueError as exc:
            out["tree_note"] = f"not valid JSON ({exc}): shown as text"
    if kind in (classify.JSON, classify.TEXT):
        with ctx.storage.open_read(key) as stream:
            text = viewer.text_page(stream, page=page)
        out["text"] = text
        out["page"] = page
        out["per_page"] = viewer.PAGE_LINES
        out["max_line"] = viewer.MAX_LINE_CHARS
    return out
