"""Writes of the sync stage: idempotent upserts keyed by GitHub ids, sync state, ETag store."""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, case, delete, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from cipulse.claims import holder_is_dead, process_id
from cipulse.github.schemas import JobData, RunData, WorkflowData
from cipulse.models import HttpCache, Job, Repository, Step, SyncState, Workflow, WorkflowRun
from cipulse.models.base import utcnow
from cipulse.stats import repository as stats_repo

FAILED = {"failure", "timed_out", "startup_failure"}
PASSED = {"success", "neutral", "skipped"}


def _insert(session: Session):  # type: ignore[no-untyped-def]
    return sqlite_insert if session.get_bind().dialect.name == "sqlite" else pg_insert


_BUILT: dict[tuple[str, str], Any] = {}


def _built(session: Session, build: Callable[[Any], Any]) -> Any:
    """The statement ``build(insert)`` makes for this session's dialect, built once per process.

    Webhook events run the same few upserts for every delivery; building them (the status
    ``CASE``, the ``excluded`` columns) cost more than executing them. Values are bound at
    execution, so the statement itself never changes.
    """
    dialect = session.get_bind().dialect.name
    key = (build.__name__, dialect)
    stmt = _BUILT.get(key)
    if stmt is None:
        stmt = _BUILT[key] = build(sqlite_insert if dialect == "sqlite" else pg_insert)
    return stmt


def run_version(run: RunData) -> str:
    """What must change on GitHub for the stored jobs of a run to be stale."""
    updated = run.updated_at.isoformat() if run.updated_at else "-"
    return f"{run.run_attempt}|{run.status}|{updated}"[:80]


# -- repositories ---------------------------------------------------------------------------


def get_repo(session: Session, full_name: str) -> Repository | None:
    return session.scalar(
        select(Repository).where(func.lower(Repository.full_name) == full_name.lower())
    )


def ensure_repo(session: Session, full_name: str) -> Repository:
    repo = get_repo(session, full_name)
    if repo is None:
        owner, _, name = full_name.partition("/")
        repo = Repository(owner=owner, name=name, full_name=full_name, branches=[])
        session.add(repo)
        session.flush()
    return repo


def track_repo(session: Session, full_name: str, branches: Sequence[str]) -> Repository:
    repo = ensure_repo(session, full_name)
    repo.tracked = True
    repo.branches = sorted(set(branches))
    return repo


def untrack_repo(session: Session, full_name: str, *, forget: bool) -> bool:
    repo = get_repo(session, full_name)
    if repo is None:
        return False
    if forget:
        session.delete(repo)
    else:
        repo.tracked = False
    return True


def tracked_repos(session: Session) -> Sequence[Repository]:
    return session.scalars(
        select(Repository).where(Repository.tracked.is_(True)).order_by(Repository.full_name)
    ).all()


def all_repos(session: Session) -> Sequence[Repository]:
    return session.scalars(select(Repository).order_by(Repository.full_name)).all()


def update_repo_from_github(session: Session, repo_id: int, data: dict[str, Any]) -> None:
    repo = session.get_one(Repository, repo_id)
    if isinstance(data.get("id"), int):
        repo.github_id = data["id"]
    if isinstance(data.get("default_branch"), str):
        repo.default_branch = data["default_branch"]
    if isinstance(data.get("html_url"), str):
        repo.html_url = data["html_url"]
    if isinstance(data.get("full_name"), str) and data["full_name"] != repo.full_name:
        repo.full_name = data["full_name"]  # renamed or case differs: GitHub's spelling wins
        repo.owner, _, repo.name = data["full_name"].partition("/")


# -- workflows, runs, jobs ------------------------------------------------------------------


def upsert_workflows(session: Session, repo_id: int, workflows: Iterable[WorkflowData]) -> int:
    changed = 0
    for wf in workflows:
        values = {"name": wf.name, "path": wf.path, "state": wf.state, "html_url": wf.html_url}
        stmt = _insert(session)(Workflow).values(
            github_id=wf.github_id, repository_id=repo_id, **values
        )
        existing = session.execute(
            select(Workflow.name, Workflow.path, Workflow.state).where(
                Workflow.github_id == wf.github_id
            )
        ).first()
        if existing is None or tuple(existing) != (wf.name, wf.path, wf.state):
            changed += 1
        session.execute(stmt.on_conflict_do_update(index_elements=["github_id"], set_=values))
    return changed


def workflow_ids(session: Session, github_ids: Iterable[int]) -> dict[int, int]:
    ids = list(set(github_ids))
    if not ids:
        return {}
    rows = session.execute(
        select(Workflow.github_id, Workflow.id).where(Workflow.github_id.in_(ids))
    ).all()
    return {gid: wid for gid, wid in rows}


def stored_versions(session: Session, run_ids: Iterable[int]) -> dict[int, tuple[int, str | None]]:
    """Latest stored attempt and its jobs version per GitHub run id."""
    ids = list(set(run_ids))
    if not ids:
        return {}
    rows = session.execute(
        select(WorkflowRun.github_id, WorkflowRun.run_attempt, WorkflowRun.jobs_synced_for).where(
            WorkflowRun.github_id.in_(ids)
        )
    ).all()
    out: dict[int, tuple[int, str | None]] = {}
    for gid, attempt, version in rows:
        if gid not in out or attempt > out[gid][0]:
            out[gid] = (attempt, version)
    return out


def _run_values(run: RunData, repo_id: int, workflow_id: int | None) -> dict[str, Any]:
    return {
        "repository_id": repo_id,
        "workflow_id": workflow_id,
        "name": run.name,
        "run_number": run.run_number,
        "event": run.event,
        "status": run.status,
        "conclusion": run.conclusion,
        "head_branch": run.head_branch,
        "head_sha": run.head_sha,
        "actor_login": run.actor_login,
        "html_url": run.html_url,
        "created_at": run.created_at,
        "run_started_at": run.run_started_at,
        "updated_at": run.updated_at,
    }


def upsert_runs(
    session: Session, repo_id: int, runs: Sequence[tuple[RunData, int | None]]
) -> set[int]:
    """Store each run's latest attempt in one statement; answer the GitHub ids that were new.

    Earlier attempts are kept: the key is (run id, attempt).
    """
    if not runs:
        return set()
    existing = set(
        session.execute(
            select(WorkflowRun.github_id, WorkflowRun.run_attempt).where(
                WorkflowRun.github_id.in_([r.github_id for r, _ in runs])
            )
        ).all()
    )
    rows = [
        {"github_id": r.github_id, "run_attempt": r.run_attempt, **_run_values(r, repo_id, wf)}
        for r, wf in runs
    ]
    stmt = _insert(session)(WorkflowRun)
    columns = [c for c in rows[0] if c not in ("github_id", "run_attempt")]
    # One statement executed with a list of rows: compiled once and cached, unlike VALUES (...).
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["github_id", "run_attempt"],
            set_={c: stmt.excluded[c] for c in columns},
        ),
        rows,
    )
    stats_repo.mark_dirty(session, repo_id, [r.created_at for r, _ in runs])
    return {r.github_id for r, _ in runs if (r.github_id, r.run_attempt) not in existing}


STATUS_RANK = {
    "requested": 0,
    "pending": 0,
    "queued": 1,
    "waiting": 2,
    "in_progress": 3,
    "completed": 4,
}


def _rank(column: Any) -> Any:
    return case(*((column == name, rank) for name, rank in STATUS_RANK.items()), else_=0)


_RUN_EVENT_COLUMNS = (  # the keys of _run_values
    "repository_id",
    "workflow_id",
    "name",
    "run_number",
    "event",
    "status",
    "conclusion",
    "head_branch",
    "head_sha",
    "actor_login",
    "html_url",
    "created_at",
    "run_started_at",
    "updated_at",
)


def _run_event_upsert(insert_: Any) -> Any:
    table = WorkflowRun.__table__
    stmt = insert_(table)
    return stmt.on_conflict_do_update(
        index_elements=["github_id", "run_attempt"],
        set_={c: stmt.excluded[c] for c in _RUN_EVENT_COLUMNS},
        where=_rank(stmt.excluded.status) >= _rank(table.c.status),
    ).returning(table.c.id)


def _job_run_placeholder(insert_: Any) -> Any:
    """A job's run attempt, created if unknown; its status only ever moves forward."""
    table = WorkflowRun.__table__
    stmt = insert_(table)
    return stmt.on_conflict_do_update(
        index_elements=["github_id", "run_attempt"],
        set_={"status": stmt.excluded.status},
        where=_rank(stmt.excluded.status) > _rank(table.c.status),
    )


_RUN_ID = select(
    WorkflowRun.__table__.c.id,
    WorkflowRun.__table__.c.status,
    WorkflowRun.__table__.c.repository_id,
    WorkflowRun.__table__.c.created_at,
).where(
    WorkflowRun.__table__.c.github_id == bindparam("run_github_id"),
    WorkflowRun.__table__.c.run_attempt == bindparam("run_attempt"),
)
_JOB_EVENT_COLUMNS = (
    "run_id",
    "run_attempt",
    "name",
    "workflow_name",
    "status",
    "conclusion",
    "head_sha",
    "head_branch",
    "html_url",
    "created_at",
    "started_at",
    "completed_at",
    "runner_name",
    "runner_group_name",
    "labels",
)


def _job_event_upsert(insert_: Any) -> Any:
    table = Job.__table__
    stmt = insert_(table)
    return stmt.on_conflict_do_update(
        index_elements=["github_id"],
        set_={c: stmt.excluded[c] for c in _JOB_EVENT_COLUMNS},
        where=_rank(stmt.excluded.status) >= _rank(table.c.status),
    ).returning(table.c.id)


_STEP = cast(Table, Step.__table__)
_DELETE_STEPS = delete(_STEP).where(_STEP.c.job_id == bindparam("job_id"))
_INSERT_STEPS = insert(_STEP)


def apply_run_event(session: Session, repo_id: int, run: RunData, workflow_id: int | None) -> bool:
    """Store one attempt from a webhook, only ever moving its status forward.

    Deliveries come late, twice or out of order: an older state never overwrites a newer one.
    Answers whether anything was written.
    """
    values = _run_values(run, repo_id, workflow_id)
    params = {"github_id": run.github_id, "run_attempt": run.run_attempt, **values}
    # The run's row before the day's mark, as in apply_job_event: concurrent workers then take
    # their row locks in the same order and cannot deadlock.
    changed = session.execute(_built(session, _run_event_upsert), params).first() is not None
    stats_repo.mark_dirty(session, repo_id, [run.created_at])
    return changed


def apply_job_event(session: Session, repo_id: int, job: JobData) -> bool:
    """Store one job from a webhook, forward only; its run attempt is created if unknown."""
    # A job says its run is at least queued, waiting or in progress; never that it ended.
    run_status = job.status if job.status in ("queued", "waiting") else "in_progress"
    placeholder = {
        "repository_id": repo_id,
        "name": job.workflow_name,
        "status": run_status,
        "head_branch": job.head_branch,
        "head_sha": job.head_sha,
        "created_at": job.created_at or job.started_at or utcnow(),
    }
    keys = {"run_github_id": job.run_github_id, "run_attempt": job.run_attempt}
    # Usually the run is stored and at least as far on: one read, no write.
    found = session.execute(_RUN_ID, keys).first()
    if found is None or STATUS_RANK[run_status] > STATUS_RANK.get(found[1], 0):
        session.execute(
            _built(session, _job_run_placeholder),
            {"github_id": job.run_github_id, "run_attempt": job.run_attempt, **placeholder},
        )
        found = session.execute(_RUN_ID, keys).first()
    assert found is not None  # just upserted
    run_id = found[0]
    values = {
        "run_id": run_id,
        "run_attempt": job.run_attempt,
        "name": job.name,
        "workflow_name": job.workflow_name,
        "status": job.status,
        "conclusion": job.conclusion,
        "head_sha": job.head_sha,
        "head_branch": job.head_branch,
        "html_url": job.html_url,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "completed_at": job.completed_at,
        "runner_name": job.runner_name,
        "runner_group_name": job.runner_group_name,
        "labels": job.labels,
    }
    row = session.execute(
        _built(session, _job_event_upsert), {"github_id": job.github_id, **values}
    ).first()
    if row is None:
        return False
    if job.steps:
        session.execute(_DELETE_STEPS, {"job_id": row[0]})
        session.execute(
            _INSERT_STEPS,
            [
                {
                    "job_id": row[0],
                    "number": s.number,
                    "name": s.name,
                    "status": s.status,
                    "conclusion": s.conclusion,
                    "started_at": s.started_at,
                    "completed_at": s.completed_at,
                }
                for s in {s.number: s for s in job.steps}.values()
            ],
        )
    stats_repo.mark_dirty(session, found[2], [found[3]])
    return True


def _attempt_conclusion(conclusions: list[str | None]) -> str:
    if any(c in FAILED for c in conclusions):
        return "failure"
    if any(c == "cancelled" for c in conclusions):
        return "cancelled"
    return "success" if conclusions and all(c in PASSED for c in conclusions) else "neutral"


def store_jobs(
    session: Session, *, repo_id: int, run: RunData, workflow_id: int | None, jobs: list[JobData]
) -> int:
    """Store every job of every attempt of a run, and mark the run's jobs as synced.

    An earlier attempt that GitHub no longer lists as a run gets its row from the run and its
    own jobs, so its failures count even though a re-run passed.
    """
    attempt_rows = dict(
        session.execute(
            select(WorkflowRun.run_attempt, WorkflowRun.id).where(
                WorkflowRun.github_id == run.github_id
            )
        ).all()
    )
    by_attempt: dict[int, list[JobData]] = {}
    for job in jobs:
        by_attempt.setdefault(job.run_attempt, []).append(job)
    for attempt, attempt_jobs in sorted(by_attempt.items()):
        if attempt in attempt_rows:
            continue
        starts = [j.started_at or j.created_at for j in attempt_jobs]
        ends = [j.completed_at for j in attempt_jobs if j.completed_at]
        done = all(j.status == "completed" for j in attempt_jobs)
        values = _run_values(run, repo_id, workflow_id)
        first_start = min((s for s in starts if s), default=run.created_at)
        values.update(
            status="completed" if done else "in_progress",
            conclusion=_attempt_conclusion([j.conclusion for j in attempt_jobs]) if done else None,
            run_started_at=first_start,
            updated_at=max(ends, default=None),
            html_url=f"{run.html_url}/attempts/{attempt}" if run.html_url else None,
        )
        new = WorkflowRun(github_id=run.github_id, run_attempt=attempt, **values)
        session.add(new)
        session.flush()
        attempt_rows[attempt] = new.id

    if jobs:
        rows = [
            {
                "github_id": job.github_id,
                "run_id": attempt_rows[job.run_attempt],
                "run_attempt": job.run_attempt,
                "name": job.name,
                "workflow_name": job.workflow_name or run.name,
                "status": job.status,
                "conclusion": job.conclusion,
                "head_sha": job.head_sha or run.head_sha,
                "head_branch": job.head_branch or run.head_branch,
                "html_url": job.html_url,
                "created_at": job.created_at,
                "started_at": job.started_at,
                "completed_at": job.completed_at,
                "runner_name": job.runner_name,
                "runner_group_name": job.runner_group_name,
                "labels": job.labels,
            }
            for job in {j.github_id: j for j in jobs}.values()
        ]
        stmt = _insert(session)(Job)
        stmt = stmt.on_conflict_do_update(
            index_elements=["github_id"],
            set_={c: stmt.excluded[c] for c in rows[0] if c != "github_id"},
        ).returning(Job.github_id, Job.id)
        job_ids = dict(session.execute(stmt, rows).all())
        session.execute(delete(Step).where(Step.job_id.in_(job_ids.values())))
        steps = [
            {
                "job_id": job_ids[job.github_id],
                "number": step.number,
                "name": step.name,
                "status": step.status,
                "conclusion": step.conclusion,
                "started_at": step.started_at,
                "completed_at": step.completed_at,
            }
            for job in {j.github_id: j for j in jobs}.values()
            for step in {s.number: s for s in job.steps}.values()
        ]
        if steps:
            session.execute(insert(Step), steps)
    session.execute(
        update(WorkflowRun)
        .where(WorkflowRun.github_id == run.github_id, WorkflowRun.run_attempt == run.run_attempt)
        .values(jobs_synced_for=run_version(run))
    )
    stats_repo.mark_dirty(session, repo_id, [run.created_at])
    return len(jobs)


def unfinished_runs(session: Session, repo_id: int) -> list[int]:
    """GitHub ids of runs whose latest stored attempt has not completed."""
    latest = (
        select(WorkflowRun.github_id, func.max(WorkflowRun.run_attempt).label("attempt"))
        .where(WorkflowRun.repository_id == repo_id)
        .group_by(WorkflowRun.github_id)
        .subquery()
    )
    rows = session.execute(
        select(WorkflowRun.github_id)
        .join(
            latest,
            (latest.c.github_id == WorkflowRun.github_id)
            & (latest.c.attempt == WorkflowRun.run_attempt),
        )
        .where(WorkflowRun.status != "completed")
    ).all()
    return [r[0] for r in rows]


def count_runs(session: Session, repo_id: int) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(WorkflowRun)
            .where(WorkflowRun.repository_id == repo_id)
        )
        or 0
    )


# -- sync state -----------------------------------------------------------------------------


def state(session: Session, repo_id: int) -> SyncState:
    found = session.get(SyncState, repo_id)
    if found is None:
        found = SyncState(
            repository_id=repo_id,
            last_requests=0,
            last_not_modified=0,
            last_points=0,
            total_requests=0,
        )
        session.add(found)
        session.flush()
    return found


def claim(session: Session, repo_id: int, *, now: datetime, seconds: float) -> str | None:
    """Claim the repository's sync, so two processes never sync it at once.

    Answers None when claimed, else who holds it. A claim lapses after ``seconds`` unless
    renewed, and at once when its holder was a process of this host that has died.
    """
    st = state(session, repo_id)
    me = process_id()
    free = or_(SyncState.claimed_until.is_(None), SyncState.claimed_until < now)
    if holder_is_dead(st.claimed_by):
        free = or_(free, SyncState.claimed_by == st.claimed_by)
    result = session.execute(
        update(SyncState)
        .where(SyncState.repository_id == repo_id)
        .where(free)
        .values(claimed_until=now + timedelta(seconds=seconds), claimed_by=me, last_started_at=now)
    )
    if result.rowcount == 1:  # type: ignore[attr-defined]
        return None
    session.refresh(st)
    return st.claimed_by or "another process"


def renew(session: Session, repo_id: int, *, now: datetime, seconds: float) -> None:
    session.execute(
        update(SyncState)
        .where(SyncState.repository_id == repo_id, SyncState.claimed_by == process_id())
        .values(claimed_until=now + timedelta(seconds=seconds))
    )


def release(session: Session, repo_id: int) -> None:
    session.execute(
        update(SyncState)
        .where(SyncState.repository_id == repo_id)
        .values(claimed_until=None, claimed_by=None)
    )


# -- ETag store -----------------------------------------------------------------------------


def cache_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def cache_get(session: Session, key: str) -> tuple[str, bytes, str | None] | None:
    row = session.get(HttpCache, cache_key(key))
    if row is None:
        return None
    return row.etag, zlib.decompress(row.body), row.link


def cache_put(
    session: Session, key: str, url: str, etag: str, body: bytes, link: str | None
) -> None:
    values = {
        "url": url,
        "etag": etag,
        "link": link,
        "body": zlib.compress(body, 6),
        "updated_at": utcnow(),
    }
    stmt = _insert(session)(HttpCache).values(key=cache_key(key), **values)
    session.execute(stmt.on_conflict_do_update(index_elements=["key"], set_=values))


def status_rows(session: Session) -> list[tuple[Repository, SyncState | None, int]]:
    """Every known repository with its sync state and stored run count."""
    counts = dict(
        session.execute(
            select(
                WorkflowRun.repository_id, func.count(func.distinct(WorkflowRun.github_id))
            ).group_by(WorkflowRun.repository_id)
        ).all()
    )
    return [
        (repo, session.get(SyncState, repo.id), counts.get(repo.id, 0))
        for repo in all_repos(session)
    ]


def last_success(session: Session, repo_ids: list[int]) -> datetime | None:
    return session.scalar(
        select(func.max(SyncState.last_success_at)).where(SyncState.repository_id.in_(repo_ids))
    )
