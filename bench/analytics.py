"""Overview and job failure-rate reads from the daily rollups, against the same from raw rows.

    .venv/bin/python bench/analytics.py --runs 100000 --days 37 --db /tmp/bench-100k.sqlite
    .venv/bin/python bench/analytics.py --runs 1000000 --days 365 --db /tmp/bench-1m.sqlite

The two commands have the same volume per day (~2,700 runs, ~30,000 jobs) and ten times the
history: the reads should not change. The history (~11 jobs per run with re-runs, flaky jobs,
cancelled and skipped jobs) is loaded into a SQLite file by
``cipulse.stats.generate.generate_sqlite_bulk``, every day is marked dirty and the
application's own rollup task (``stats.tasks.rollup_pending``) builds the rollups, as it would
after a first sync. Then, in the same run, each read is timed:

* **rollup**: ``stats.service.overview`` and ``stats.service.job_rates`` (what the pages and
  ``/api/stats`` call), with the current hour of every repository marked dirty as a live sync
  leaves it: "warm" calls reuse that hour's fold-in while no write moves its mark, "cold"
  calls empty the fold-in cache first, and "right after a write" calls move the mark (a
  webhook) before every call, so each recomputes the hour from raw rows;
* **raw**: the same numbers computed from the raw rows of the window (every day of the window
  recomputed with the same ``compute.rollup_day``), and design A's SQL aggregation over raw rows
  (``jobstats.service.ci_data``) for the job view.

``--reuse`` keeps a database generated earlier (same ``--db``) and only measures.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from sqlalchemy import func, select  # noqa: E402

from cipulse import migrate  # noqa: E402
from cipulse.db import Database  # noqa: E402
from cipulse.jobstats import service as jobstats  # noqa: E402
from cipulse.models import (  # noqa: E402
    Job,
    JobDaily,
    QueueDaily,
    Repository,
    RunDaily,
    WorkflowRun,
    utcnow,
)
from cipulse.stats import compute, generate, service, tasks  # noqa: E402
from cipulse.stats import repository as stats_repo  # noqa: E402
from cipulse.stats.repository import Scope  # noqa: E402


def timed(
    fn: Callable[[], Any], repeat: int, before: Callable[[], Any] | None = None
) -> tuple[float, float, Any]:
    """p50 and p95 in milliseconds over ``repeat`` calls (after one warm-up call).

    ``before`` runs ahead of each call, outside the timing (the write a read follows).
    """
    result = fn()
    samples = []
    for _ in range(repeat):
        if before is not None:
            before()
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    p95 = samples[min(len(samples) - 1, int(0.95 * len(samples)))]
    return statistics.median(samples), p95, result


def raw_totals(db: Database, window: service.Window) -> tuple[int, int]:
    """The overview's and job view's counts computed from the window's raw rows."""
    runs = compute.RunAgg()
    jobs: dict[tuple[str, str], compute.JobAgg] = {}
    with db.read() as s:
        repo_ids = list(s.scalars(select(Repository.id)))
        for rid in repo_ids:
            for day in window.all_days():
                rollup = compute.rollup_day(*stats_repo.raw_day(s, rid, day))
                for agg in rollup.runs.values():
                    runs.add(agg)
                for (wf, name, _br), agg in rollup.jobs.items():
                    jobs.setdefault((wf, name), compute.JobAgg()).add(agg)
    return runs.runs, len(jobs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=365, help="history length")
    parser.add_argument("--window", type=int, default=30, help="days shown by the pages")
    parser.add_argument("--repos", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--raw-repeat", type=int, default=3)
    parser.add_argument(
        "--db", default=str(Path(tempfile.gettempdir()) / "cipulse-bench-analytics.sqlite")
    )
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--load-only", action="store_true", help="generate and roll up, no reads")
    parser.add_argument(
        "--rebuild", action="store_true", help="with --reuse: recompute every rollup first"
    )
    args = parser.parse_args()

    path = Path(args.db)
    if not args.reuse:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    db = Database(f"sqlite:///{path}")
    migrate.upgrade(db.engine)
    now = utcnow()
    with db.read() as s:
        have = int(s.scalar(select(func.count()).select_from(WorkflowRun)) or 0)
    if have and args.rebuild:
        start = time.perf_counter()
        with db.write() as uow:
            stats_repo.mark_all_dirty(uow.session)
        rolled = tasks.rollup_pending(db, batch=50)
        took = time.perf_counter() - start
        print(f"rollup task (rebuild): {rolled:,} (repository, day) in {took:.1f} s")
    if not have:
        start = time.perf_counter()
        made = generate.generate_sqlite_bulk(
            db.engine,
            runs=args.runs,
            days=args.days,
            now=now,
            repositories=args.repos,
            progress=lambda n: print(f"  {n:>9,} runs", end="\r", flush=True),
        )
        print(
            f"generated {made.runs:,} runs, {made.attempts:,} attempts, {made.jobs:,} jobs "
            f"in {time.perf_counter() - start:.1f} s"
        )
        start = time.perf_counter()
        rolled = tasks.rollup_pending(db, batch=50)
        took = time.perf_counter() - start
        print(f"rollup task: {rolled:,} (repository, day) in {took:.1f} s")
    if args.load_only:
        return
    with db.read() as s:
        runs = int(s.scalar(select(func.count()).select_from(WorkflowRun)) or 0)
        jobs = int(s.scalar(select(func.count()).select_from(Job)) or 0)
        repos = list(s.scalars(select(Repository).order_by(Repository.id)))
        stored = {
            m.__tablename__: int(s.scalar(select(func.count()).select_from(m)) or 0)
            for m in (RunDaily, JobDaily, QueueDaily)
        }
    repo = repos[0]
    print(f"database: {runs:,} run attempts, {jobs:,} jobs, {path.stat().st_size / 1e6:.0f} MB")
    print("rollup rows: " + ", ".join(f"{n} {c:,}" for n, c in stored.items()))

    # Leave the current hour dirty everywhere, as a live sync does: the fold-in is part of
    # every figure below.
    with db.write() as uow:
        for r in repos:
            stats_repo.mark_dirty(uow.session, r.id, [now])
    window = service.last_days(args.window, now)
    print(f"\nwindow: {window.days} days; {args.repeat} timed calls each (ms)")
    print(f"{'read':<46} {'p50':>9} {'p95':>9}")

    def row(
        label: str, fn: Callable[[], Any], repeat: int, before: Callable[[], Any] | None = None
    ) -> Any:
        p50, p95, result = timed(fn, repeat, before)
        print(f"{label:<46} {p50:>9.1f} {p95:>9.1f}")
        return result

    def with_session(call: Callable[[Any], Any]) -> Callable[[], Any]:
        def run() -> Any:
            with db.read() as s:
                return call(s)

        return run

    def cold(call: Callable[[Any], Any]) -> Callable[[], Any]:
        def run() -> Any:
            service._FOLDED.clear()
            with db.read() as s:
                return call(s)

        return run

    one = Scope(repo_ids=(repo.id,))
    row(
        "overview, all repositories, cold",
        cold(lambda s: service.overview(s, scope=Scope(), window=window)),
        args.repeat,
    )
    row(
        "job failure rates, all repositories, cold",
        cold(lambda s: service.job_rates(s, scope=Scope(), window=window)),
        args.repeat,
    )
    ov = row(
        "overview, all repositories, warm",
        with_session(lambda s: service.overview(s, scope=Scope(), window=window)),
        args.repeat,
    )
    row(
        "overview, one repository, main, warm",
        with_session(
            lambda s: service.overview(s, scope=Scope(one.repo_ids, "main"), window=window)
        ),
        args.repeat,
    )
    jr = row(
        "job failure rates, all repositories, warm",
        with_session(lambda s: service.job_rates(s, scope=Scope(), window=window)),
        args.repeat,
    )
    row(
        "job failure rates, one repository, warm",
        with_session(lambda s: service.job_rates(s, scope=one, window=window)),
        args.repeat,
    )

    def write() -> None:
        """What a webhook leaves: the current hour marked again, so the read refolds it."""
        with db.write() as uow:
            stats_repo.mark_dirty(uow.session, repo.id, [utcnow()])

    row(
        "overview, right after a write",
        with_session(lambda s: service.overview(s, scope=Scope(), window=window)),
        args.repeat,
        write,
    )
    row(
        "job failure rates, right after a write",
        with_session(lambda s: service.job_rates(s, scope=Scope(), window=window)),
        args.repeat,
        write,
    )
    raw_runs, raw_jobs = row(
        "overview + job counts from raw rows",
        lambda: raw_totals(db, window),
        args.raw_repeat,
    )
    row(
        "job failure rates, design A SQL over raw rows",
        with_session(
            lambda s: jobstats.ci_data(
                s, repo_id=repo.id, repo=repo.full_name, branch=None, days=window.days, now=now
            )
        ),
        args.raw_repeat,
    )
    assert ov.kpis.runs == raw_runs, (ov.kpis.runs, raw_runs)
    assert len(jr.jobs) == raw_jobs, (len(jr.jobs), raw_jobs)
    print(f"\nsame numbers both ways: {raw_runs:,} runs, {raw_jobs} jobs in the window")

    start = time.perf_counter()
    with db.write() as uow:
        stats_repo.mark_dirty(uow.session, repo.id, [now])
    tasks.rollup_pending(db)
    took_ms = (time.perf_counter() - start) * 1000
    print(f"rollup task, the current hour of {len(repos)} repositories: {took_ms:.0f} ms")
    db.dispose()


if __name__ == "__main__":
    main()
