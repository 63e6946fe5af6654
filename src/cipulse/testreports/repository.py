"""Queries over test reports, test cases and results; no logic beyond shaping SQL."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Float, Row, and_, case, cast, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from cipulse.models import (
    Base,
    Job,
    Repository,
    TestCase,
    TestReport,
    TestResult,
    WorkflowRun,
)

CHUNK = 500
FAILING = ("failed", "error")


def _insert(session: Session):  # type: ignore[no-untyped-def]
    return sqlite_insert if session.get_bind().dialect.name == "sqlite" else pg_insert


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- writes --------------------------------------------------------------------------------


def report_by_key(session: Session, dedup_key: str) -> TestReport | None:
    return session.scalars(select(TestReport).where(TestReport.dedup_key == dedup_key)).first()


def insert_report(session: Session, values: dict[str, Any]) -> int | None:
    """Insert a report row; None when a report with the same ``dedup_key`` already exists."""
    stmt = (
        _insert(session)(TestReport)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["dedup_key"])
        .returning(TestReport.id)
    )
    return session.execute(stmt).scalar_one_or_none()


def _case_ids(session: Session, keys: list[str]) -> dict[str, int]:
    rows = session.execute(select(TestCase.key, TestCase.id).where(TestCase.key.in_(keys)))
    return {key: case_id for key, case_id in rows}


def ensure_cases(session: Session, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Insert the test cases not yet known (by key) and return every key's id.

    Most tests of a report were seen before, so known keys are looked up first and only the
    new ones inserted (``ON CONFLICT DO NOTHING`` covers a concurrent report adding them too).
    """
    ids: dict[str, int] = {}
    for chunk in _chunks(rows):
        found = _case_ids(session, [row["key"] for row in chunk])
        missing = [row for row in chunk if row["key"] not in found]
        if missing:
            # Core statements on the table: one executemany, not the ORM's per-row bookkeeping.
            session.execute(
                _insert(session)(Base.metadata.tables["test_case"]).on_conflict_do_nothing(
                    index_elements=["key"]
                ),
                missing,
            )
            found.update(_case_ids(session, [row["key"] for row in missing]))
        ids.update(found)
    return ids


def touch_cases(session: Session, by_outcome: dict[str, list[int]], *, seen_at: datetime) -> None:
    """Move ``last_seen_at``/``last_outcome`` forward (never back) and ``first_seen_at`` back."""
    for outcome, case_ids in by_outcome.items():
        for chunk in _chunks(case_ids):
            session.execute(
                update(TestCase)
                .where(TestCase.id.in_(chunk), TestCase.last_seen_at <= seen_at)
                .values(last_seen_at=seen_at, last_outcome=outcome)
            )
            session.execute(
                update(TestCase)
                .where(TestCase.id.in_(chunk), TestCase.first_seen_at > seen_at)
                .values(first_seen_at=seen_at)
            )


def insert_results(session: Session, rows: list[dict[str, Any]]) -> None:
    for chunk in _chunks(rows, 2000):
        session.execute(insert(Base.metadata.tables["test_result"]), list(chunk))


def run_context(
    session: Session, *, workflow_run_id: int | None, job_id: int | None
) -> tuple[WorkflowRun | None, Job | None]:
    job = session.get(Job, job_id) if job_id is not None else None
    run_id = workflow_run_id if workflow_run_id is not None else (job.run_id if job else None)
    run = session.get(WorkflowRun, run_id) if run_id is not None else None
    return run, job


def repository(session: Session, repository_id: int) -> Repository | None:
    return session.get(Repository, repository_id)


def repository_by_name(session: Session, full_name: str) -> Repository | None:
    return session.scalars(
        select(Repository).where(func.lower(Repository.full_name) == full_name.lower())
    ).first()


def workflow_run_by_github_id(
    session: Session, *, repository_id: int, github_id: int, attempt: int | None
) -> WorkflowRun | None:
    stmt = select(WorkflowRun).where(
        WorkflowRun.repository_id == repository_id, WorkflowRun.github_id == github_id
    )
    if attempt is not None:
        stmt = stmt.where(WorkflowRun.run_attempt == attempt)
    return session.scalars(stmt.order_by(WorkflowRun.run_attempt.desc())).first()


def job_by_github_id(session: Session, *, github_id: int) -> Job | None:
    return session.scalars(select(Job).where(Job.github_id == github_id)).first()


# --- reads ---------------------------------------------------------------------------------


def _failing() -> Any:
    return func.sum(case((TestResult.outcome.in_(FAILING), 1), else_=0))


def test_stats(
    session: Session,
    *,
    since: datetime,
    project: str | None,
    query: str | None,
    order: str,
    only_failing: bool,
    limit: int,
    offset: int,
    test_case_id: int | None = None,
) -> Sequence[Row[Any]]:
    """Per-test counts over results reported since ``since``, best first by ``order``."""
    runs = func.count(TestResult.id)
    failures = _failing()
    passes = func.sum(case((TestResult.outcome == "passed", 1), else_=0))
    skips = func.sum(case((TestResult.outcome == "skipped", 1), else_=0))
    flaky = func.sum(case((TestResult.flaky.is_(True), 1), else_=0))
    avg = func.avg(TestResult.duration_seconds)
    stats = (
        select(
            TestResult.test_case_id.label("test_case_id"),
            runs.label("runs"),
            failures.label("failures"),
            passes.label("passes"),
            skips.label("skips"),
            flaky.label("flaky_retries"),
            avg.label("avg_duration"),
            func.max(TestResult.duration_seconds).label("max_duration"),
        )
        .where(TestResult.reported_at >= since)
        .group_by(TestResult.test_case_id)
    )
    if test_case_id is not None:
        stats = stats.where(TestResult.test_case_id == test_case_id)
    if only_failing:
        stats = stats.having(failures > 0)
    sub = stats.subquery()
    stmt = select(TestCase, sub).join(sub, sub.c.test_case_id == TestCase.id)
    if project:
        stmt = stmt.where(TestCase.project == project)
    if query:
        pattern = f"%{query.lower()}%"
        stmt = stmt.where(
            or_(
                func.lower(TestCase.name).like(pattern),
                func.lower(TestCase.classname).like(pattern),
                func.lower(TestCase.suite).like(pattern),
            )
        )
    rate = cast(sub.c.failures, Float) / func.nullif(sub.c.runs - sub.c.skips, 0)
    if order == "slowest":
        stmt = stmt.order_by(sub.c.avg_duration.desc(), TestCase.id)
    elif order == "recent":
        stmt = stmt.order_by(TestCase.last_seen_at.desc(), TestCase.id)
    elif order == "name":
        stmt = stmt.order_by(TestCase.classname, TestCase.name, TestCase.id)
    else:
        stmt = stmt.order_by(sub.c.failures.desc(), rate.desc(), TestCase.id)
    return session.execute(stmt.limit(limit).offset(offset)).all()


def count_tests(session: Session, *, since: datetime, project: str | None) -> int:
    stmt = select(func.count(func.distinct(TestResult.test_case_id))).where(
        TestResult.reported_at >= since
    )
    if project:
        stmt = stmt.join(TestCase, TestCase.id == TestResult.test_case_id).where(
            TestCase.project == project
        )
    return int(session.scalar(stmt) or 0)


def flaky_in_reports(
    session: Session, *, since: datetime, project: str | None
) -> Sequence[Row[int, int, datetime]]:
    """Tests that passed after a retry inside one report: (test_case_id, count, last_at)."""
    stmt = (
        select(
            TestResult.test_case_id,
            func.count(TestResult.id),
            func.max(TestResult.reported_at),
        )
        .where(TestResult.flaky.is_(True), TestResult.reported_at >= since)
        .group_by(TestResult.test_case_id)
    )
    if project:
        stmt = stmt.join(TestCase, TestCase.id == TestResult.test_case_id).where(
            TestCase.project == project
        )
    return session.execute(stmt).all()


def flaky_on_commits(
    session: Session, *, since: datetime, project: str | None
) -> Sequence[Row[int, str | None, datetime]]:
    """(test_case_id, commit_sha, last_at) where the test both failed and passed on one commit."""
    failures = _failing()
    passes = func.sum(case((TestResult.outcome == "passed", 1), else_=0))
    stmt = (
        select(TestResult.test_case_id, TestResult.commit_sha, func.max(TestResult.reported_at))
        .where(TestResult.reported_at >= since, TestResult.commit_sha.is_not(None))
        .group_by(TestResult.test_case_id, TestResult.commit_sha)
        .having(and_(failures > 0, passes > 0))
    )
    if project:
        stmt = stmt.join(TestCase, TestCase.id == TestResult.test_case_id).where(
            TestCase.project == project
        )
    return session.execute(stmt).all()


def cases_by_id(session: Session, ids: Iterable[int]) -> dict[int, TestCase]:
    found: dict[int, TestCase] = {}
    for chunk in _chunks(list(ids)):
        for test_case in session.scalars(select(TestCase).where(TestCase.id.in_(chunk))):
            found[test_case.id] = test_case
    return found


def history(
    session: Session, *, test_case_id: int, limit: int, offset: int = 0
) -> Sequence[Row[TestResult, TestReport, WorkflowRun | None, Job | None]]:
    """A test's results, newest first, with its report and the GitHub run and job if any."""
    stmt = (
        select(TestResult, TestReport, WorkflowRun, Job)
        .join(TestReport, TestReport.id == TestResult.report_id)
        .outerjoin(WorkflowRun, WorkflowRun.id == TestReport.workflow_run_id)
        .outerjoin(Job, Job.id == TestReport.job_id)
        .where(TestResult.test_case_id == test_case_id)
        .order_by(TestResult.reported_at.desc(), TestResult.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return session.execute(stmt).all()


def run_results(
    session: Session, *, workflow_run_id: int, outcomes: Sequence[str] | None
) -> Sequence[Row[TestResult, TestCase, TestReport]]:
    stmt = (
        select(TestResult, TestCase, TestReport)
        .join(TestReport, TestReport.id == TestResult.report_id)
        .join(TestCase, TestCase.id == TestResult.test_case_id)
        .where(TestReport.workflow_run_id == workflow_run_id)
    )
    if outcomes:
        stmt = stmt.where(TestResult.outcome.in_(outcomes))
    order = case((TestResult.outcome == "error", 0), (TestResult.outcome == "failed", 1), else_=2)
    return session.execute(stmt.order_by(order, TestCase.classname, TestCase.name)).all()


def run_reports(session: Session, *, workflow_run_id: int) -> Sequence[TestReport]:
    return session.scalars(
        select(TestReport)
        .where(TestReport.workflow_run_id == workflow_run_id)
        .order_by(TestReport.id)
    ).all()


def projects(session: Session) -> list[str]:
    return [
        project
        for project in session.scalars(
            select(TestCase.project).distinct().order_by(TestCase.project)
        )
        if project
    ]
