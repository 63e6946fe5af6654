"""The hourly rollup kept up by ingest always equals one rebuilt from the raw runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from cipulse.db import Database
from cipulse.ingest import repository
from cipulse.ingest import service as ingest
from cipulse.ingest.schemas import RunEvent
from cipulse.models import PipelineRunHourly
from tests.conftest import wipe

BASE = datetime(2026, 11, 1, tzinfo=UTC)

events = st.builds(
    RunEvent,
    pipeline=st.sampled_from(["a", "b"]),
    status=st.sampled_from(["running", "success", "failure"]),
    started_at=st.one_of(st.none(), st.integers(0, 300).map(lambda m: BASE + timedelta(minutes=m))),
    duration_sec=st.one_of(st.none(), st.floats(0, 5000)),
    commit=st.sampled_from([None, "c1", "c2"]),
    id=st.sampled_from([None, "x", "y"]),
)


def rollup(db: Database) -> dict[tuple[int, datetime], tuple[object, ...]]:
    with db.read() as s:
        rows = s.scalars(select(PipelineRunHourly)).all()
        return {
            (r.pipeline_id, r.hour_start): (
                r.total,
                r.running,
                r.success,
                r.failure,
                round(r.duration_sum, 3),
                r.duration_count,
            )
            for r in rows
            if r.total
        }


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sequence=st.lists(events, max_size=12))
def test_incremental_rollup_matches_rebuild(database_url: str, sequence: list[RunEvent]) -> None:
    wipe(database_url)
    db = Database(database_url)
    try:
        for event in sequence:
            with db.write() as uow:
                ingest.ingest_run(uow, event=event)
        incremental = rollup(db)
        with db.write() as uow:
            repository.rebuild_rollup(uow.session)
        assert incremental == rollup(db)
    finally:
        db.dispose()
