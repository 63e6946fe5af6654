"""Background upkeep of the rollups: recompute what the sync marked dirty, compact old hours.

Each pass claims a batch of dirty marks in one transaction (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, the single writer on SQLite), recomputes those slices from raw rows and drops the
marks. A write that marks an hour while it is being recomputed waits for the lock and marks it
again, so no change is lost; recomputing a slice twice gives the same rows.

Today and yesterday are stored per hour (a write there dirties, and a read refolds, one hour);
older days are stored whole. Days that age out of that span are compacted to whole-day rows.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from cipulse.db import Database
from cipulse.models.base import utcnow
from cipulse.models.rollup import WHOLE_DAY
from cipulse.stats import compute
from cipulse.stats import repository as stats_repo

if TYPE_CHECKING:
    from cipulse.context import AppContext

log = logging.getLogger(__name__)

BATCH = 20
EVERY_SECONDS = 5.0
MAX_DEFER_SECONDS = 30.0  # the longest a pass waits for a webhook burst to end
HOURLY_DAYS = 2  # today and yesterday: late webhooks of yesterday's runs still arrive
COMPACT_LOOKBACK = 30  # days before the hourly span searched for hours left to compact


def hourly_from(now: datetime) -> date:
    """The first day stored per hour."""
    return stats_repo.utc_day(now) - timedelta(days=HOURLY_DAYS - 1)


@dataclass
class Plan:
    """A repository-day's rollup rows, computed from raw rows and ready to replace the stored."""

    repo_id: int
    day: date
    hours: set[int] | None  # the hours whose rows are replaced; None: all the day's rows
    rows: list[tuple[int, compute.DayRollup]]  # (hour, or WHOLE_DAY, and its rollup)


def plan(session: Session, repo_id: int, day: date, hours: Iterable[int], *, hourly: bool) -> Plan:
    """Recompute the marked hours of a day (all of it when it is, or must become, whole)."""
    hours = set(hours)
    if hourly and WHOLE_DAY not in hours and not stats_repo.whole_days(session, [(repo_id, day)]):
        rows = [
            (hour, compute.rollup_day(*stats_repo.raw_day(session, repo_id, day, hour=hour)))
            for hour in sorted(hours)
        ]
        return Plan(repo_id, day, hours, rows)
    runs, jobs = stats_repo.raw_day(session, repo_id, day)
    if not hourly:
        return Plan(repo_id, day, None, [(WHOLE_DAY, compute.rollup_day(runs, jobs))])
    split = sorted(compute.split_hours(runs, jobs).items())
    return Plan(repo_id, day, None, [(h, compute.rollup_day(r, j)) for h, (r, j) in split])


def write(session: Session, planned: Plan) -> None:
    stats_repo.delete_rollups(session, planned.repo_id, planned.day, planned.hours)
    for hour, rollup in planned.rows:
        stats_repo.insert_rollup(session, planned.repo_id, planned.day, rollup, hour=hour)


def refresh(
    session: Session, repo_id: int, day: date, hours: Iterable[int], *, hourly: bool
) -> None:
    write(session, plan(session, repo_id, day, hours, hourly=hourly))


def _by_day(marks: Iterable[tuple[int, date, int]]) -> dict[tuple[int, date], set[int]]:
    by_day: dict[tuple[int, date], set[int]] = {}
    for repo_id, day, hour in marks:
        by_day.setdefault((repo_id, day), set()).add(hour)
    return by_day


def _claimed_pass(db: Database, batch: int, first_hourly: date) -> tuple[int, int]:
    """PostgreSQL: claim marks (other workers skip them) and recompute them in one transaction."""
    with db.write() as uow:
        claimed = stats_repo.claim_dirty(uow.session, limit=batch)
        by_day = _by_day(claimed)
        for (repo_id, day), hours in by_day.items():
            refresh(uow.session, repo_id, day, hours, hourly=day >= first_hourly)
            stats_repo.clear_dirty(uow.session, repo_id, day, hours)
    return len(claimed), len(by_day)


def _snapshot_pass(db: Database, batch: int, first_hourly: date) -> tuple[int, int]:
    """SQLite: recompute from a read snapshot, then write the rows in a short transaction.

    SQLite has one writer at a time; recomputing a busy hour inside the write transaction held
    the lock long enough to delay every webhook acknowledgement behind it. A mark written again
    after the snapshot has a newer ``marked_at``, so it stays and the hour is redone next time.
    """
    with db.read() as session:
        marks = stats_repo.oldest_dirty(session, limit=batch)
        by_day = _by_day((r, d, h) for r, d, h, _ in marks)
        plans = [
            plan(session, repo_id, day, hours, hourly=day >= first_hourly)
            for (repo_id, day), hours in by_day.items()
        ]
    if marks:
        with db.write() as uow:
            for planned in plans:
                write(uow.session, planned)
            stats_repo.clear_unchanged(uow.session, marks)
    return len(marks), len(by_day)


def rollup_pending(
    db: Database,
    *,
    batch: int = BATCH,
    max_batches: int | None = None,
    now: datetime | None = None,
) -> int:
    """Recompute dirty slices until none is left (or ``max_batches``); answers how many days."""
    first_hourly = hourly_from(now or utcnow())
    one_pass = _snapshot_pass if db.is_sqlite else _claimed_pass
    done = batches = 0
    while max_batches is None or batches < max_batches:
        marks, days = one_pass(db, batch, first_hourly)
        done += days
        batches += 1
        if marks < batch:
            break
    compact(db, first_hourly)
    return done


def compact(db: Database, first_hourly: date) -> int:
    """Fold the hourly rows of days older than the hourly span into whole-day rows."""
    with db.write() as uow:
        stale = stats_repo.hourly_days(
            uow.session,
            first_hourly - timedelta(days=COMPACT_LOOKBACK),
            first_hourly - timedelta(days=1),
        )
        for repo_id, day in stale:
            # Marks stay: a marked day is left out of reads and recomputed again anyway.
            refresh(uow.session, repo_id, day, [WHOLE_DAY], hourly=False)
    return len(stale)


async def rollup_forever(ctx: AppContext, *, every_seconds: float = EVERY_SECONDS) -> None:
    """Started from the lifespan; stops on cancel.

    A pass recomputes whole hours in Python, which holds the GIL that the webhook answers need;
    while deliveries keep arriving it waits, up to ``MAX_DEFER_SECONDS``. Reads stay exact
    meanwhile: they fold in the marked hours from raw rows.
    """
    deferred = 0.0
    while True:
        if deferred < MAX_DEFER_SECONDS and ctx.webhook_worker.answered_within(1.0):
            await asyncio.sleep(1.0)
            deferred += 1.0
            continue
        deferred = 0.0
        try:
            await asyncio.to_thread(rollup_pending, ctx.db)
        except Exception:
            log.exception("the daily rollups could not be brought up to date; retrying")
        await asyncio.sleep(every_seconds)
