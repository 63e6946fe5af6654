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
HOURLY_DAYS = 2  # today and yesterday: late webhooks of yesterday's runs still arrive
COMPACT_LOOKBACK = 30  # days before the hourly span searched for hours left to compact


def hourly_from(now: datetime) -> date:
    """The first day stored per hour."""
    return stats_repo.utc_day(now) - timedelta(days=HOURLY_DAYS - 1)


def refresh(
    session: Session, repo_id: int, day: date, hours: Iterable[int], *, hourly: bool
) -> None:
    """Recompute the marked hours of a day (all of it when it is, or must become, whole)."""
    hours = set(hours)
    if hourly and WHOLE_DAY not in hours and not stats_repo.whole_days(session, [(repo_id, day)]):
        for hour in sorted(hours):
            rollup = compute.rollup_day(*stats_repo.raw_day(session, repo_id, day, hour=hour))
            stats_repo.delete_rollups(session, repo_id, day, [hour])
            stats_repo.insert_rollup(session, repo_id, day, rollup, hour=hour)
        return
    runs, jobs = stats_repo.raw_day(session, repo_id, day)
    stats_repo.delete_rollups(session, repo_id, day)
    if not hourly:
        stats_repo.insert_rollup(session, repo_id, day, compute.rollup_day(runs, jobs))
        return
    for hour, (hour_runs, hour_jobs) in sorted(compute.split_hours(runs, jobs).items()):
        rollup = compute.rollup_day(hour_runs, hour_jobs)
        stats_repo.insert_rollup(session, repo_id, day, rollup, hour=hour)


def rollup_pending(
    db: Database,
    *,
    batch: int = BATCH,
    max_batches: int | None = None,
    now: datetime | None = None,
) -> int:
    """Recompute dirty slices until none is left (or ``max_batches``); answers how many days."""
    first_hourly = hourly_from(now or utcnow())
    done = batches = 0
    while max_batches is None or batches < max_batches:
        with db.write() as uow:
            claimed = stats_repo.claim_dirty(uow.session, limit=batch)
            by_day: dict[tuple[int, date], set[int]] = {}
            for repo_id, day, hour in claimed:
                by_day.setdefault((repo_id, day), set()).add(hour)
            for (repo_id, day), hours in by_day.items():
                refresh(uow.session, repo_id, day, hours, hourly=day >= first_hourly)
                stats_repo.clear_dirty(uow.session, repo_id, day, hours)
        done += len(by_day)
        batches += 1
        if len(claimed) < batch:
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
    """Started from the lifespan; stops on cancel."""
    while True:
        try:
            await asyncio.to_thread(rollup_pending, ctx.db)
        except Exception:
            log.exception("the daily rollups could not be brought up to date; retrying")
        await asyncio.sleep(every_seconds)
