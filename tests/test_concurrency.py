"""Concurrent ingests of the same run store it once and keep the rollup exact."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select

from cipulse.db import Database
from cipulse.ingest import repository
from cipulse.ingest import service as ingest
from cipulse.ingest.schemas import RunEvent
from cipulse.models import PipelineRun, PipelineRunHourly


def totals(db: Database) -> tuple[int, int, int, int]:
    with db.read() as s:
        h = PipelineRunHourly
        row = s.execute(
            select(func.sum(h.total), func.sum(h.running), func.sum(h.success), func.sum(h.failure))
        ).one()
        return tuple(int(v or 0) for v in row)  # type: ignore[return-value]


def ingest_one(db: Database, event: RunEvent) -> None:
    with db.write() as uow:
        ingest.ingest_run(uow, event=event)


def test_same_event_from_many_threads(db_url: str) -> None:
    db = Database(db_url)
    event = RunEvent(pipeline="p", status="success", id="dup", commit="c")
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: ingest_one(db, event), range(24)))
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(PipelineRun)) == 1
    assert totals(db) == (1, 0, 1, 0)
    db.dispose()


def test_many_completions_of_one_running_run(db_url: str) -> None:
    db = Database(db_url)
    ingest_one(db, RunEvent(pipeline="p", status="running", commit="c", id="r"))
    finals = [
        RunEvent(pipeline="p", status="failure" if i % 2 else "success", commit="c", id="r")
        for i in range(16)
    ]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda e: ingest_one(db, e), finals))
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(PipelineRun)) == 1
    total, running, success, failure = totals(db)
    assert (total, running, success + failure) == (1, 0, 1)
    before = totals(db)
    with db.write() as uow:
        repository.rebuild_rollup(uow.session)
    assert totals(db) == before
    db.dispose()


def test_parallel_distinct_runs_all_counted(db_url: str) -> None:
    db = Database(db_url)
    events = [
        RunEvent(pipeline=f"p{i % 3}", status="running", commit=f"c{i}") for i in range(30)
    ] + [RunEvent(pipeline=f"p{i % 3}", status="success", commit=f"c{i}") for i in range(30)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda e: ingest_one(db, e), events[:30]))
        list(pool.map(lambda e: ingest_one(db, e), events[30:]))
    assert totals(db) == (30, 0, 30, 0)
    db.dispose()
