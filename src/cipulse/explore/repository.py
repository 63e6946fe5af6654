"""Queries of the navigation pages. Runs are stored one row per attempt: lists show each run
once, by its latest attempt (the highest ``run_attempt`` of its GitHub id)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, exists, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, aliased

from cipulse.models import (
    Installation,
    Job,
    Repository,
    Step,
    Workflow,
    WorkflowFile,
    WorkflowRun,
)

# A filter on a run's state matches its status (queued, in_progress, ...) or its conclusion.
STATUS_FILTERS = (
    "queued",
    "waiting",
    "in_progress",
    "completed",
    "success",
    "failure",
    "cancelled",
    "skipped",
    "timed_out",
    "neutral",
    "action_required",
    "startup_failure",
)


@dataclass(frozen=True)
class RunFilter:
    repo_id: int
    workflow_id: int | None = None  # our row id
    branch: str | None = None
    event: str | None = None
    status: str | None = None
    since: datetime | None = None


def installations(session: Session) -> Sequence[Installation]:
    return session.scalars(select(Installation).order_by(Installation.account_login)).all()


def repositories(session: Session, owner: str | None = None) -> Sequence[Repository]:
    query = select(Repository).order_by(func.lower(Repository.full_name))
    if owner is not None:
        query = query.where(func.lower(Repository.owner) == owner.lower())
    return session.scalars(query).all()


def repository(session: Session, full_name: str) -> Repository | None:
    return session.scalar(
        select(Repository).where(func.lower(Repository.full_name) == full_name.lower())
    )


def workflows(session: Session, repo_id: int) -> Sequence[Workflow]:
    return session.scalars(
        select(Workflow).where(Workflow.repository_id == repo_id).order_by(Workflow.name)
    ).all()


def workflow(session: Session, repo_id: int, github_id: int) -> Workflow | None:
    return session.scalar(
        select(Workflow).where(Workflow.repository_id == repo_id, Workflow.github_id == github_id)
    )


def workflows_by_id(session: Session, ids: Sequence[int]) -> dict[int, Workflow]:
    if not ids:
        return {}
    rows = session.scalars(select(Workflow).where(Workflow.id.in_(set(ids))))
    return {w.id: w for w in rows}


# What health and trends need of a run: plain rows, not ORM objects (a window can be large).
LIGHT = (
    WorkflowRun.github_id,
    WorkflowRun.run_attempt,
    WorkflowRun.workflow_id,
    WorkflowRun.status,
    WorkflowRun.conclusion,
    WorkflowRun.created_at,
    WorkflowRun.run_started_at,
    WorkflowRun.updated_at,
)


def window_runs(session: Session, f: RunFilter) -> Sequence[Any]:
    """Latest attempts of the runs that pass ``f``, as light rows (attributes as on a run)."""
    return session.execute(_latest(f).with_only_columns(*LIGHT)).all()


def _latest(f: RunFilter) -> Select[Any]:
    """Latest attempts of the runs that pass ``f``, newest first.

    "No later attempt exists" probes the (github_id, run_attempt) unique index per row, so the
    window is read once through the (repository, created_at) or (workflow, created_at) index;
    grouping the window by run and joining back was several times slower on a large history.
    """
    later = aliased(WorkflowRun)
    query = select(WorkflowRun).where(
        WorkflowRun.repository_id == f.repo_id,
        ~exists().where(
            later.github_id == WorkflowRun.github_id, later.run_attempt > WorkflowRun.run_attempt
        ),
    )
    if f.workflow_id is not None:
        query = query.where(WorkflowRun.workflow_id == f.workflow_id)
    if f.branch:
        query = query.where(WorkflowRun.head_branch == f.branch)
    if f.event:
        query = query.where(WorkflowRun.event == f.event)
    if f.since is not None:
        query = query.where(WorkflowRun.created_at >= f.since)
    if f.status:
        query = query.where((WorkflowRun.status == f.status) | (WorkflowRun.conclusion == f.status))
    return query


def state_counts(session: Session, f: RunFilter) -> Sequence[Any]:
    """(workflow_id, status, conclusion, runs) over the latest attempts that pass ``f``: what
    health needs, counted by the database instead of read row by row."""
    query = _latest(f).with_only_columns(
        WorkflowRun.workflow_id, WorkflowRun.status, WorkflowRun.conclusion, func.count()
    )
    return session.execute(
        query.group_by(WorkflowRun.workflow_id, WorkflowRun.status, WorkflowRun.conclusion)
    ).all()


def run_page(
    session: Session, f: RunFilter, *, offset: int, limit: int
) -> tuple[int, Sequence[WorkflowRun]]:
    query = _latest(f)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(WorkflowRun.created_at.desc(), WorkflowRun.github_id.desc())
        .offset(offset)
        .limit(limit)
    ).all()
    return total, rows


def newest_run(
    session: Session, *, repo_id: int, branch: str | None = None, workflow_id: int | None = None
) -> WorkflowRun | None:
    """The newest run's latest attempt (attempts share their run's ``created_at``)."""
    query = select(WorkflowRun).where(WorkflowRun.repository_id == repo_id)
    if branch is not None:
        query = query.where(WorkflowRun.head_branch == branch)
    if workflow_id is not None:
        query = query.where(WorkflowRun.workflow_id == workflow_id)
    return session.scalar(
        query.order_by(
            WorkflowRun.created_at.desc(),
            WorkflowRun.github_id.desc(),
            WorkflowRun.run_attempt.desc(),
        ).limit(1)
    )


def active_branches(
    session: Session, *, repo_id: int, since: datetime, limit: int
) -> list[tuple[str, int]]:
    """Branches with runs in the window, most recently active first, with their run counts."""
    rows = session.execute(
        select(
            WorkflowRun.head_branch,
            func.count(func.distinct(WorkflowRun.github_id)),
            func.max(WorkflowRun.created_at).label("last"),
        )
        .where(
            WorkflowRun.repository_id == repo_id,
            WorkflowRun.created_at >= since,
            WorkflowRun.head_branch.is_not(None),
        )
        .group_by(WorkflowRun.head_branch)
        .order_by(func.max(WorkflowRun.created_at).desc())
        .limit(limit)
    ).all()
    return [(str(branch), int(count)) for branch, count, _last in rows]


def attempts(session: Session, *, repo_id: int, run_github_id: int) -> Sequence[WorkflowRun]:
    return session.scalars(
        select(WorkflowRun)
        .where(WorkflowRun.repository_id == repo_id, WorkflowRun.github_id == run_github_id)
        .order_by(WorkflowRun.run_attempt)
    ).all()


def jobs_of(session: Session, run_row_ids: Sequence[int]) -> Sequence[Job]:
    if not run_row_ids:
        return []
    return session.scalars(
        select(Job)
        .where(Job.run_id.in_(run_row_ids))
        .order_by(Job.run_attempt, Job.created_at, Job.github_id)
    ).all()


def job(session: Session, github_id: int) -> tuple[Job, WorkflowRun] | None:
    row = session.execute(
        select(Job, WorkflowRun)
        .join(WorkflowRun, WorkflowRun.id == Job.run_id)
        .where(Job.github_id == github_id)
    ).first()
    return (row[0], row[1]) if row is not None else None


def steps(session: Session, job_id: int) -> Sequence[Step]:
    return session.scalars(select(Step).where(Step.job_id == job_id).order_by(Step.number)).all()


def previous_executions(
    session: Session, *, workflow_id: int | None, repo_id: int, name: str, job_id: int, limit: int
) -> Sequence[tuple[Job, WorkflowRun]]:
    """Other executions of a job with this name in the same workflow, newest first."""
    query = (
        select(Job, WorkflowRun)
        .join(WorkflowRun, WorkflowRun.id == Job.run_id)
        .where(Job.name == name, Job.id != job_id, WorkflowRun.repository_id == repo_id)
    )
    if workflow_id is not None:
        query = query.where(WorkflowRun.workflow_id == workflow_id)
    rows = session.execute(
        query.order_by(Job.started_at.desc(), Job.github_id.desc()).limit(limit)
    ).all()
    return [(row[0], row[1]) for row in rows]


# -- the workflow-file cache -----------------------------------------------------------------


def cached_file(session: Session, *, repo_id: int, path: str, ref: str) -> WorkflowFile | None:
    return session.scalar(
        select(WorkflowFile).where(
            WorkflowFile.repository_id == repo_id,
            WorkflowFile.path == path,
            WorkflowFile.ref == ref,
        )
    )


def store_file(
    session: Session,
    *,
    repo_id: int,
    path: str,
    ref: str,
    content: str | None,
    fetched_at: datetime,
) -> None:
    """Idempotent: a second fetch of the same file at the same commit changes nothing."""
    insert = sqlite_insert if session.get_bind().dialect.name == "sqlite" else pg_insert
    stmt = insert(WorkflowFile).values(
        repository_id=repo_id,
        path=path,
        ref=ref,
        found=content is not None,
        content=content,
        size=len(content.encode()) if content is not None else 0,
        fetched_at=fetched_at,
    )
    session.execute(stmt.on_conflict_do_nothing(index_elements=["repository_id", "path", "ref"]))
