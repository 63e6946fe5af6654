"""Turn a pushed run event into stored state, idempotently.

Matching rule: an event with an ``id`` is that run of that pipeline; without one, an event joins
the newest still-running run of the same pipeline and commit. A run only moves forward
(running -> success/failure); anything else about a finished run is a duplicate and changes
nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.exc import IntegrityError

from cipulse.db import UnitOfWork
from cipulse.ingest import repository
from cipulse.ingest.schemas import FINAL_STATUSES, IngestResult, RunEvent, run_out
from cipulse.live.service import RUNS_CHANGED
from cipulse.models import PipelineRun, utcnow

if TYPE_CHECKING:
    from cipulse.context import AppContext


@dataclass(frozen=True)
class Transition:
    """What an ingest did, for the after-commit side effects."""

    run_id: int
    pipeline: str
    created: bool
    changed: bool
    became_failure: bool


def hour_of(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _times(
    event: RunEvent, now: datetime, started_before: datetime | None
) -> tuple[datetime, datetime | None, float | None]:
    """Fill in what the event left out: the least surprising start, finish and duration."""
    started = event.started_at or started_before
    finished = event.finished_at
    duration = event.duration_sec
    if event.status in FINAL_STATUSES:
        if finished is None:
            finished = started + timedelta(seconds=duration) if started and duration else now
        if started is None:
            started = finished - timedelta(seconds=duration or 0)
        if duration is None:
            duration = max((finished - started).total_seconds(), 0.0)
    else:
        started = started or now
        finished = None
        duration = None
    return started, finished, duration


def _set_rollup(uow: UnitOfWork, run: PipelineRun, sign: int) -> None:
    repository.add_to_rollup(
        uow.session,
        pipeline_id=run.pipeline_id,
        hour_start=hour_of(run.started_at),
        sign=sign,
        status=run.status,
        duration_sec=run.duration_sec,
    )


def ingest_run(
    uow: UnitOfWork, *, event: RunEvent, source: str = "api"
) -> tuple[IngestResult, Transition]:
    session = uow.session
    now = utcnow()
    pipeline = repository.get_or_create_pipeline(session, event.pipeline)

    existing: PipelineRun | None
    if event.id is not None:
        existing = repository.find_by_external_id(session, pipeline.id, event.id)
        if existing is None:
            existing = repository.find_running(session, pipeline.id, event.commit)
            if existing is not None and existing.external_id not in (None, event.id):
                existing = None
    else:
        existing = repository.find_running(session, pipeline.id, event.commit)

    if existing is None:
        started, finished, duration = _times(event, now, None)
        run = PipelineRun(
            pipeline_id=pipeline.id,
            external_id=event.id,
            status=event.status,
            started_at=started,
            finished_at=finished,
            duration_sec=duration,
            branch=event.branch,
            commit_sha=event.commit,
            triggered_by=event.triggered_by,
            source=source,
            received_at=now,
            updated_at=now,
        )
        run.pipeline = pipeline
        try:
            with session.begin_nested():
                session.add(run)
                session.flush()
        except IntegrityError:
            # Another request stored the same id a moment ago: this one is its duplicate.
            found = repository.find_by_external_id(session, pipeline.id, event.id or "")
            if found is None:
                raise
            return _unchanged(found)
        _set_rollup(uow, run, +1)
        return _result(run, created=True, changed=True, became_failure=run.status == "failure")

    if existing.status != "running" or event.status == "running":
        return _unchanged(existing)

    _set_rollup(uow, existing, -1)
    started, finished, duration = _times(event, now, existing.started_at)
    existing.status = event.status
    existing.started_at = started
    existing.finished_at = finished
    existing.duration_sec = duration
    existing.external_id = existing.external_id or event.id
    existing.branch = event.branch or existing.branch
    existing.triggered_by = event.triggered_by or existing.triggered_by
    existing.updated_at = now
    session.flush()
    _set_rollup(uow, existing, +1)
    return _result(existing, created=False, changed=True, became_failure=event.status == "failure")


def _unchanged(run: PipelineRun) -> tuple[IngestResult, Transition]:
    return _result(run, created=False, changed=False, became_failure=False)


def _result(
    run: PipelineRun, *, created: bool, changed: bool, became_failure: bool
) -> tuple[IngestResult, Transition]:
    return (
        IngestResult(created=created, changed=changed, run=run_out(run)),
        Transition(
            run_id=run.id,
            pipeline=run.pipeline.name,
            created=created,
            changed=changed,
            became_failure=became_failure,
        ),
    )


def record_run(
    uow: UnitOfWork, *, ctx: AppContext, event: RunEvent, source: str = "api"
) -> IngestResult:
    """Ingest one event and nudge what follows it after the commit: the alert evaluator (it
    reads the finished run from the database, so nothing is queued here) and a live update."""
    result, transition = ingest_run(uow, event=event, source=source)
    if transition.changed:
        uow.after_commit(ctx.alert_worker.wake)
    if transition.changed:
        uow.after_commit(lambda: ctx.bus.publish(RUNS_CHANGED, transition.run_id))
    return result
