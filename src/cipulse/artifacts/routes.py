"""Design D's JSON contracts (workflows, their runs, extracted files) and file contents."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, BinaryIO

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import StreamingResponse

from cipulse.artifacts import repository as repo
from cipulse.artifacts import service as artifacts
from cipulse.artifacts import serving
from cipulse.artifacts.schemas import FileKind, FileOut, RunArtifacts, WorkflowOut, WorkflowRunOut
from cipulse.context import AppContext, get_ctx
from cipulse.jobstats import repository as jobstats_repo
from cipulse.params import MAX_GITHUB_ID, GitHubId, RowId

router = APIRouter(tags=["artifacts"])

CHUNK = 256 * 1024
REPO_QUERY = Query(max_length=201, description="owner/name; all repositories when left out")


def _repo_id(ctx: AppContext, name: str | None) -> int | None:
    if name is None:
        return None
    with ctx.db.read() as session:
        found = jobstats_repo.repo_by_name(session, name)
        if found is None:
            raise HTTPException(404, detail=f"repo: {name} is not a known repository")
        return found.id


@router.get("/api/workflows", response_model=list[WorkflowOut])
def list_workflows(
    ctx: Annotated[AppContext, Depends(get_ctx)],
    repo: Annotated[str | None, REPO_QUERY] = None,
) -> list[WorkflowOut]:
    """Workflows of the synced repositories (design D), with their number of runs."""
    repo_id = _repo_id(ctx, repo)
    with ctx.db.read() as session:
        return artifacts.workflows(session, repo_id=repo_id)


@router.get(
    "/api/workflows/{workflow_id}/runs",
    response_model=list[WorkflowRunOut],
    responses={404: {"description": "No such workflow"}},
)
def list_workflow_runs(
    ctx: Annotated[AppContext, Depends(get_ctx)],
    workflow_id: GitHubId,
    branch: Annotated[str | None, Query(max_length=255)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[WorkflowRunOut]:
    """Run history of one workflow (GitHub's workflow id), newest first, latest attempts."""
    with ctx.db.read() as session:
        runs = artifacts.workflow_runs(
            session, workflow_github_id=workflow_id, branch=branch, limit=limit
        )
    if runs is None:
        raise HTTPException(404, detail=f"workflow_id: no workflow {workflow_id} is stored")
    return runs


@router.get("/api/runs/{run_id}/artifacts", response_model=RunArtifacts)
def run_artifacts(ctx: Annotated[AppContext, Depends(get_ctx)], run_id: GitHubId) -> RunArtifacts:
    """A run's artifacts (GitHub's run id): state, refusal or failure reason, and files."""
    with ctx.db.read() as session:
        return artifacts.list_for_run(session, run_id=run_id)


@router.get("/api/files", response_model=list[FileOut])
def list_files(
    ctx: Annotated[AppContext, Depends(get_ctx)],
    repo: Annotated[str | None, REPO_QUERY] = None,
    run_id: Annotated[
        int | None, Query(ge=1, le=MAX_GITHUB_ID, description="GitHub's run id")
    ] = None,
    artifact_id: Annotated[
        int | None, Query(ge=1, le=MAX_GITHUB_ID, description="GitHub's artifact id")
    ] = None,
    kind: FileKind | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[FileOut]:
    """Files extracted from artifacts (design D), newest first, filtered as asked."""
    repo_id = _repo_id(ctx, repo)
    with ctx.db.read() as session:
        return artifacts.search_files(
            session,
            repo_id=repo_id,
            run_id=run_id,
            artifact_id=artifact_id,
            kind=kind,
            limit=limit,
            offset=offset,
        )


@router.get(
    "/api/files/{file_id}",
    response_model=FileOut,
    responses={404: {"description": "No such file"}},
)
def get_file(ctx: Annotated[AppContext, Depends(get_ctx)], file_id: RowId) -> FileOut:
    with ctx.db.read() as session:
        found = repo.file_with_artifact(session, file_id)
        if found is None or found[0].removed_at is not None:
            raise HTTPException(404, detail=f"file_id: no file {file_id}")
        name = repo.repo_name(session, found[1].repository_id) or ""
        return artifacts.file_out(found[0], found[1], name)


def _stream(handle: BinaryIO, first: bytes) -> Iterator[bytes]:
    with handle:
        if first:
            yield first
        while chunk := handle.read(CHUNK):
            yield chunk


@router.get(
    "/api/files/{file_id}/content",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/octet-stream": {}}},
        404: {"description": "No such file"},
        410: {"description": "Removed by the cleanup"},
    },
)
def file_content(
    ctx: Annotated[AppContext, Depends(get_ctx)],
    file_id: RowId,
    download: Annotated[bool, Query(description="Always as an attachment")] = False,
) -> StreamingResponse:
    """The file's bytes, served so that nothing in them can run in the dashboard's origin:
    ``nosniff``, a sandboxing CSP, and HTML, SVG, XML or binary files as attachments."""
    with ctx.db.read() as session:
        found = repo.file_with_artifact(session, file_id)
    if found is None:
        raise HTTPException(404, detail=f"file_id: no file {file_id}")
    file, _artifact = found
    if file.removed_at is not None:
        raise HTTPException(410, detail="this file was removed by the cleanup of old files")
    try:
        handle = ctx.storage.open_read(file.storage_key)
    except FileNotFoundError:
        raise HTTPException(410, detail="this file is no longer in storage") from None
    first = handle.read(CHUNK)
    media, headers = serving.headers(
        path=file.path,
        kind=file.kind,
        head=first[:1024],
        sha256=file.sha256,
        download=download,
    )
    headers["Content-Length"] = str(file.size)
    return StreamingResponse(_stream(handle, first), media_type=media, headers=headers)
