"""A generated history of a busy organisation, written with bulk inserts.

Used by the analytics tests (metrics against a plain reference) and ``bench/analytics.py``
(1M runs, 10M jobs). Deterministic for a seed. It has what the metrics must get right:
re-run attempts (failed then passed, so first-attempt and final outcomes differ), flaky jobs,
cancelled and skipped jobs, runs still in progress, several branches, runner labels and groups.
Rows get explicit ids so they can be inserted in large batches; PostgreSQL sequences are moved
past them afterwards.
"""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, text
from sqlalchemy.orm import Session

from cipulse.db import WRITE_OPTION
from cipulse.models import Job, Repository, Workflow, WorkflowRun
from cipulse.stats import repository as stats_repo

WORKFLOWS: dict[str, list[str]] = {
    "CI": [
        "build",
        "lint",
        "unit (3.11)",
        "unit (3.12)",
        "unit (3.13)",
        "integration",
        "e2e",
        "typecheck",
        "docs",
        "package",
        "coverage",
        "security",
    ],
    "Release": ["build", "publish", "notify"],
    "Nightly": ["build", "soak", "benchmark", "report"],
    "Docs": ["build-docs", "linkcheck"],
}
WORKFLOW_WEIGHTS = {"CI": 0.75, "Release": 0.05, "Nightly": 0.05, "Docs": 0.15}
FLAKY = {"e2e": 0.08, "integration": 0.05, "soak": 0.1, "linkcheck": 0.06}
LABELS = [["ubuntu-latest"], ["ubuntu-latest"], ["self-hosted", "linux", "x64"], ["macos-14"]]
GROUPS = {"ubuntu-latest": "GitHub Actions", "macos-14": "GitHub Actions", "self-hosted": "infra"}


@dataclass
class Generated:
    repositories: int = 0
    runs: int = 0
    attempts: int = 0
    jobs: int = 0


def _ts(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


def generate(
    engine: Engine,
    *,
    runs: int,
    days: int,
    now: datetime,
    repositories: int = 3,
    seed: int = 7,
    batch: int = 50_000,
    progress: Callable[[int], None] | None = None,
) -> Generated:
    """Insert about ``runs`` workflow runs (plus re-run attempts) over the last ``days``."""
    # Writing transactions from the start (BEGIN IMMEDIATE on SQLite): _setup reads the highest
    # ids and then inserts, and a deferred transaction that another writer overtook between
    # the two fails at once with "database is locked" instead of waiting its turn.
    engine = engine.execution_options(**{WRITE_OPTION: True})
    rng = random.Random(seed)
    out = Generated(repositories=repositories)
    with engine.begin() as conn:
        repos, workflows, base_run, base_job = _setup(conn, repositories, seed, now)
    run_rows: list[dict[str, Any]] = []
    job_rows: list[dict[str, Any]] = []

    def flush() -> None:
        with engine.begin() as conn:
            if run_rows:
                conn.execute(insert(WorkflowRun), run_rows)
            if job_rows:
                conn.execute(insert(Job), job_rows)
        run_rows.clear()
        job_rows.clear()
        if progress is not None:
            progress(out.runs)

    history = _history(
        rng,
        out,
        repos,
        workflows,
        runs=runs,
        days=days,
        now=now,
        seed=seed,
        ids=(base_run, base_job),
    )
    for attempts, jobs in history:
        run_rows += attempts
        job_rows += jobs
        if len(job_rows) >= batch:
            flush()
    flush()
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            for table in ("repository", "workflow", "workflow_run", "job"):
                sql = "SELECT setval(pg_get_serial_sequence(:t, 'id'), "
                sql += "(SELECT COALESCE(MAX(id), 1) FROM "
                conn.execute(text(sql + table + "))"), {"t": table})  # table: a constant name
    with Session(engine) as session, session.begin():
        for rid in repos:  # bulk rows bypass the sync's dirty marks: mark their days here
            stats_repo.mark_all_dirty(session, rid)
    return out


RUN_COLUMNS = [
    "id",
    "github_id",
    "run_attempt",
    "repository_id",
    "workflow_id",
    "name",
    "run_number",
    "event",
    "status",
    "conclusion",
    "head_branch",
    "head_sha",
    "actor_login",
    "html_url",
    "created_at",
    "run_started_at",
    "updated_at",
]
JOB_COLUMNS = [
    "id",
    "github_id",
    "run_id",
    "run_attempt",
    "name",
    "workflow_name",
    "status",
    "conclusion",
    "head_sha",
    "head_branch",
    "html_url",
    "created_at",
    "started_at",
    "completed_at",
    "runner_name",
    "runner_group_name",
    "labels",
]


def generate_sqlite_bulk(
    engine: Engine,
    *,
    runs: int,
    days: int,
    now: datetime,
    repositories: int = 3,
    seed: int = 7,
    batch: int = 200_000,
    progress: Callable[[int], None] | None = None,
) -> Generated:
    """The same history as :func:`generate`, loaded into a SQLite file as fast as it goes.

    For the benchmark at millions of rows: plain ``sqlite3`` ``executemany`` of tuples with
    the journal and fsync off (a crash mid-load loses the file, which is only a benchmark
    fixture), and the secondary indexes of the run and job tables dropped during the load and
    rebuilt once after it. Every day is marked dirty at the end; the caller runs the rollup task.
    """
    if engine.dialect.name != "sqlite" or not engine.url.database:
        raise ValueError("generate_sqlite_bulk needs a SQLite file database")
    rng = random.Random(seed)
    out = Generated(repositories=repositories)
    with engine.execution_options(**{WRITE_OPTION: True}).begin() as conn:  # as in generate()
        repos, workflows, base_run, base_job = _setup(conn, repositories, seed, now)
    engine.dispose()
    con = sqlite3.connect(engine.url.database, isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode=OFF")
        con.execute("PRAGMA synchronous=OFF")
        con.execute("PRAGMA cache_size=-1000000")
        indexes = con.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            "AND tbl_name IN ('workflow_run', 'job')"
        ).fetchall()
        for name, _sql in indexes:
            con.execute(f'DROP INDEX "{name}"')  # names read from sqlite_master
        insert_run = _insert_sql("workflow_run", RUN_COLUMNS)
        insert_job = _insert_sql("job", JOB_COLUMNS)
        run_rows: list[tuple[Any, ...]] = []
        job_rows: list[tuple[Any, ...]] = []

        def flush() -> None:
            con.execute("BEGIN")
            con.executemany(insert_run, run_rows)
            con.executemany(insert_job, job_rows)
            con.execute("COMMIT")
            run_rows.clear()
            job_rows.clear()
            if progress is not None:
                progress(out.runs)

        history = _history(
            rng,
            out,
            repos,
            workflows,
            runs=runs,
            days=days,
            now=now,
            seed=seed,
            ids=(base_run, base_job),
        )
        for attempts, jobs in history:
            run_rows.extend(tuple(_sql_value(r[c]) for c in RUN_COLUMNS) for r in attempts)
            job_rows.extend(tuple(_sql_value(j[c]) for c in JOB_COLUMNS) for j in jobs)
            if len(job_rows) >= batch:
                flush()
        flush()
        for _name, sql in indexes:
            con.execute(sql)
        con.execute("PRAGMA journal_mode=WAL")
    finally:
        con.close()
    with Session(engine) as session, session.begin():
        stats_repo.mark_all_dirty(session)
    return out


def _insert_sql(table: str, columns: list[str]) -> str:
    marks = ", ".join("?" * len(columns))
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608 constants


def _sql_value(value: Any) -> Any:
    """What SQLAlchemy stores in SQLite: naive UTC text with microseconds, JSON text."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    if isinstance(value, list):
        return json.dumps(value)
    if isinstance(value, bool):
        return int(value)
    return value


def _setup(
    conn: Connection, repositories: int, seed: int, now: datetime
) -> tuple[list[int], dict[tuple[int, str], int], int, int]:
    """The repositories and workflows; answers them with the next free run and job ids."""
    base_repo = int(conn.scalar(select(func.coalesce(func.max(Repository.id), 0))) or 0)
    base_wf = int(conn.scalar(select(func.coalesce(func.max(Workflow.id), 0))) or 0)
    base_run = int(conn.scalar(select(func.coalesce(func.max(WorkflowRun.id), 0))) or 0)
    base_job = int(conn.scalar(select(func.coalesce(func.max(Job.id), 0))) or 0)
    repos = []
    workflows: dict[tuple[int, str], int] = {}
    for i in range(repositories):
        rid = base_repo + i + 1
        full = f"acme{seed}/service-{rid}"
        repos.append(rid)
        conn.execute(
            insert(Repository),
            {
                "id": rid,
                "github_id": 10_000_000 * seed + rid,
                "owner": full.split("/")[0],
                "name": full.split("/")[1],
                "full_name": full,
                "default_branch": "main",
                "html_url": f"https://github.com/{full}",
                "tracked": True,
                "branches": ["main", "release"],
                "created_at": now,
            },
        )
        for name in WORKFLOWS:
            base_wf += 1
            workflows[(rid, name)] = base_wf
            conn.execute(
                insert(Workflow),
                {
                    "id": base_wf,
                    "github_id": 20_000_000 * seed + base_wf,
                    "repository_id": rid,
                    "name": name,
                    "path": f".github/workflows/{name.lower()}.yml",
                    "state": "active",
                },
            )
    return repos, workflows, base_run, base_job


def _history(
    rng: random.Random,
    out: Generated,
    repos: list[int],
    workflows: dict[tuple[int, str], int],
    *,
    runs: int,
    days: int,
    now: datetime,
    seed: int,
    ids: tuple[int, int],
) -> Iterator[tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
    """Per generated run: its attempt rows and job rows (column name -> value)."""
    start = _ts(now) - timedelta(days=days)
    span = (now - start).total_seconds()
    run_id, job_id = ids
    names = list(WORKFLOW_WEIGHTS)
    weights = [WORKFLOW_WEIGHTS[n] for n in names]
    shas: dict[tuple[int, str], str] = {}
    for n in range(runs):
        run_rows: list[dict[str, Any]] = []
        job_rows: list[dict[str, Any]] = []
        rid = repos[rng.randrange(len(repos))]
        wf_name = rng.choices(names, weights)[0]
        created = _ts(start + timedelta(seconds=rng.random() * span))
        if created >= now:
            created = _ts(now) - timedelta(seconds=1)
        branch = rng.choice(["main", "main", "main", "release", f"feature-{rng.randrange(40)}"])
        key = (rid, branch)
        if key not in shas or rng.random() < 0.5:
            shas[key] = f"{rng.getrandbits(160):040x}"
        sha = shas[key]
        gid = 30_000_000_000 * seed + n + 1
        live = (now - created) < timedelta(minutes=20) and rng.random() < 0.5
        attempt_start = created
        attempts = 1
        while True:
            run_id += 1
            queue = rng.randint(0, 90)
            run_start = attempt_start + timedelta(seconds=queue)
            conclusions: list[str | None] = []
            ends = []
            labels = rng.choice(LABELS)
            for job_name in WORKFLOWS[wf_name]:
                job_id += 1
                wait = rng.choice([0, 2, 5, 10, 30, 60, 240])
                job_start = run_start + timedelta(seconds=wait)
                took = int(rng.lognormvariate(4.5, 0.7)) + 1
                job_end = job_start + timedelta(seconds=took)
                roll = rng.random()
                status = "completed"
                if live:
                    status = rng.choice(["queued", "in_progress", "completed"])
                if status != "completed":
                    conclusion = None
                elif roll < 0.03:
                    conclusion = "skipped"
                elif roll < 0.05:
                    conclusion = "cancelled"
                elif roll < 0.05 + 0.008 + FLAKY.get(job_name, 0.0):
                    conclusion = rng.choice(["failure", "failure", "failure", "timed_out"])
                else:
                    conclusion = rng.choice(["success"] * 20 + ["neutral"])
                conclusions.append(conclusion)
                if status == "completed":
                    ends.append(job_end)
                job_rows.append(
                    {
                        "id": job_id,
                        "github_id": 40_000_000_000 * seed + job_id,
                        "run_id": run_id,
                        "run_attempt": attempts,
                        "name": job_name,
                        "workflow_name": wf_name,
                        "status": status,
                        "conclusion": conclusion,
                        "head_sha": sha,
                        "head_branch": branch,
                        "html_url": f"https://github.com/x/y/actions/runs/{gid}/job/{job_id}",
                        "created_at": run_start,
                        "started_at": job_start if status != "queued" else None,
                        "completed_at": job_end if status == "completed" else None,
                        "runner_name": f"runner-{rng.randrange(20)}",
                        "runner_group_name": GROUPS.get(labels[0]),
                        "labels": labels,
                    }
                )
            done = all(c is not None for c in conclusions)
            if not done:
                run_conclusion = None
            elif any(c in ("failure", "timed_out") for c in conclusions):
                run_conclusion = "failure"
            elif "cancelled" in conclusions:
                run_conclusion = "cancelled"
            else:
                run_conclusion = "success"
            end = max(ends, default=run_start)
            run_rows.append(
                {
                    "id": run_id,
                    "github_id": gid,
                    "run_attempt": attempts,
                    "repository_id": rid,
                    "workflow_id": workflows[(rid, wf_name)],
                    "name": wf_name,
                    "run_number": n + 1,
                    "event": "push",
                    "status": "completed" if done else "in_progress",
                    "conclusion": run_conclusion,
                    "head_branch": branch,
                    "head_sha": sha,
                    "actor_login": f"dev{rng.randrange(30)}",
                    "html_url": f"https://github.com/x/y/actions/runs/{gid}/attempts/{attempts}",
                    "created_at": created,
                    "run_started_at": run_start,
                    "updated_at": end,
                }
            )
            out.attempts += 1
            out.jobs += len(conclusions)
            rerun = run_conclusion == "failure" and rng.random() < 0.4 and attempts < 3
            next_start = end + timedelta(seconds=rng.randint(60, 1800))
            if not rerun or next_start >= now:
                break
            attempts += 1
            attempt_start = next_start
        out.runs += 1
        yield run_rows, job_rows


def utc(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)
