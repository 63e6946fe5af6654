"""Design C's navigation pages (repository, workflow, run, job) on a large SQLite history.

    .venv/bin/python bench/navigation.py --runs 100000        # 100k runs, 800k jobs, ~1 min

One repository, three workflows, ``--runs`` runs spread over a year (15 % failed, a few
branches), 8 jobs each, bulk-inserted into a SQLite file built by the migrations. Each page's
service call is timed (median and p95 of ``--repeat``), and in the same run the naive method
for the same health numbers: every attempt of the window loaded as ORM rows and reduced in
Python to the latest attempt of each run (what the first version of the pages did).
``--reuse`` measures a database generated earlier (same ``--db``).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from sqlalchemy import select, text  # noqa: E402

from cipulse import migrate  # noqa: E402
from cipulse.db import Database, make_engine  # noqa: E402
from cipulse.explore import repository as explore_repo  # noqa: E402
from cipulse.explore import service as explore  # noqa: E402
from cipulse.models import WorkflowRun  # noqa: E402

REPO = "big/repo"
JOBS = 8


def generate(url: str, runs: int) -> None:
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    db = Database(url)
    rng = random.Random(1)
    now = datetime.now(UTC).replace(tzinfo=None)
    with db.engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO repository (id, owner, name, full_name, default_branch, tracked,"
                " branches, created_at) VALUES (1, 'big', 'repo', :f, 'main', 1, '[]', :n)"
            ),
            {"f": REPO, "n": now},
        )
        for w in range(1, 4):
            c.execute(
                text(
                    "INSERT INTO workflow (id, github_id, repository_id, name, path)"
                    " VALUES (:i, :g, 1, :n, :p)"
                ),
                {"i": w, "g": 1000 + w, "n": f"wf{w}", "p": f".github/workflows/wf{w}.yml"},
            )
        run_rows, job_rows = [], []
        job_id = 1
        for i in range(1, runs + 1):
            created = now - timedelta(seconds=rng.uniform(0, 365 * 86400))
            run_rows.append(
                {
                    "id": i,
                    "g": 10_000_000 + i,
                    "w": rng.randint(1, 3),
                    "b": rng.choice(["main", "main", "dev", f"feature-{i % 50}"]),
                    "c": created,
                    "s": created + timedelta(seconds=5),
                    "u": created + timedelta(seconds=rng.uniform(60, 900)),
                    "co": "failure" if rng.random() < 0.15 else "success",
                }
            )
            for k in range(JOBS):
                job_rows.append(
                    {
                        "id": job_id,
                        "g": 50_000_000 + job_id,
                        "r": i,
                        "n": f"job-{k}",
                        "c": created,
                        "s": created + timedelta(seconds=5),
                        "e": created + timedelta(seconds=60 + k),
                    }
                )
                job_id += 1
        c.execute(
            text(
                "INSERT INTO workflow_run (id, github_id, run_attempt, repository_id, workflow_id,"
                " status, conclusion, head_branch, created_at, run_started_at, updated_at, event,"
                " head_sha) VALUES (:id, :g, 1, 1, :w, 'completed', :co, :b, :c, :s, :u, 'push',"
                " 'abc')"
            ),
            run_rows,
        )
        c.execute(
            text(
                "INSERT INTO job (id, github_id, run_id, run_attempt, name, status, conclusion,"
                " created_at, started_at, completed_at, labels) VALUES (:id, :g, :r, 1, :n,"
                " 'completed', 'success', :c, :s, :e, '[]')"
            ),
            job_rows,
        )
    db.dispose()


def naive_health(session: Any, since: datetime) -> explore.Health:
    rows = session.scalars(select(WorkflowRun).where(WorkflowRun.created_at >= since)).all()
    latest: dict[int, WorkflowRun] = {}
    for row in rows:
        kept = latest.get(row.github_id)
        if kept is None or row.run_attempt > kept.run_attempt:
            latest[row.github_id] = row
    return explore.health(latest.values())


def counted_health(session: Any, now: datetime, days: int) -> explore.Health:
    f = explore_repo.RunFilter(repo_id=1, since=now - timedelta(days=days))
    counts = explore_repo.state_counts(session, f)
    return explore.health_of_counts((r.status, r.conclusion, r[3]) for r in counts)


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[max(0, round(0.95 * len(samples)) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument(
        "--db", default=str(Path(tempfile.gettempdir()) / "cipulse-bench" / "navigation.db")
    )
    parser.add_argument("--reuse", action="store_true")
    args = parser.parse_args()
    path = Path(args.db)
    url = f"sqlite:///{path}"
    if not args.reuse:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        started = time.perf_counter()
        generate(url, args.runs)
        print(
            f"generated {args.runs} runs, {args.runs * JOBS} jobs in "
            f"{time.perf_counter() - started:.0f} s"
        )
    db = Database(url)
    now = datetime.now(UTC)
    none = explore.Filters()
    with db.read() as s:
        newest_run = s.scalar(select(WorkflowRun.github_id).order_by(WorkflowRun.id.desc()))
        some_job = 50_000_000 + JOBS * (args.runs // 2) + 3
        cases: list[tuple[str, Callable[[], Any]]] = [
            ("orgs, 7 d", lambda: explore.orgs(s, days=7, now=now, app_mode=False)),
            *[
                (
                    f"repository page, {d} d",
                    lambda d=d: explore.repo_overview(
                        s, full_name=REPO, days=d, now=now, filters=none, page=1, per_page=25
                    ),
                )
                for d in (7, 30, 90)
            ],
            *[
                (
                    f"workflow page, {d} d",
                    lambda d=d: explore.workflow_detail(
                        s,
                        full_name=REPO,
                        workflow_id=1001,
                        days=d,
                        now=now,
                        filters=none,
                        page=1,
                        per_page=25,
                    ),
                )
                for d in (7, 30, 90)
            ],
            (
                "run page",
                lambda: explore.run_detail(
                    s, full_name=REPO, run_id=newest_run or 0, attempt=None, workflow_text=None
                ),
            ),
            (
                "job page (20 previous)",
                lambda: explore.job_detail(s, full_name=REPO, job_id=some_job),
            ),
            *[
                (f"health (database counts), {d} d", lambda d=d: counted_health(s, now, d))
                for d in (7, 30, 90)
            ],
            *[
                (
                    f"naive health (ORM rows), {d} d",
                    lambda d=d: naive_health(s, now - timedelta(days=d)),
                )
                for d in (7, 30, 90)
            ],
        ]
        print(f"{'read':38s} {'p50 ms':>9s} {'p95 ms':>9s}")
        for label, fn in cases:
            p50, p95 = timed(fn, args.repeat)
            print(f"{label:38s} {p50:9.1f} {p95:9.1f}")
    db.dispose()


if __name__ == "__main__":
    main()
