"""Queries of the ingest stage; the only place that writes ``pipeline_run`` and its rollup."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from cipulse.models import Pipeline, PipelineRun, PipelineRunHourly


def _insert(session: Session):  # type: ignore[no-untyped-def]
    return sqlite_insert if session.get_bind().dialect.name == "sqlite" else pg_insert


def get_or_create_pipeline(session: Session, name: str) -> Pipeline:
    found = session.scalar(select(Pipeline).where(Pipeline.name == name))
    if found is not None:
        return found
    session.execute(_insert(session)(Pipeline).values(name=name).on_conflict_do_nothing())
    return session.scalars(select(Pipeline).where(Pipeline.name == name)).one()


# Both finders lock the row (PostgreSQL; SQLite writers are serialised anyway), so two events
# completing the same run one after the other cannot both see it running.


def find_by_external_id(session: Session, pipeline_id: int, external_id: str) -> PipelineRun | None:
    return session.scalar(
        select(PipelineRun)
        .where(PipelineRun.pipeline_id == pipeline_id, PipelineRun.external_id == external_id)
        .with_for_update(of=PipelineRun)
    )


def find_running(session: Session, pipeline_id: int, commit: str | None) -> PipelineRun | None:
    """The newest run of this pipeline and commit still marked running."""
    commit_match = (
        PipelineRun.commit_sha.is_(None) if commit is None else PipelineRun.commit_sha == commit
    )
    return session.scalar(
        select(PipelineRun)
        .where(PipelineRun.pipeline_id == pipeline_id, commit_match)
        .where(PipelineRun.status == "running")
        .order_by(PipelineRun.started_at.desc(), PipelineRun.id.desc())
        .limit(1)
        .with_for_update(of=PipelineRun)
    )


def add_to_rollup(
    session: Session,
    *,
    pipeline_id: int,
    hour_start: datetime,
    sign: int,
    status: str,
    duration_sec: float | None,
) -> None:
    """Add (sign=1) or take away (sign=-1) one run's share of its hour, atomically."""
    deltas = {
        "total": sign,
        "running": sign if status == "running" else 0,
        "success": sign if status == "success" else 0,
        "failure": sign if status == "failure" else 0,
        "duration_sum": sign * duration_sec if duration_sec is not None else 0.0,
        "duration_count": sign if duration_sec is not None else 0,
    }
    table = PipelineRunHourly.__table__
    stmt = _insert(session)(PipelineRunHourly).values(
        pipeline_id=pipeline_id, hour_start=hour_start, **deltas
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["pipeline_id", "hour_start"],
        set_={name: table.c[name] + stmt.excluded[name] for name in deltas},
    )
    session.execute(stmt)


def rebuild_rollup(session: Session) -> int:
    """Recompute the hourly rollup from the raw runs (repair, bulk loads)."""
    session.query(PipelineRunHourly).delete()
    runs = session.execute(
        select(
            PipelineRun.pipeline_id,
            PipelineRun.started_at,
            PipelineRun.status,
            PipelineRun.duration_sec,
        )
    )
    buckets: dict[tuple[int, datetime], dict[str, float]] = {}
    for pipeline_id, started_at, status, duration in runs:
        key = (pipeline_id, started_at.replace(minute=0, second=0, microsecond=0))
        b = buckets.setdefault(
            key,
            {
                "total": 0,
                "running": 0,
                "success": 0,
                "failure": 0,
                "duration_sum": 0.0,
                "duration_count": 0,
            },
        )
        b["total"] += 1
        b[status] += 1
        if duration is not None:
            b["duration_sum"] += duration
            b["duration_count"] += 1
    rows = [
        {"pipeline_id": pid, "hour_start": hour, **counts}
        for (pid, hour), counts in buckets.items()
    ]
    if rows:
        session.execute(insert(PipelineRunHourly), rows)
    return len(rows)


def count_runs(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(PipelineRun)) or 0
