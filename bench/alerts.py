"""The alert evaluator on a large history: taking it in, then the cost of each pass.

    .venv/bin/python bench/alerts.py --runs 20000     # a minute or two
    .venv/bin/python bench/alerts.py --runs 200000    # long: run it idle

A history of ``--runs`` GitHub runs over ``--days`` (``cipulse.stats.generate``: ~11 jobs a run,
re-runs, flaky and failing jobs) is bulk-inserted into a SQLite file, with the four GitHub rules
(branch, failure rate, flaky job, duration) on a null channel. Measured, in the same run:

* **take-in**: the evaluator's first passes over the whole history (runs per second);
* **idle pass**: one pass when nothing is new, as the worker runs it every 30 s (p50/p95);
* **one new run**: a pass that takes in one new failed run on a default branch (p50/p95);
* **naive**: what a tool without stored state does every pass: read every finished run of the
  default branches in the window and recompute each branch's state from them (p50/p95).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from sqlalchemy import func, select  # noqa: E402

from cipulse import migrate  # noqa: E402
from cipulse.alerts import config as alert_config  # noqa: E402
from cipulse.alerts import evaluate, rules  # noqa: E402
from cipulse.alerts.schemas import AlertsFile  # noqa: E402
from cipulse.db import Database  # noqa: E402
from cipulse.models import AlertEvent, Repository, WorkflowRun, utcnow  # noqa: E402
from cipulse.settings import Settings  # noqa: E402
from cipulse.stats import generate  # noqa: E402

CONFIG = {
    "channels": [{"name": "null", "kind": "null"}],
    "rules": [
        {"name": "branch", "kind": "branch"},
        {"name": "rate", "kind": "failure_rate"},
        {"name": "flaky", "kind": "flaky_job"},
        {"name": "duration", "kind": "duration"},
    ],
}


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[max(0, round(0.95 * len(samples)) - 1)]


def naive_pass(db: Database, since: Any) -> int:
    """Recompute every default branch's state from its runs in the window."""
    with db.read() as s:
        repos = {r.id: r.default_branch or "main" for r in s.scalars(select(Repository))}
        latest: dict[tuple[int, int | None], tuple[Any, str | None]] = {}
        for repo_id, wf, created, conclusion, branch in s.execute(
            select(
                WorkflowRun.repository_id,
                WorkflowRun.workflow_id,
                WorkflowRun.created_at,
                WorkflowRun.conclusion,
                WorkflowRun.head_branch,
            ).where(WorkflowRun.status == "completed", WorkflowRun.created_at >= since)
        ):
            if branch != repos.get(repo_id) or rules.outcome(conclusion) is None:
                continue
            key = (repo_id, wf)
            if key not in latest or latest[key][0] < created:
                latest[key] = (created, conclusion)
    return sum(1 for _, c in latest.values() if rules.outcome(c) == "bad")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        settings = Settings(database_url=url, data_dir=Path(tmp), alert_lookback_hours=24)
        db = Database(url)
        migrate.upgrade(db.engine)
        now = utcnow()
        start = time.perf_counter()
        made = generate.generate(db.engine, runs=args.runs, days=args.days, now=now)
        print(
            f"generated {made.runs:,} runs, {made.attempts:,} attempts, {made.jobs:,} jobs "
            f"in {time.perf_counter() - start:.1f} s"
        )
        with db.write() as uow:
            alert_config.apply(uow.session, config=AlertsFile.model_validate(CONFIG), now=now)

        def one_pass() -> evaluate.Result:
            with db.write() as uow:
                return evaluate.evaluate(uow.session, settings=settings, now=utcnow(), holder="b")

        start = time.perf_counter()
        taken = 0
        while (result := one_pass()).runs:
            taken += result.runs
        took = time.perf_counter() - start
        with db.read() as s:
            alerts = s.scalar(select(func.count()).select_from(AlertEvent))
        print(
            f"take-in: {taken:,} run rows in {took:.1f} s = {taken / took:,.0f} runs/s "
            f"({alerts} alerts for the last {settings.alert_lookback_hours:g} h)"
        )

        p50, p95 = timed(one_pass, args.repeat)
        print(f"idle pass:            p50 {p50:7.1f} ms   p95 {p95:7.1f} ms")

        with db.read() as s:
            template = s.scalars(
                select(WorkflowRun).where(WorkflowRun.status == "completed").limit(1)
            ).one()
            repo = s.get_one(Repository, template.repository_id)
            base = {c: getattr(template, c) for c in ("repository_id", "workflow_id", "name")}
        counter = [10**12]

        def new_run_pass() -> None:
            counter[0] += 1
            with db.write() as uow:
                uow.session.add(
                    WorkflowRun(
                        github_id=counter[0],
                        run_attempt=1,
                        status="completed",
                        conclusion="failure" if counter[0] % 2 else "success",
                        head_branch=repo.default_branch or "main",
                        created_at=utcnow(),
                        updated_at=utcnow(),
                        jobs_synced_for="x",
                        **base,
                    )
                )
            one_pass()

        p50, p95 = timed(new_run_pass, args.repeat)
        print(f"one new run:          p50 {p50:7.1f} ms   p95 {p95:7.1f} ms")
        since = now - timedelta(days=args.days)
        p50, p95 = timed(lambda: naive_pass(db, since), args.repeat)
        print(f"naive recompute pass: p50 {p50:7.1f} ms   p95 {p95:7.1f} ms")
        db.dispose()


if __name__ == "__main__":
    main()
