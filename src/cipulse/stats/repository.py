"""Queries of the analytics: dirty marks, one day's raw rows, rollup rows, raw-row windows."""

from __future__ import annotations

import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Date, Table, and_, bindparam, cast, delete, exists, func, insert, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from cipulse.db import tx_memo
from cipulse.models import (
    Job,
    JobDaily,
    QueueDaily,
    Repository,
    RollupDirtyDay,
    RunDaily,
    Workflow,
    WorkflowRun,
)
from cipulse.models.base import utcnow
from cipulse.models.rollup import WHOLE_DAY
from cipulse.stats import compute

RollupModel = type[RunDaily] | type[JobDaily] | type[QueueDaily]


@dataclass(frozen=True)
class Scope:
    """Which rows a metric looks at: repositories (None = all), one branch, one workflow."""

    repo_ids: tuple[int, ...] | None = None
    branch: str | None = None
    workflow: str | None = None


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def utc_day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


# -- dirty marks (called at the end of the sync writes) -------------------------------------


def mark_dirty(session: Session, repo_id: int, created: Iterable[datetime | None]) -> None:
    """Record that the runs created at these moments changed, so their hours are recomputed."""
    hours = sorted({_hour_of(c) for c in created if c is not None})
    _mark(session, repo_id, hours)


def _hour_of(moment: datetime) -> tuple[date, int]:
    utc = moment.astimezone(UTC)
    return utc.date(), utc.hour


def _dirty_upsert(insert_: Any) -> Any:
    stmt = insert_(RollupDirtyDay.__table__)
    return stmt.on_conflict_do_update(
        index_elements=["repository_id", "day", "hour"],
        set_={"marked_at": stmt.excluded.marked_at},
    )


# Built once: webhook events mark an hour for every delivery.
_DIRTY_UPSERT = {"sqlite": _dirty_upsert(sqlite_insert), "postgresql": _dirty_upsert(pg_insert)}


def _mark(session: Session, repo_id: int, slices: Sequence[tuple[date, int]]) -> None:
    # A batch of webhook deliveries marks the same few hours over and over: each once will do.
    marked = tx_memo(session, "dirty_marks")
    todo = [(d, h) for d, h in slices if (repo_id, d, h) not in marked]
    if not todo:
        return
    now = utcnow()
    session.execute(
        _DIRTY_UPSERT[session.get_bind().dialect.name],
        [{"repository_id": repo_id, "day": d, "hour": h, "marked_at": now} for d, h in todo],
    )
    marked.update(dict.fromkeys((repo_id, d, h) for d, h in todo))


def mark_all_dirty(session: Session, repo_id: int | None = None) -> int:
    """Mark every day that has runs whole (after a bulk load, or to rebuild); answers how many."""
    sqlite = session.get_bind().dialect.name == "sqlite"
    day = func.date(WorkflowRun.created_at) if sqlite else cast(WorkflowRun.created_at, Date)
    stmt = select(WorkflowRun.repository_id, day).distinct()
    if repo_id is not None:
        stmt = stmt.where(WorkflowRun.repository_id == repo_id)
    by_repo: dict[int, list[tuple[date, int]]] = {}
    for rid, raw in session.execute(stmt).all():
        value = date.fromisoformat(raw) if isinstance(raw, str) else raw
        by_repo.setdefault(rid, []).append((value, WHOLE_DAY))
    for rid, slices in by_repo.items():
        mark_whole(session, rid, [d for d, _ in slices])
    return sum(len(m) for m in by_repo.values())


def mark_whole(session: Session, repo_id: int, days: Sequence[date]) -> None:
    """Mark whole days: reads fold the entire day in, the task recomputes it entirely."""
    for i in range(0, len(days), 500):
        _mark(session, repo_id, [(d, WHOLE_DAY) for d in days[i : i + 500]])


def claim_dirty(session: Session, *, limit: int) -> list[tuple[int, date, int]]:
    """Dirty marks to recompute in this transaction; locked rows of other workers are skipped."""
    stmt = (
        select(RollupDirtyDay.repository_id, RollupDirtyDay.day, RollupDirtyDay.hour)
        .order_by(RollupDirtyDay.marked_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [(r, d, h) for r, d, h in session.execute(stmt).all()]


def oldest_dirty(session: Session, *, limit: int) -> list[tuple[int, date, int, datetime]]:
    """The oldest marks with their version, read without claiming them (SQLite)."""
    stmt = (
        select(
            RollupDirtyDay.repository_id,
            RollupDirtyDay.day,
            RollupDirtyDay.hour,
            RollupDirtyDay.marked_at,
        )
        .order_by(RollupDirtyDay.marked_at)
        .limit(limit)
    )
    return [(r, d, h, m) for r, d, h, m in session.execute(stmt).all()]


def clear_unchanged(session: Session, marks: Iterable[tuple[int, date, int, datetime]]) -> None:
    """Drop these marks unless a write has marked them again since they were read."""
    table = typing.cast(Table, RollupDirtyDay.__table__)
    stmt = delete(table).where(
        table.c.repository_id == bindparam("b_repo"),
        table.c.day == bindparam("b_day"),
        table.c.hour == bindparam("b_hour"),
        table.c.marked_at == bindparam("b_marked"),
    )
    rows = [{"b_repo": r, "b_day": d, "b_hour": h, "b_marked": m} for r, d, h, m in marks]
    if rows:
        session.execute(stmt, rows)


def clear_dirty(
    session: Session, repo_id: int, day: date, hours: Iterable[int] | None = None
) -> None:
    """Drop the marks of these hours of a day (``None``: every mark of the day)."""
    stmt = delete(RollupDirtyDay).where(
        RollupDirtyDay.repository_id == repo_id, RollupDirtyDay.day == day
    )
    if hours is not None:
        stmt = stmt.where(RollupDirtyDay.hour.in_(list(hours)))
    session.execute(stmt)


def dirty_marks(
    session: Session, scope: Scope, first: date, last: date
) -> list[tuple[int, date, int, datetime]]:
    """Dirty marks of a window with their time (a version: every write moves it)."""
    stmt = select(
        RollupDirtyDay.repository_id,
        RollupDirtyDay.day,
        RollupDirtyDay.hour,
        RollupDirtyDay.marked_at,
    ).where(RollupDirtyDay.day.between(first, last))
    if scope.repo_ids is not None:
        stmt = stmt.where(RollupDirtyDay.repository_id.in_(scope.repo_ids))
    return [(r, d, h, m) for r, d, h, m in session.execute(stmt).all()]


def dirty_count(session: Session) -> int:
    """How many (repository, day) have marks."""
    inner = select(RollupDirtyDay.repository_id, RollupDirtyDay.day).distinct().subquery()
    return int(session.scalar(select(func.count()).select_from(inner)) or 0)


def whole_days(session: Session, days: Iterable[tuple[int, date]]) -> set[tuple[int, date]]:
    """Which of these (repository, day) are stored as whole-day rows (not per hour)."""
    wanted = set(days)
    if not wanted:
        return set()
    stmt = select(RunDaily.repository_id, RunDaily.day).where(
        RunDaily.day.in_(sorted({d for _, d in wanted})),
        RunDaily.repository_id.in_(sorted({r for r, _ in wanted})),
        RunDaily.hour == WHOLE_DAY,
        RunDaily.workflow_name == compute.ALL_WORKFLOWS,
        RunDaily.branch == compute.ALL_BRANCHES,
    )
    return {(r, d) for r, d in session.execute(stmt).all()} & wanted


def hourly_days(session: Session, first: date, last: date) -> list[tuple[int, date]]:
    """(repository, day) of the span still stored per hour: the task compacts them."""
    stmt = (
        select(RunDaily.repository_id, RunDaily.day)
        .distinct()
        .where(RunDaily.day.between(first, last), RunDaily.hour != WHOLE_DAY)
    )
    return [(r, d) for r, d in session.execute(stmt).all()]


# -- one day's raw rows ---------------------------------------------------------------------

workflow_name = func.coalesce(Workflow.name, WorkflowRun.name, "")


KEY_COLS = (Job.run_id, Job.run_attempt, Job.name, Job.status, Job.conclusion)


def raw_day(
    session: Session,
    repo_id: int,
    day: date,
    *,
    hour: int = WHOLE_DAY,
    jobs: bool = True,
    lean: bool = False,
) -> tuple[list[compute.RunRow], list[compute.JobRow]]:
    """One day's (or one hour's) attempts and (unless ``jobs`` is false) their jobs.

    ``lean`` leaves out the jobs' times and runners: enough for counts and rates, not for
    durations or queue times.
    """
    start = day_start(day)
    end = start + timedelta(days=1)
    if hour != WHOLE_DAY:
        start += timedelta(hours=hour)
        end = start + timedelta(hours=1)
    window = and_(
        WorkflowRun.repository_id == repo_id,
        WorkflowRun.created_at >= start,
        WorkflowRun.created_at < end,
    )
    runs = [
        compute.RunRow(
            id=r.id,
            github_id=r.github_id,
            run_attempt=r.run_attempt,
            workflow_name=(r.wf or "")[:500],
            branch=(r.head_branch or compute.NO_BRANCH)[:255],
            status=r.status,
            conclusion=r.conclusion,
            run_started_at=r.run_started_at,
            updated_at=r.updated_at,
            created_at=r.created_at,
        )
        for r in session.connection()
        .execute(
            select(
                WorkflowRun.id,
                WorkflowRun.github_id,
                WorkflowRun.run_attempt,
                workflow_name.label("wf"),
                WorkflowRun.head_branch,
                WorkflowRun.status,
                WorkflowRun.conclusion,
                WorkflowRun.run_started_at,
                WorkflowRun.updated_at,
                WorkflowRun.created_at,
            )
            .outerjoin(Workflow, Workflow.id == WorkflowRun.workflow_id)
            .where(window)
        )
        .all()
    ]
    if not runs or not jobs:
        return runs, []
    ids = [r.id for r in runs]
    full: list[Any] = [Job.created_at, Job.started_at, Job.completed_at]
    cols = [] if lean else [*full, Job.runner_group_name, Job.labels]
    job_rows = []
    for r in session.connection().execute(select(*KEY_COLS, *cols).where(Job.run_id.in_(ids))):
        job_rows.append(
            compute.JobRow(
                run_id=r[0],
                run_attempt=r[1],
                name=r[2],
                status=r[3],
                conclusion=r[4],
                created_at=None if lean else r[5],
                started_at=None if lean else r[6],
                completed_at=None if lean else r[7],
                runner_group_name=None if lean else r[8],
                labels=() if lean else (r[9] or []),
            )
        )
    return runs, job_rows


def delete_rollups(
    session: Session, repo_id: int, day: date, hours: Iterable[int] | None = None
) -> None:
    """Drop a day's stored rows: of these hours only, or (``None``) all of them."""
    for model in (RunDaily, JobDaily, QueueDaily):
        stmt = delete(model).where(model.repository_id == repo_id, model.day == day)
        if hours is not None:
            stmt = stmt.where(model.hour.in_(list(hours)))
        session.execute(stmt)


def insert_rollup(
    session: Session, repo_id: int, day: date, rollup: compute.DayRollup, *, hour: int = WHOLE_DAY
) -> None:
    """Store a freshly computed day (or hour) whose old rows were deleted."""
    rollup = compute.with_all_branches(rollup)
    base = {"repository_id": repo_id, "day": day, "hour": hour}
    rows = [
        {**base, "workflow_name": wf, "branch": br, **_counts(agg, compute.COUNT_FIELDS_RUN)}
        | {"durations": compute.dump_hist(agg.durations)}
        for (wf, br), agg in rollup.runs.items()
    ]
    if rows:
        session.execute(insert(RunDaily), rows)
    rows = [
        {**base, "workflow_name": wf, "job_name": job, "branch": br}
        | _counts(agg, compute.COUNT_FIELDS_JOB)
        | {"durations": compute.dump_hist(agg.durations)}
        for (wf, job, br), agg in rollup.jobs.items()
    ]
    if rows:
        session.execute(insert(JobDaily), rows)
    rows = [
        {
            **base,
            "kind": kind,
            "value": value,
            "jobs": agg.jobs,
            "waits": compute.dump_hist(agg.waits),
        }
        for (kind, value), agg in rollup.queues.items()
    ]
    if rows:
        session.execute(insert(QueueDaily), rows)


def _counts(agg: Any, names: Sequence[str]) -> dict[str, int]:
    return {name: getattr(agg, name) for name in names}


# -- stored rollups -------------------------------------------------------------------------


def _rollup_filter(
    model: RollupModel,
    scope: Scope,
    first: date,
    last: date,
    all_branches: bool,
    all_workflows: bool = False,
) -> list[Any]:
    conditions: list[Any] = [
        model.day.between(first, last),
        # Rows of a dirty hour, or of a day with a dirty hour when it is stored whole, are
        # left out: those are folded in from raw rows.
        ~exists().where(
            RollupDirtyDay.repository_id == model.repository_id,
            RollupDirtyDay.day == model.day,
            or_(
                RollupDirtyDay.hour == model.hour,
                RollupDirtyDay.hour == WHOLE_DAY,
                model.hour == WHOLE_DAY,
            ),
        ),
    ]
    if scope.repo_ids is not None:
        conditions.append(model.repository_id.in_(scope.repo_ids))
    if model is QueueDaily:
        return conditions
    branch, workflow = model.branch, model.workflow_name  # type: ignore[union-attr]
    if scope.branch is not None:
        conditions.append(branch == scope.branch)
    elif all_branches:
        conditions.append(branch == compute.ALL_BRANCHES)
    else:
        conditions.append(branch != compute.ALL_BRANCHES)
    if scope.workflow is not None:
        conditions.append(workflow == scope.workflow)
    elif model is RunDaily:
        # The whole-day rows answer reads that group by neither workflow nor branch and do
        # not filter on a branch (they sum every branch).
        if all_branches and all_workflows and scope.branch is None:
            conditions.append(workflow == compute.ALL_WORKFLOWS)
        else:
            conditions.append(workflow != compute.ALL_WORKFLOWS)
    return conditions


def summed(
    session: Session,
    model: RollupModel,
    *,
    group: Sequence[str],
    counts: Sequence[str],
    scope: Scope,
    first: date,
    last: date,
) -> list[dict[str, Any]]:
    """Counts of the clean stored days, summed in SQL per ``group`` columns."""
    cols = [getattr(model, g) for g in group]
    every = "branch" not in group, "workflow_name" not in group
    stmt = (
        select(*cols, *(func.sum(getattr(model, c)).label(c) for c in counts))
        .where(*_rollup_filter(model, scope, first, last, *every))
        .group_by(*cols)
    )
    return [dict(row._mapping) for row in session.connection().execute(stmt).all()]


def hist_rows(
    session: Session,
    model: RollupModel,
    *,
    group: Sequence[str],
    column: str,
    scope: Scope,
    first: date,
    last: date,
    extra: Sequence[Any] = (),
) -> list[dict[str, Any]]:
    """The stored histograms (not merged: JSON is merged in Python) of the clean days."""
    cols = [getattr(model, g) for g in group]
    every = "branch" not in group, "workflow_name" not in group
    stmt = select(*cols, getattr(model, column).label(column)).where(
        *_rollup_filter(model, scope, first, last, *every), *extra
    )
    return [dict(row._mapping) for row in session.connection().execute(stmt).all()]


# -- raw rows for the metrics that need order (MTTR, broken since, time to green, flaky) ----


def window_runs(session: Session, scope: Scope, first: date, last: date) -> Sequence[Any]:
    """Every attempt of the runs created in the window, with its workflow name."""
    stmt = (
        select(
            WorkflowRun.repository_id,
            WorkflowRun.github_id,
            WorkflowRun.run_attempt,
            workflow_name.label("workflow_name"),
            WorkflowRun.head_branch,
            WorkflowRun.head_sha,
            WorkflowRun.status,
            WorkflowRun.conclusion,
            WorkflowRun.created_at,
            WorkflowRun.run_started_at,
            WorkflowRun.updated_at,
        )
        .outerjoin(Workflow, Workflow.id == WorkflowRun.workflow_id)
        .where(*_raw_filter(scope, first, last))
    )
    return session.execute(stmt).all()


def window_jobs(session: Session, scope: Scope, first: date, last: date) -> Sequence[Any]:
    stmt = (
        select(
            WorkflowRun.github_id,
            WorkflowRun.run_attempt,
            workflow_name.label("workflow_name"),
            WorkflowRun.head_sha,
            WorkflowRun.created_at,
            Job.name,
            Job.status,
            Job.conclusion,
        )
        .join(WorkflowRun, WorkflowRun.id == Job.run_id)
        .outerjoin(Workflow, Workflow.id == WorkflowRun.workflow_id)
        .where(*_raw_filter(scope, first, last))
    )
    return session.execute(stmt).all()


def _raw_filter(scope: Scope, first: date, last: date) -> list[Any]:
    conditions: list[Any] = [
        WorkflowRun.created_at >= day_start(first),
        WorkflowRun.created_at < day_start(last + timedelta(days=1)),
    ]
    if scope.repo_ids is not None:
        conditions.append(WorkflowRun.repository_id.in_(scope.repo_ids))
    if scope.branch is not None:
        conditions.append(WorkflowRun.head_branch == scope.branch)
    if scope.workflow is not None:
        conditions.append(workflow_name == scope.workflow)
    return conditions


def branch_history(
    session: Session, repo_id: int, branch: str, *, offset: int, limit: int
) -> Sequence[Any]:
    """Newest runs of one branch first (uses the repository/branch/created index)."""
    stmt = (
        select(
            WorkflowRun.github_id,
            WorkflowRun.run_attempt,
            workflow_name.label("workflow_name"),
            WorkflowRun.status,
            WorkflowRun.conclusion,
            WorkflowRun.created_at,
            WorkflowRun.updated_at,
            WorkflowRun.html_url,
            WorkflowRun.head_sha,
        )
        .outerjoin(Workflow, Workflow.id == WorkflowRun.workflow_id)
        .where(WorkflowRun.repository_id == repo_id, WorkflowRun.head_branch == branch)
        .order_by(
            WorkflowRun.created_at.desc(), WorkflowRun.github_id, WorkflowRun.run_attempt.desc()
        )
        .offset(offset)
        .limit(limit)
    )
    return session.execute(stmt).all()


UNFINISHED = ("requested", "pending", "queued", "waiting", "in_progress")


def in_progress(session: Session, scope: Scope, *, limit: int) -> Sequence[Any]:
    # The few unfinished runs are found by the status index; the scope's columns are wrapped
    # so that SQLite does not walk a repository's (or branch's) whole history instead.
    stmt = _run_list(scope, by_status=True).where(WorkflowRun.status.in_(UNFINISHED))
    return session.execute(stmt.order_by(WorkflowRun.created_at.desc()).limit(limit)).all()


def recent_runs(session: Session, scope: Scope, *, limit: int) -> Sequence[Any]:
    stmt = _run_list(scope).where(WorkflowRun.status == "completed")
    return session.execute(stmt.order_by(WorkflowRun.created_at.desc()).limit(limit)).all()


def _run_list(scope: Scope, *, by_status: bool = False) -> Any:
    stmt = (
        select(
            Repository.full_name.label("repository"),
            WorkflowRun.github_id,
            WorkflowRun.run_attempt,
            WorkflowRun.run_number,
            workflow_name.label("workflow_name"),
            WorkflowRun.head_branch,
            WorkflowRun.head_sha,
            WorkflowRun.status,
            WorkflowRun.conclusion,
            WorkflowRun.created_at,
            WorkflowRun.run_started_at,
            WorkflowRun.updated_at,
            WorkflowRun.html_url,
        )
        .join(Repository, Repository.id == WorkflowRun.repository_id)
        .outerjoin(Workflow, Workflow.id == WorkflowRun.workflow_id)
    )
    repo_col: Any = WorkflowRun.repository_id + 0 if by_status else WorkflowRun.repository_id
    branch_col: Any = WorkflowRun.head_branch + "" if by_status else WorkflowRun.head_branch
    if scope.repo_ids is not None:
        stmt = stmt.where(repo_col.in_(scope.repo_ids))
    if scope.branch is not None:
        stmt = stmt.where(branch_col == scope.branch)
    if scope.workflow is not None:
        stmt = stmt.where(workflow_name == scope.workflow)
    return stmt


def recent_job_failures(
    session: Session, scope: Scope, first: date, last: date, *, limit: int
) -> Sequence[Any]:
    stmt = (
        select(
            Repository.full_name.label("repository"),
            workflow_name.label("workflow_name"),
            Job.name,
            Job.conclusion,
            Job.html_url.label("job_url"),
            WorkflowRun.html_url.label("run_url"),
            WorkflowRun.run_number,
            WorkflowRun.run_attempt,
            WorkflowRun.head_branch,
            WorkflowRun.created_at,
        )
        .join(WorkflowRun, WorkflowRun.id == Job.run_id)
        .join(Repository, Repository.id == WorkflowRun.repository_id)
        .outerjoin(Workflow, Workflow.id == WorkflowRun.workflow_id)
        .where(*_raw_filter(scope, first, last), Job.conclusion.in_(compute.FAILURE))
        .order_by(WorkflowRun.created_at.desc(), Job.id.desc())
        .limit(limit)
    )
    return session.execute(stmt).all()


# -- lookups --------------------------------------------------------------------------------


def repo_ids_by_name(session: Session, names: Sequence[str]) -> dict[str, int]:
    lowered = [n.lower() for n in names]
    rows = session.execute(
        select(Repository.full_name, Repository.id).where(
            func.lower(Repository.full_name).in_(lowered)
        )
    ).all()
    return {name: rid for name, rid in rows}


def repositories(session: Session) -> Sequence[Repository]:
    return session.scalars(select(Repository).order_by(Repository.full_name)).all()


def repo_names(session: Session, ids: Iterable[int] | None = None) -> dict[int, str]:
    stmt = select(Repository.id, Repository.full_name)
    if ids is not None:
        stmt = stmt.where(Repository.id.in_(list(ids)))
    return {rid: name for rid, name in session.execute(stmt).all()}


def repo_workflow_names(session: Session, repo_id: int) -> list[str]:
    return list(session.scalars(select(Workflow.name).where(Workflow.repository_id == repo_id)))


def workflow_names(session: Session, scope: Scope) -> list[str]:
    stmt = (
        select(RunDaily.workflow_name)
        .distinct()
        .where(RunDaily.workflow_name != compute.ALL_WORKFLOWS)
        .order_by(RunDaily.workflow_name)
    )
    if scope.repo_ids is not None:
        stmt = stmt.where(RunDaily.repository_id.in_(scope.repo_ids))
    return [n for n in session.scalars(stmt) if n]
