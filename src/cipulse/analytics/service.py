"""Design E's summary and the dashboard's series, computed from the hourly rollup.

A window of ``minutes`` reads the rollup rows of its whole hours and the raw runs of the part of
its first hour that the window cuts, so the cost depends on the window, not on history.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta

from sqlalchemy.orm import Session

from cipulse.analytics import repository
from cipulse.analytics.schemas import DailyCount, PipelineSummary, Summary
from cipulse.ingest.schemas import RunOut, run_out
from cipulse.models import utcnow


def _ceil_hour(moment: datetime) -> datetime:
    floor = moment.replace(minute=0, second=0, microsecond=0)
    return floor if floor == moment else floor + timedelta(hours=1)


def _rate(success: int, failure: int) -> float | None:
    finished = success + failure
    return round(100.0 * success / finished, 2) if finished else None


def _avg(total: float, count: int) -> float | None:
    return round(total / count, 3) if count else None


def summary(session: Session, *, minutes: int, now: datetime | None = None) -> Summary:
    now = now or utcnow()
    start = now - timedelta(minutes=minutes)
    first_hour = _ceil_hour(start)
    sums: dict[int, list[float]] = defaultdict(lambda: [0, 0, 0, 0, 0.0, 0])
    for rows in (
        repository.rollup_counts(session, since_hour=first_hour),
        repository.raw_counts(session, start=start, end=first_hour),
    ):
        for pipeline_id, *values in rows:
            acc = sums[pipeline_id]
            for i, value in enumerate(values):
                acc[i] += value or 0

    ids = [pid for pid, acc in sums.items() if acc[0] > 0]
    names = repository.pipeline_names(session, ids)
    lasts = repository.last_finished(session, ids)
    per_pipeline = []
    for pid in ids:
        total, running, success, failure, dsum, dcount = sums[pid]
        last = lasts.get(pid)
        per_pipeline.append(
            PipelineSummary(
                pipeline=names[pid],
                total=int(total),
                success=int(success),
                failure=int(failure),
                running=int(running),
                success_rate=_rate(int(success), int(failure)),
                avg_duration_sec=_avg(dsum, int(dcount)),
                last_status=last[0] if last else None,
                last_finished_at=last[1] if last else None,
            )
        )
    per_pipeline.sort(key=lambda p: (-p.total, p.pipeline))

    totals = [sum(acc[i] for acc in sums.values()) for i in range(6)]
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


def daily(session: Session, *, days: int, now: datetime | None = None) -> list[DailyCount]:
    """Runs per UTC day for the last ``days`` days, today included, zero-filled."""
    now = now or utcnow()
    first_day = (now - timedelta(days=days - 1)).date()
    since = datetime.combine(first_day, datetime.min.time(), tzinfo=now.tzinfo)
    counts: dict[date, list[int]] = {
        first_day + timedelta(days=i): [0, 0, 0, 0] for i in range(days)
    }
    for hour, total, running, success, failure in repository.hourly_rows(session, since_hour=since):
        acc = counts.get(hour.date())
        if acc is not None:
            acc[0] += total
            acc[1] += success
            acc[2] += failure
            acc[3] += running
    return [
        DailyCount(day=day, total=c[0], success=c[1], failure=c[2], running=c[3])
        for day, c in sorted(counts.items())
    ]


def recent_runs(session: Session, *, limit: int) -> list[RunOut]:
    return [run_out(run) for run in repository.recent_runs(session, limit=limit)]
