"""Artifacts: from GitHub's listing to classified files in storage, and the reads over them.

Files go to storage under ``artifacts/{repo_id}/{run_id}/{artifact_id}/{path}`` (run and
artifact ids are GitHub's). Extraction writes there directly, file by file (each write atomic);
when an artifact is refused or fails half-way its whole folder is deleted before the error is
recorded, so a refused artifact leaves nothing behind.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy.orm import Session

from cipulse.artifacts import classify, extract
from cipulse.artifacts import repository as repo
from cipulse.artifacts.schemas import (
    ArtifactFileOut,
    ArtifactOut,
    FileOut,
    RunArtifacts,
    WorkflowOut,
    WorkflowRunOut,
)
from cipulse.github.schemas import parse_time
from cipulse.models import Artifact, ArtifactFile
from cipulse.settings import Settings
from cipulse.storage import Storage, StorageKeyError, safe_key

log = logging.getLogger(__name__)

JUNIT_MAX_BYTES = 64 * 1024 * 1024


def limits(settings: Settings) -> extract.Limits:
    mb = 1024 * 1024
    return extract.Limits(
        max_files=settings.artifact_max_files,
        max_total_bytes=int(settings.artifact_max_total_mb * mb),
        max_file_bytes=int(settings.max_file_size_mb * mb),
        max_ratio=settings.artifact_max_ratio,
    )


def prefix(*, repo_id: int, run_github_id: int, artifact_github_id: int) -> str:
    return safe_key("artifacts", str(repo_id), str(run_github_id), str(artifact_github_id))


def listing_items(data: Any) -> list[dict[str, Any]]:
    """GitHub's artifacts listing page as plain values; malformed items are left out."""
    items = data.get("artifacts") if isinstance(data, dict) else None
    out = []
    for item in items or []:
        if not isinstance(item, dict) or not isinstance(item.get("id"), int):
            continue
        out.append(
            {
                "id": item["id"],
                "name": str(item.get("name") or "artifact"),
                "size_in_bytes": item.get("size_in_bytes")
                if isinstance(item.get("size_in_bytes"), int)
                else 0,
                "expired": bool(item.get("expired")),
                "digest": item.get("digest") if isinstance(item.get("digest"), str) else None,
                "created_at": parse_time(item.get("created_at")),
                "expires_at": parse_time(item.get("expires_at")),
            }
        )
    return out


# -- extraction -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredFile:
    path: str
    key: str
    kind: str
    content_type: str
    size: int
    sha256: str
    head: bytes


def extract_to_storage(
    *, store: Storage, zip_path: Path, folder: str, limits: extract.Limits
) -> list[StoredFile]:
    """Extract and classify; on any failure the artifact's folder is emptied, then re-raised."""

    @contextmanager
    def sink(path: str) -> Iterator[BinaryIO]:
        try:
            key = safe_key(folder, path)
        except StorageKeyError as exc:
            raise extract.Refused(f"entry {path!r} cannot be stored ({exc})") from None
        with store.open_write(key) as out:
            yield out

    try:
        result = extract.extract(zip_path, sink, limits)
        stored = []
        for item in result.files:
            key = safe_key(folder, item.path)
            whole = None
            if (
                classify.extension(item.path) == "json" or item.head.lstrip()[:1] in (b"{", b"[")
            ) and item.size <= classify.JSON_PARSE_LIMIT:
                with store.open_read(key) as stream:
                    whole = stream.read()
            kind = classify.classify(item.path, item.head, size=item.size, read_all=whole)
            stored.append(
                StoredFile(
                    path=item.path,
                    key=key,
                    kind=kind.kind,
                    content_type=kind.content_type,
                    size=item.size,
                    sha256=item.sha256,
                    head=item.head,
                )
            )
        return stored
    except BaseException:
        try:
            store.delete_prefix(folder)
        except Exception:
            log.exception("could not remove the partly extracted %s", folder)
        raise


def record_files(
    session: Session,
    *,
    artifact: Artifact,
    files: list[StoredFile],
    store: Storage,
    now: datetime,
) -> int:
    """Store the file rows and mark the artifact done; JUnit reports are handed on."""
    for item in files:
        repo.add_file(
            session,
            artifact_id=artifact.id,
            path=item.path,
            kind=item.kind,
            content_type=item.content_type,
            size=item.size,
            sha256=item.sha256,
            storage_key=item.key,
            now=now,
        )
    artifact.state = "done"
    artifact.last_error = None
    artifact.claimed_until = None
    artifact.claimed_by = None
    artifact.processed_at = now
    artifact.file_count = len(files)
    artifact.total_bytes = sum(f.size for f in files)
    session.flush()
    _hand_over_junit(session, artifact=artifact, files=files, store=store)
    return len(files)


def _hand_over_junit(
    session: Session, *, artifact: Artifact, files: list[StoredFile], store: Storage
) -> None:
    """JUnit XML found by content goes to the test reports stage; its failure is not ours."""
    try:
        from cipulse.testreports import parse as junit_parse
        from cipulse.testreports import service as testreports
    except ImportError:
        return
    run_row = None
    for item in files:
        if item.kind != classify.TEXT or item.size > JUNIT_MAX_BYTES:
            continue
        if not junit_parse.looks_like_junit(item.head):
            continue
        if run_row is None:
            run_row = repo.run_row_id(session, artifact.run_github_id)
        with store.open_read(item.key) as stream:
            data = stream.read()
        try:
            with session.begin_nested():
                testreports.store_report(
                    session,
                    data=data,
                    repository_id=artifact.repository_id,
                    workflow_run_id=run_row,
                    job_id=None,
                    source=f"artifact {artifact.name}/{item.path}",
                    name=item.path,
                )
        except Exception as exc:  # a broken report must not lose the artifact's files
            log.warning("JUnit report %s/%s not stored: %s", artifact.name, item.path, exc)


# -- reads ----------------------------------------------------------------------------------


def _artifact_out(row: Artifact, files: list[ArtifactFile]) -> ArtifactOut:
    return ArtifactOut(
        id=row.github_id,
        name=row.name,
        size_in_bytes=row.size_in_bytes,
        state=row.state,
        error=row.last_error,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at if row.state == "pending" else None,
        created_at=row.created_at,
        expires_at=row.expires_at,
        processed_at=row.processed_at,
        file_count=row.file_count,
        total_bytes=row.total_bytes,
        files=[
            ArtifactFileOut(
                id=f.id,
                path=f.path,
                kind=f.kind,
                content_type=f.content_type,
                size=f.size,
            )
            for f in files
        ],
    )


def list_for_run(session: Session, *, run_id: int) -> RunArtifacts:
    """A run's artifacts and their files; ``run_id`` is GitHub's run id (as in page URLs)."""
    rows = repo.artifacts_of_run(session, run_id)
    files = repo.files_of(session, [r.id for r in rows])
    by_artifact: dict[int, list[ArtifactFile]] = {}
    for f in files:
        by_artifact.setdefault(f.artifact_id, []).append(f)
    scan = repo.scan_of_run(session, run_id)
    return RunArtifacts(
        run_id=run_id,
        scanned=scan is not None and scan.state == "done",
        scan_error=scan.last_error if scan is not None else None,
        artifacts=[_artifact_out(r, by_artifact.get(r.id, [])) for r in rows],
    )


def file_out(file: ArtifactFile, artifact: Artifact, repo_name: str) -> FileOut:
    return FileOut(
        id=file.id,
        repo=repo_name,
        run_id=artifact.run_github_id,
        artifact_id=artifact.github_id,
        artifact_name=artifact.name,
        path=file.path,
        name=file.path.rsplit("/", 1)[-1],
        kind=file.kind,
        content_type=file.content_type,
        size=file.size,
        sha256=file.sha256,
        created_at=file.created_at,
        content_url=f"/api/files/{file.id}/content",
        page_url=f"/files/{file.id}",
    )


def search_files(
    session: Session,
    *,
    repo_id: int | None = None,
    run_id: int | None = None,
    artifact_id: int | None = None,
    kind: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[FileOut]:
    rows = repo.search_files(
        session,
        repo_id=repo_id,
        run_github_id=run_id,
        artifact_id=artifact_id,
        kind=kind,
        limit=limit,
        offset=offset,
    )
    return [file_out(f, a, name) for f, a, name in rows]


def workflows(session: Session, *, repo_id: int | None = None) -> list[WorkflowOut]:
    return [
        WorkflowOut(
            id=w.github_id,
            repo=name,
            name=w.name,
            path=w.path,
            state=w.state,
            html_url=w.html_url,
            runs=runs,
            last_run_at=last,
        )
        for w, name, runs, last in repo.workflows(session, repo_id=repo_id)
    ]


def workflow_runs(
    session: Session, *, workflow_github_id: int, branch: str | None = None, limit: int = 50
) -> list[WorkflowRunOut] | None:
    """Runs of a workflow (GitHub's id), newest first; None when the workflow is unknown."""
    workflow = repo.workflow_by_github_id(session, workflow_github_id)
    if workflow is None:
        return None
    name = repo.repo_name(session, workflow.repository_id) or ""
    runs = repo.runs_of_workflow(session, workflow_id=workflow.id, branch=branch, limit=limit)
    counts = repo.artifact_counts(session, [r.github_id for r in runs])
    return [
        WorkflowRunOut(
            id=r.github_id,
            workflow_id=workflow.github_id,
            repo=name,
            name=r.name,
            run_number=r.run_number,
            run_attempt=r.run_attempt,
            status=r.status,
            conclusion=r.conclusion,
            branch=r.head_branch,
            head_sha=r.head_sha,
            event=r.event,
            html_url=r.html_url,
            created_at=r.created_at,
            updated_at=r.updated_at,
            artifacts=counts.get(r.github_id, (0, 0))[0],
            files=counts.get(r.github_id, (0, 0))[1],
        )
        for r in runs
    ]
