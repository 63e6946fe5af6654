"""Queries of the artifacts stage: runs to scan, artifacts to fetch, files to list and clean.

Work is claimed with a conditional UPDATE on ``claimed_until`` (as the webhook inbox does), so
several processes can share it; a claim of a dead process on this host is taken back at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from cipulse.claims import claim_pending
from cipulse.models import Artifact, ArtifactFile, ArtifactScan, Repository, Workflow, WorkflowRun

CLAIM_SECONDS = 900.0
RETRY_BASE_SECONDS = 60.0
RETRY_CAP_SECONDS = 6 * 3600.0
MAX_ATTEMPTS = 8


def _insert(session: Session):  # type: ignore[no-untyped-def]
    return sqlite_insert if session.get_bind().dialect.name == "sqlite" else pg_insert


def backoff(attempts: int) -> timedelta:
    """1 min, 2, 4, ... doubling per failed attempt, capped at 6 hours."""
    return timedelta(seconds=min(RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0), RETRY_CAP_SECONDS))


# -- runs whose artifacts are to be listed --------------------------------------------------


def discover_runs(session: Session, *, now: datetime, since: datetime | None, limit: int) -> int:
    """Add a scan row for each completed run (latest attempt) not yet scanned for that attempt.

    A re-run that completes later has a higher attempt and is scanned again (its new artifacts
    are added; known ones are kept). Returns how many rows were added or reopened.
    """
    latest = (
        select(
            WorkflowRun.github_id.label("gid"),
            WorkflowRun.repository_id.label("repo_id"),
            func.max(WorkflowRun.run_attempt).label("attempt"),
            func.max(WorkflowRun.created_at).label("created"),
        )
        .where(WorkflowRun.status == "completed")
        .group_by(WorkflowRun.github_id, WorkflowRun.repository_id)
    )
    if since is not None:
        latest = latest.where(WorkflowRun.created_at >= since)
    sub = latest.subquery()
    rows = session.execute(
        select(sub.c.gid, sub.c.repo_id, sub.c.attempt)
        .outerjoin(ArtifactScan, ArtifactScan.run_github_id == sub.c.gid)
        .where(or_(ArtifactScan.id.is_(None), ArtifactScan.run_attempt < sub.c.attempt))
        .order_by(sub.c.created.desc())
        .limit(limit)
    ).all()
    for gid, repo_id, attempt in rows:
        stmt = _insert(session)(ArtifactScan).values(
            repository_id=repo_id,
            run_github_id=gid,
            run_attempt=attempt,
            state="pending",
            attempts=0,
            next_attempt_at=now,
        )
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=["run_github_id"],
                set_={
                    "run_attempt": attempt,
                    "state": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "last_error": None,
                },
                where=ArtifactScan.run_attempt < attempt,
            )
        )
    return len(rows)


def _claim(session: Session, model: Any, *, now: datetime, limit: int) -> list[int]:
    order = (model.next_attempt_at, model.id.desc())
    return claim_pending(
        session, model, now=now, limit=limit, seconds=CLAIM_SECONDS, order_by=order
    )


def claim_scans(session: Session, *, now: datetime, limit: int = 20) -> list[ArtifactScan]:
    mine = _claim(session, ArtifactScan, now=now, limit=limit)
    return list(session.scalars(select(ArtifactScan).where(ArtifactScan.id.in_(mine))))


def claim_artifacts(session: Session, *, now: datetime, limit: int) -> list[Artifact]:
    mine = _claim(session, Artifact, now=now, limit=limit)
    return list(session.scalars(select(Artifact).where(Artifact.id.in_(mine))))


def next_due(session: Session) -> datetime | None:
    times = [
        session.scalar(select(func.min(m.next_attempt_at)).where(m.state == "pending"))
        for m in (ArtifactScan, Artifact)
    ]
    known = [t for t in times if t is not None]
    return min(known) if known else None


def fail(row: ArtifactScan | Artifact, *, error: str, now: datetime) -> str:
    """Count a failed attempt: retried later with backoff, or given up after MAX_ATTEMPTS."""
    row.attempts += 1
    row.last_error = error[:2000]
    row.claimed_until = None
    row.claimed_by = None
    if row.attempts >= MAX_ATTEMPTS:
        row.state = "failed"
        return f"given up after {row.attempts} attempts"
    row.next_attempt_at = now + backoff(row.attempts)
    return f"attempt {row.attempts}, retried at {row.next_attempt_at:%H:%M} UTC"


def postpone(
    row: ArtifactScan | Artifact, *, until: datetime | None, error: str, now: datetime
) -> None:
    """Try again at ``until`` (GitHub's rate-limit reset) without counting an attempt."""
    row.last_error = error[:2000]
    row.claimed_until = None
    row.claimed_by = None
    row.next_attempt_at = max(until or now + timedelta(minutes=15), now)


def upsert_artifacts(
    session: Session,
    *,
    repo_id: int,
    run_github_id: int,
    items: Sequence[dict[str, Any]],
    now: datetime,
) -> int:
    """Artifacts as GitHub lists them; new ones start ``pending`` (``expired`` if GitHub says
    so). Known ones keep their state, except that an expiry is recorded. Returns new ones."""
    added = 0
    for item in items:
        github_id = item["id"]
        row = session.scalar(select(Artifact).where(Artifact.github_id == github_id))
        expired = bool(item.get("expired"))
        if row is None:
            row = Artifact(
                github_id=github_id,
                repository_id=repo_id,
                run_github_id=run_github_id,
                state="expired" if expired else "pending",
                attempts=0,
                next_attempt_at=now,
                file_count=0,
                total_bytes=0,
                discovered_at=now,
            )
            session.add(row)
            added += 1
        elif expired and row.state == "pending":
            row.state = "expired"
        row.name = str(item.get("name") or "artifact")[:500]
        row.size_in_bytes = int(item.get("size_in_bytes") or 0)
        row.digest = item.get("digest")
        row.created_at = item.get("created_at")
        row.expires_at = item.get("expires_at")
    session.flush()
    return added


def add_file(
    session: Session,
    *,
    artifact_id: int,
    path: str,
    kind: str,
    content_type: str,
    size: int,
    sha256: str,
    storage_key: str,
    now: datetime,
) -> ArtifactFile:
    row = ArtifactFile(
        artifact_id=artifact_id,
        path=path,
        kind=kind,
        content_type=content_type,
        size=size,
        sha256=sha256,
        storage_key=storage_key,
        created_at=now,
    )
    session.add(row)
    return row


# -- reads ----------------------------------------------------------------------------------


def repo_name(session: Session, repo_id: int) -> str | None:
    return session.scalar(select(Repository.full_name).where(Repository.id == repo_id))


def repo_ids(session: Session, names: Sequence[str]) -> list[int]:
    wanted = [n.lower() for n in names]
    return list(
        session.scalars(select(Repository.id).where(func.lower(Repository.full_name).in_(wanted)))
    )


def run_row_id(session: Session, run_github_id: int) -> int | None:
    """The stored row of the run's latest attempt (what JUnit reports hang on)."""
    return session.scalar(
        select(WorkflowRun.id)
        .where(WorkflowRun.github_id == run_github_id)
        .order_by(WorkflowRun.run_attempt.desc())
        .limit(1)
    )


def artifacts_of_run(session: Session, run_github_id: int) -> list[Artifact]:
    return list(
        session.scalars(
            select(Artifact)
            .where(Artifact.run_github_id == run_github_id)
            .order_by(Artifact.name, Artifact.github_id)
        )
    )


def scan_of_run(session: Session, run_github_id: int) -> ArtifactScan | None:
    return session.scalar(select(ArtifactScan).where(ArtifactScan.run_github_id == run_github_id))


def files_of(session: Session, artifact_ids: Sequence[int]) -> list[ArtifactFile]:
    if not artifact_ids:
        return []
    return list(
        session.scalars(
            select(ArtifactFile)
            .where(ArtifactFile.artifact_id.in_(artifact_ids), ArtifactFile.removed_at.is_(None))
            .order_by(ArtifactFile.artifact_id, ArtifactFile.path)
        )
    )


def file_with_artifact(session: Session, file_id: int) -> tuple[ArtifactFile, Artifact] | None:
    row = session.execute(
        select(ArtifactFile, Artifact)
        .join(Artifact, Artifact.id == ArtifactFile.artifact_id)
        .where(ArtifactFile.id == file_id)
    ).first()
    return (row[0], row[1]) if row else None


def search_files(
    session: Session,
    *,
    repo_id: int | None,
    run_github_id: int | None,
    artifact_id: int | None,
    kind: str | None,
    limit: int,
    offset: int,
) -> list[tuple[ArtifactFile, Artifact, str]]:
    query = (
        select(ArtifactFile, Artifact, Repository.full_name)
        .join(Artifact, Artifact.id == ArtifactFile.artifact_id)
        .join(Repository, Repository.id == Artifact.repository_id)
        .where(ArtifactFile.removed_at.is_(None))
    )
    if repo_id is not None:
        query = query.where(Artifact.repository_id == repo_id)
    if run_github_id is not None:
        query = query.where(Artifact.run_github_id == run_github_id)
    if artifact_id is not None:
        query = query.where(Artifact.github_id == artifact_id)
    if kind is not None:
        query = query.where(ArtifactFile.kind == kind)
    query = query.order_by(ArtifactFile.id.desc()).limit(limit).offset(offset)
    return [(f, a, name) for f, a, name in session.execute(query).all()]


def workflows(session: Session, *, repo_id: int | None) -> list[tuple[Workflow, str, int, Any]]:
    counts = (
        select(
            WorkflowRun.workflow_id.label("wid"),
            func.count(func.distinct(WorkflowRun.github_id)).label("runs"),
            func.max(WorkflowRun.created_at).label("last"),
        )
        .group_by(WorkflowRun.workflow_id)
        .subquery()
    )
    query = (
        select(Workflow, Repository.full_name, counts.c.runs, counts.c.last)
        .join(Repository, Repository.id == Workflow.repository_id)
        .outerjoin(counts, counts.c.wid == Workflow.id)
        .order_by(Repository.full_name, Workflow.name)
    )
    if repo_id is not None:
        query = query.where(Workflow.repository_id == repo_id)
    return [(w, name, runs or 0, last) for w, name, runs, last in session.execute(query).all()]


def workflow_by_github_id(session: Session, github_id: int) -> Workflow | None:
    return session.scalar(select(Workflow).where(Workflow.github_id == github_id))


def runs_of_workflow(
    session: Session, *, workflow_id: int, branch: str | None, limit: int
) -> list[WorkflowRun]:
    """The latest attempt of each run of the workflow, newest first."""
    latest = (
        select(WorkflowRun.github_id, func.max(WorkflowRun.run_attempt).label("attempt"))
        .where(WorkflowRun.workflow_id == workflow_id)
        .group_by(WorkflowRun.github_id)
        .subquery()
    )
    query = select(WorkflowRun).join(
        latest,
        and_(
            latest.c.github_id == WorkflowRun.github_id,
            latest.c.attempt == WorkflowRun.run_attempt,
        ),
    )
    if branch:
        query = query.where(WorkflowRun.head_branch == branch)
    query = query.order_by(WorkflowRun.created_at.desc(), WorkflowRun.github_id.desc())
    return list(session.scalars(query.limit(limit)))


def artifact_counts(session: Session, run_github_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
    """Per run: (artifacts, files kept)."""
    if not run_github_ids:
        return {}
    rows = session.execute(
        select(
            Artifact.run_github_id,
            func.count(func.distinct(Artifact.id)),
            func.count(ArtifactFile.id),
        )
        .outerjoin(
            ArtifactFile,
            and_(ArtifactFile.artifact_id == Artifact.id, ArtifactFile.removed_at.is_(None)),
        )
        .where(Artifact.run_github_id.in_(run_github_ids))
        .group_by(Artifact.run_github_id)
    ).all()
    return {gid: (arts, files) for gid, arts, files in rows}


def count_files_since(session: Session, *, since: datetime, repo_ids: Sequence[int]) -> int:
    if not repo_ids:
        return 0
    query = (
        select(func.count(ArtifactFile.id))
        .join(Artifact, Artifact.id == ArtifactFile.artifact_id)
        .where(ArtifactFile.created_at >= since, Artifact.repository_id.in_(repo_ids))
    )
    return session.scalar(query) or 0


# -- cleanup --------------------------------------------------------------------------------


def old_artifacts(session: Session, *, before: datetime, limit: int) -> list[Artifact]:
    """Artifacts with files still stored whose GitHub creation (or our fetch) is before."""
    when = func.coalesce(Artifact.created_at, Artifact.processed_at, Artifact.discovered_at)
    return list(
        session.scalars(
            select(Artifact)
            .where(Artifact.state == "done", Artifact.removed_at.is_(None), when < before)
            .order_by(Artifact.id)
            .limit(limit)
        )
    )


def mark_removed(session: Session, *, artifact_id: int, now: datetime) -> None:
    session.execute(
        update(ArtifactFile)
        .where(ArtifactFile.artifact_id == artifact_id, ArtifactFile.removed_at.is_(None))
        .values(removed_at=now)
    )
    session.execute(
        update(Artifact).where(Artifact.id == artifact_id).values(removed_at=now, state="removed")
    )


def run_with_repo(session: Session, run_github_id: int) -> tuple[WorkflowRun, Repository] | None:
    """The latest stored attempt of a run and its repository."""
    row = session.execute(
        select(WorkflowRun, Repository)
        .join(Repository, Repository.id == WorkflowRun.repository_id)
        .where(WorkflowRun.github_id == run_github_id)
        .order_by(WorkflowRun.run_attempt.desc())
        .limit(1)
    ).first()
    return (row[0], row[1]) if row else None
