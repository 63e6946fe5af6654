"""The founding design's summary, for comparison: recount the runs on every request.

Two variants of the same answer as ``cipulse.analytics.service.summary``:

- ``scan``: one ``GROUP BY pipeline_id`` over *all* runs, the window applied inside the
  aggregates (``CASE WHEN started_at >= :since``), so the work grows with history. This is the
  founding design's method and the one the target compares against.
- ``range``: the same ``GROUP BY`` with ``WHERE started_at >= :since``, which lets the database
  use the ``started_at`` index; what a less naive tool would write. Its cost grows with the runs
  inside the window rather than with all history.

Both take the last status per pipeline and overall from the same index seeks as the rollup-based
summary, so the comparison isolates how the counts are obtained.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from cipulse.analytics import repository
from cipulse.analytics.schemas import PipelineSummary, Summary
from cipulse.models import PipelineRun, utcnow

METHODS = ("scan", "range")


def _rate(success: int, failure: int) -> float | None:
    finished = success + failure
    return round(100.0 * success / finished, 2) if finished else None


def _avg(total: float, count: int) -> float | None:
    return round(total / count, 3) if count else None


def _counts(session: Session, *, since: datetime, method: str) -> list[Any]:
    r = PipelineRun
    if method == "scan":

        def within(condition: Any) -> Any:
            return and_(r.started_at >= since, condition)

        columns = [
            func.sum(case((r.started_at >= since, 1), else_=0)),
            func.sum(case((within(r.status == "running"), 1), else_=0)),
            func.sum(case((within(r.status == "success"), 1), else_=0)),
            func.sum(case((within(r.status == "failure"), 1), else_=0)),
            func.sum(case((r.started_at >= since, r.duration_sec), else_=None)),
            func.count(case((r.started_at >= since, r.duration_sec), else_=None)),
        ]
        query = select(r.pipeline_id, *columns)
    elif method == "range":
        columns = [
            func.count(),
            func.sum(case((r.status == "running", 1), else_=0)),
            func.sum(case((r.status == "success", 1), else_=0)),
            func.sum(case((r.status == "failure", 1), else_=0)),
            func.sum(r.duration_sec),
            func.count(r.duration_sec),
        ]
        query = select(r.pipeline_id, *columns).where(r.started_at >= since)
    else:
        raise ValueError(f"unknown method {method!r}")
    return list(session.execute(query.group_by(r.pipeline_id)).all())


def summary(session: Session, *, minutes: int, method: str, now: datetime | None = None) -> Summary:
    now = now or utcnow()
    rows = [
        (pid, *(int(v or 0) for v in (total, running, success, failure)), dsum or 0.0, int(dcount))
        for pid, total, running, success, failure, dsum, dcount in _counts(
            session, since=now - timedelta(minutes=minutes), method=method
        )
        if total
    ]
    ids = [row[0] for row in rows]
    names = repository.pipeline_names(session, ids)
    lasts = repository.last_finished(session, ids)
    per_pipeline = []
    for pid, total, running, success, failure, dsum, dcount in rows:
        last = lasts.get(pid)
        per_pipeline.append(
            PipelineSummary(
                pipeline=names[pid],
                total=total,
                success=success,
                failure=failure,
                running=running,
                success_rate=_rate(success, failure),
                avg_duration_sec=_avg(dsum, dcount),
                last_status=last[0] if last else None,
                last_finished_at=last[1] if last else None,
            )
        )
    per_pipeline.sort(key=lambda p: (-p.total, p.pipeline))
    totals = [sum(row[i] for row in rows) for i in range(1, 7)]
    overall_last = repository.last_finished_overall(session)
    return Summary(
        window_minutes=minutes,
        generated_at=now,
        total=int(totals[0]),
        running=int(totals[1]),
        success=int(totals[2]),
        failure=int(totals[3]),
        success_rate=_rate(int(totals[2]), int(totals[3])),
        avg_duration_sec=_avg(totals[4], int(totals[5])),
        last_status=overall_last[0] if overall_last else None,
        last_finished_at=overall_last[1] if overall_last else None,
        per_pipeline=per_pipeline,
    )


def same_answer(a: Summary, b: Summary) -> list[str]:
    """Differences between two summaries of the same moment (averages within rounding)."""
    diffs: list[str] = []

    def compare(where: str, x: Any, y: Any) -> None:
        for field in ("total", "success", "failure", "running", "last_status", "last_finished_at"):
            if getattr(x, field) != getattr(y, field):
                diffs.append(f"{where}.{field}: {getattr(x, field)!r} != {getattr(y, field)!r}")
        for field in ("success_rate", "avg_duration_sec"):
            u, v = getattr(x, field), getattr(y, field)
            if (u is None) != (v is None) or (u is not None and abs(u - v) > 0.01):
                diffs.append(f"{where}.{field}: {u!r} != {v!r}")

    compare("summary", a, b)
    left = {p.pipeline: p for p in a.per_pipeline}
    right = {p.pipeline: p for p in b.per_pipeline}
    if left.keys() != right.keys():
        diffs.append(f"pipelines: {sorted(left)} != {sorted(right)}")
    for name in left.keys() & right.keys():
        compare(name, left[name], right[name])
    return diffs
