"""Queries for the job failure-rate view: counted in SQL, one pass per question."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from cipulse.models import Job, Repository, SyncState, WorkflowRun

SUCCESS = ("success", "neutral")
FAILURE = ("failure", "timed_out", "startup_failure")


def _scope(repo_id: int, branch: str | None, since: datetime) -> list[Any]:
    conditions = [WorkflowRun.repository_id == repo_id, WorkflowRun.created_at >= since]
    if branch is not None:
        conditions.append(WorkflowRun.head_branch == branch)
    return conditions


def _joined(stmt: Any, repo_id: int, branch: str | None, since: datetime) -> Any:
    return stmt.join(WorkflowRun, WorkflowRun.id == Job.run_id).where(
        *_scope(repo_id, branch, since), Job.status == "completed"
    )


failures_expr = func.sum(case((Job.conclusion.in_(FAILURE), 1), else_=0))
successes_expr = func.sum(case((Job.conclusion.in_(SUCCESS), 1), else_=0))


def counts_by_job(
    session: Session, repo_id: int, branch: str | None, since: datetime
) -> Sequence[Any]:
    return session.execute(
        _joined(select(Job.name, successes_expr, failures_expr), repo_id, branch, since).group_by(
            Job.name
        )
    ).all()


def daily_by_job(
    session: Session, repo_id: int, branch: str | None, since: datetime
) -> list[tuple[str, date, int, int]]:
    day = func.date(WorkflowRun.created_at)
    rows = session.execute(
        _joined(
            select(Job.name, day, successes_expr, failures_expr), repo_id, branch, since
        ).group_by(Job.name, day)
    ).all()
    out = []
    for name, raw_day, successes, failures in rows:
        parsed = date.fromisoformat(raw_day) if isinstance(raw_day, str) else raw_day
        if isinstance(parsed, datetime):
            parsed = parsed.date()
        out.append((name, parsed, int(successes or 0), int(failures or 0)))
    return out


def recent_failures(
    session: Session, repo_id: int, branch: str | None, since: datetime, per_job: int
) -> Sequence[Any]:
    ranked = _joined(
        select(
            Job.name,
            WorkflowRun.github_id,
            WorkflowRun.run_number,
            WorkflowRun.run_attempt,
            WorkflowRun.html_url,
            WorkflowRun.created_at,
            Job.html_url.label("job_url"),
            Job.conclusion,
            func.row_number()
            .over(
                partition_by=Job.name,
                order_by=(WorkflowRun.created_at.desc(), Job.github_id.desc()),
            )
            .label("rank"),
        ).where(Job.conclusion.in_(FAILURE)),
        repo_id,
        branch,
        since,
    ).subquery()
    return session.execute(
        select(ranked).where(ranked.c.rank <= per_job).order_by(ranked.c.name, ranked.c.rank)
    ).all()


def flaky_counts(
    session: Session, repo_id: int, branch: str | None, since: datetime
) -> dict[str, int]:
    """Per job name: runs where it failed in one attempt and passed in a later one."""
    failed = _joined(
        select(Job.name, WorkflowRun.github_id, WorkflowRun.run_attempt).where(
            Job.conclusion.in_(FAILURE)
        ),
        repo_id,
        branch,
        since,
    ).subquery()
    later = (
        select(failed.c.name, func.count(func.distinct(failed.c.github_id)))
        .select_from(failed)
        .join(Job, Job.name == failed.c.name)
        .join(
            WorkflowRun,
            and_(
                WorkflowRun.id == Job.run_id,
                WorkflowRun.github_id == failed.c.github_id,
                WorkflowRun.run_attempt > failed.c.run_attempt,
            ),
        )
        .where(Job.conclusion.in_(SUCCESS))
        .group_by(failed.c.name)
    )
    return {name: int(n) for name, n in session.execute(later).all()}


def total_runs(session: Session, repo_id: int, branch: str | None, since: datetime) -> int:
    return int(
        session.scalar(
            select(func.count(func.distinct(WorkflowRun.github_id))).where(
                *_scope(repo_id, branch, since)
            )
        )
        or 0
    )


def repo_by_name(session: Session, full_name: str) -> Repository | None:
    return session.scalar(
        select(Repository).where(func.lower(Repository.full_name) == full_name.lower())
    )


def tracked_names(session: Session) -> list[str]:
    return list(
        session.scalars(
            select(Repository.full_name)
            .where(Repository.tracked.is_(True))
            .order_by(Repository.full_name)
        )
    )


def last_synced(session: Session, repo_id: int) -> datetime | None:
    st = session.get(SyncState, repo_id)
    return st.last_success_at if st else None
