"""Reads for the live view: runs not yet completed, and one run with its jobs and steps."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cipulse.models import Job, Repository, Step, WorkflowRun


def runs_in_progress(session: Session, *, since: datetime, limit: int) -> Sequence[WorkflowRun]:
    """Latest attempts still running or queued, newest first."""
    latest = (
        select(WorkflowRun.github_id, func.max(WorkflowRun.run_attempt).label("attempt"))
        .group_by(WorkflowRun.github_id)
        .subquery()
    )
    return session.scalars(
        select(WorkflowRun)
        .join(
            latest,
            (latest.c.github_id == WorkflowRun.github_id)
            & (latest.c.attempt == WorkflowRun.run_attempt),
        )
        .where(WorkflowRun.status != "completed", WorkflowRun.created_at >= since)
        .order_by(WorkflowRun.created_at.desc())
        .limit(limit)
    ).all()


def run_attempt(session: Session, github_id: int, attempt: int) -> WorkflowRun | None:
    return session.scalar(
        select(WorkflowRun).where(
            WorkflowRun.github_id == github_id, WorkflowRun.run_attempt == attempt
        )
    )


def jobs_of(session: Session, run_ids: list[int]) -> Sequence[Job]:
    if not run_ids:
        return []
    return session.scalars(
        select(Job).where(Job.run_id.in_(run_ids)).order_by(Job.started_at, Job.github_id)
    ).all()


def steps_of(session: Session, job_ids: list[int]) -> Sequence[Step]:
    if not job_ids:
        return []
    return session.scalars(
        select(Step).where(Step.job_id.in_(job_ids)).order_by(Step.job_id, Step.number)
    ).all()


def repo_names(session: Session, ids: list[int]) -> dict[int, str]:
    if not ids:
        return {}
    return dict(
        session.execute(
            select(Repository.id, Repository.full_name).where(Repository.id.in_(ids))
        ).all()
    )
