"""Reads for the metrics: hourly rollup rows for whole hours, raw runs only for the ragged edge."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from cipulse.models import Pipeline, PipelineRun, PipelineRunHourly

COUNT_FIELDS = ("total", "running", "success", "failure", "duration_sum", "duration_count")


def rollup_counts(session: Session, *, since_hour: datetime) -> Sequence[Any]:
    h = PipelineRunHourly
    # Grouping by ``pipeline_id + 0`` keeps SQLite from walking the primary key (pipeline,
    # hour) over all history to avoid a sort; it then reads only the window's hours.
    pipeline = (h.pipeline_id + 0).label("pipeline_id")
    return session.execute(
        select(
            pipeline,
            func.sum(h.total),
            func.sum(h.running),
            func.sum(h.success),
            func.sum(h.failure),
            func.sum(h.duration_sum),
            func.sum(h.duration_count),
        )
        .where(h.hour_start >= since_hour)
        .group_by(pipeline)
    ).all()


def raw_counts(session: Session, *, start: datetime, end: datetime) -> Sequence[Any]:
    r = PipelineRun
    return session.execute(
        select(
            r.pipeline_id,
            func.count(),
            func.sum(case((r.status == "running", 1), else_=0)),
            func.sum(case((r.status == "success", 1), else_=0)),
            func.sum(case((r.status == "failure", 1), else_=0)),
            func.coalesce(func.sum(r.duration_sec), 0.0),
            func.count(r.duration_sec),
        )
        .where(r.started_at >= start, r.started_at < end)
        .group_by(r.pipeline_id)
    ).all()


def hourly_rows(session: Session, *, since_hour: datetime) -> Sequence[Any]:
    h = PipelineRunHourly
    return session.execute(
        select(h.hour_start, h.total, h.running, h.success, h.failure).where(
            h.hour_start >= since_hour
        )
    ).all()


def last_finished(session: Session, pipeline_ids: list[int]) -> dict[int, tuple[str, datetime]]:
    """Newest finished run of each pipeline, one index seek per pipeline."""
    out: dict[int, tuple[str, datetime]] = {}
    for pipeline_id in pipeline_ids:
        row = session.execute(
            select(PipelineRun.status, PipelineRun.finished_at)
            .where(PipelineRun.pipeline_id == pipeline_id, PipelineRun.finished_at.is_not(None))
            .order_by(PipelineRun.finished_at.desc())
            .limit(1)
        ).first()
        if row is not None and row[1] is not None:
            out[pipeline_id] = (row[0], row[1])
    return out


def last_finished_overall(session: Session) -> tuple[str, datetime] | None:
    row = session.execute(
        select(PipelineRun.status, PipelineRun.finished_at)
        .where(PipelineRun.finished_at.is_not(None))
        .order_by(PipelineRun.finished_at.desc())
        .limit(1)
    ).first()
    return (row[0], row[1]) if row is not None and row[1] is not None else None


def pipeline_names(session: Session, ids: list[int]) -> dict[int, str]:
    if not ids:
        return {}
    return dict(
        session.execute(select(Pipeline.id, Pipeline.name).where(Pipeline.id.in_(ids))).all()
    )


def recent_runs(session: Session, *, limit: int) -> Sequence[PipelineRun]:
    return session.scalars(
        select(PipelineRun)
        .order_by(PipelineRun.started_at.desc(), PipelineRun.id.desc())
        .limit(limit)
    ).all()
