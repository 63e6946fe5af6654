"""Queries of the job-log stage: which completed jobs want a log, claiming them, and reads.

Work is claimed with a conditional UPDATE on ``claimed_until`` so several processes can share it;
a claim held by a dead process of this host is taken back at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from cipulse.claims import claim_pending, process_id
from cipulse.models import Job, JobLog, Repository, WorkflowRun

CLAIM_SECONDS = 900.0
RETRY_BASE_SECONDS = 60.0
RETRY_CAP_SECONDS = 6 * 3600.0
MAX_ATTEMPTS = 8
NOT_FOUND_ATTEMPTS = 3  # a 404 right after completion can be GitHub still archiving the log
FAILED_CONCLUSIONS = ("failure", "timed_out", "startup_failure")


def backoff(attempts: int) -> timedelta:
    """1 min, 2, 4, ... doubling per failed attempt, capped at 6 hours."""
    return timedelta(seconds=min(RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0), RETRY_CAP_SECONDS))


@dataclass(frozen=True)
class Target:
    """What a fetch needs to know of a claimed log row."""

    log_id: int
    job_id: int
    job_github_id: int
    repository_id: int
    full_name: str


def discover(session: Session, *, now: datetime, all_jobs: bool, limit: int = 500) -> int:
    """Add a ``pending`` row for each completed job that wants a log and has none yet."""
    query = (
        select(Job.id)
        .outerjoin(JobLog, JobLog.job_id == Job.id)
        .where(JobLog.id.is_(None), Job.status == "completed")
        .order_by(Job.id.desc())
        .limit(limit)
    )
    if not all_jobs:
        query = query.where(Job.conclusion.in_(FAILED_CONCLUSIONS))
    ids = session.scalars(query).all()
    if not ids:
        return 0
    insert = sqlite_insert if session.get_bind().dialect.name == "sqlite" else pg_insert
    rows = [
        {
            "job_id": job_id,
            "state": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "error_count": 0,
            "warning_count": 0,
            "created_at": now,
        }
        for job_id in ids
    ]
    session.execute(insert(JobLog).values(rows).on_conflict_do_nothing(index_elements=["job_id"]))
    return len(ids)


def claim(session: Session, *, now: datetime, limit: int) -> list[Target]:
    """Claim up to ``limit`` due rows for this process; newest jobs first."""
    order = (JobLog.next_attempt_at, JobLog.job_id.desc())
    mine = claim_pending(
        session, JobLog, now=now, limit=limit, seconds=CLAIM_SECONDS, order_by=order
    )
    if not mine:
        return []
    rows = session.execute(
        select(JobLog.id, Job.id, Job.github_id, Repository.id, Repository.full_name)
        .join(Job, Job.id == JobLog.job_id)
        .join(WorkflowRun, WorkflowRun.id == Job.run_id)
        .join(Repository, Repository.id == WorkflowRun.repository_id)
        .where(JobLog.id.in_(mine))
    ).all()
    return [Target(*row) for row in rows]


def held(session: Session, log_id: int) -> JobLog | None:
    """The row, if this process still holds its claim (it may have lapsed and moved on)."""
    return session.scalar(
        select(JobLog).where(JobLog.id == log_id, JobLog.claimed_by == process_id())
    )


def release(row: JobLog) -> None:
    row.claimed_until = None
    row.claimed_by = None


def fail(row: JobLog, *, error: str, now: datetime, give_up_after: int = MAX_ATTEMPTS) -> str:
    """Count a failed attempt: retried later with backoff, or given up."""
    row.attempts += 1
    row.last_error = error[:2000]
    release(row)
    if row.attempts >= give_up_after:
        row.state = "failed"
        return f"given up after {row.attempts} attempts"
    row.next_attempt_at = now + backoff(row.attempts)
    return f"attempt {row.attempts}, retried at {row.next_attempt_at:%H:%M} UTC"


def retry_at(row: JobLog, *, error: str, when: datetime) -> None:
    """Wait for a known time (a rate limit's reset) without counting an attempt."""
    row.last_error = error[:2000]
    row.next_attempt_at = when
    release(row)


def job_by_github_id(session: Session, job_github_id: int) -> tuple[Job, Repository] | None:
    row = session.execute(
        select(Job, Repository)
        .join(WorkflowRun, WorkflowRun.id == Job.run_id)
        .join(Repository, Repository.id == WorkflowRun.repository_id)
        .where(Job.github_id == job_github_id)
    ).first()
    return (row[0], row[1]) if row else None


def log_of(session: Session, job_id: int) -> JobLog | None:
    return session.scalar(select(JobLog).where(JobLog.job_id == job_id))
