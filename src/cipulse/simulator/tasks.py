"""Demo mode: seed a month of history, then start and finish a run every few seconds."""

from __future__ import annotations

import asyncio
import logging
import random
import time

from cipulse.context import AppContext
from cipulse.ingest import repository as ingest_repo
from cipulse.ingest import service as ingest
from cipulse.ingest.schemas import RunEvent
from cipulse.models import utcnow
from cipulse.simulator import github_demo
from cipulse.simulator import service as simulator

log = logging.getLogger(__name__)


def seed_history(ctx: AppContext, *, days: int = 30, runs_per_day: int = 40) -> int:
    """Fill an empty database with history; a database that has runs is left alone."""
    with ctx.db.read() as session:
        if ingest_repo.count_runs(session):
            return 0
    events = simulator.history_events(
        random.Random(42),
        days=days,
        runs_per_day=runs_per_day,
        pipelines=list(simulator.DEFAULT_PIPELINES),
        now=utcnow(),
    )
    with ctx.db.write() as uow:
        for event in events:
            ingest.ingest_run(uow, event=event, source="simulator")
    return len(events)


def seed_github(ctx: AppContext) -> None:
    """The GitHub-shaped demo history (``github_demo``), once; failures are logged, not fatal."""
    started = time.perf_counter()
    try:
        seeded = github_demo.seed(ctx)
    except Exception:
        log.exception("the GitHub demo history could not be seeded")
        return
    if seeded is not None:
        log.info(
            "seeded the GitHub demo in %.1f s: %d repositories, %d runs, %d jobs, %d logs, "
            "%d test reports, %d artifact files",
            time.perf_counter() - started, seeded.repositories, seeded.runs, seeded.jobs,
            seeded.logs, seeded.reports, seeded.artifact_files,
        )  # fmt: skip


async def tick_forever(ctx: AppContext, *, every_seconds: float = 6.0) -> None:
    rng = random.Random()
    while True:
        pipeline = rng.choice(simulator.DEFAULT_PIPELINES)
        commit = f"{rng.getrandbits(160):040x}"
        branch = rng.choice(simulator.BRANCHES)
        who = rng.choice(simulator.PEOPLE)
        start = RunEvent(
            pipeline=pipeline, status="running", branch=branch, commit=commit, triggered_by=who
        )
        await asyncio.to_thread(_record, ctx, start)
        await asyncio.sleep(every_seconds * rng.uniform(0.3, 0.8))
        done = start.model_copy(
            update={"status": "failure" if rng.random() < 0.15 else "success", "started_at": None}
        )
        await asyncio.to_thread(_record, ctx, done)
        await asyncio.sleep(every_seconds * rng.uniform(0.2, 0.5))


def _record(ctx: AppContext, event: RunEvent) -> None:
    try:
        with ctx.db.write() as uow:
            ingest.record_run(uow, ctx=ctx, event=event, source="simulator")
    except Exception:
        log.exception("demo tick failed")
