"""Synthetic run history and the fastest honest way to get it into each database.

A million runs cannot go through ``POST /api/events/run`` in a benchmark's time budget, so the
history is written straight into ``pipeline_run`` (SQLite ``executemany``, PostgreSQL ``COPY``)
and the hourly rollup is then rebuilt from those rows with the application's own
``rebuild_rollup``: the state the server sees is the one ingest would have produced.
"""

from __future__ import annotations

import random
import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from cipulse import migrate
from cipulse.db import make_engine
from cipulse.ingest.repository import rebuild_rollup
from cipulse.models import PipelineRunHourly

HISTORY_DAYS = 365
CHUNK = 50_000
PIPELINES = (
    # name, share of all runs, median duration (s), failure rate
    ("build", 0.22, 240, 0.10),
    ("unit-tests", 0.20, 420, 0.14),
    ("lint", 0.14, 60, 0.08),
    ("integration-tests", 0.10, 1200, 0.25),
    ("e2e-browser", 0.08, 1500, 0.28),
    ("docker-image", 0.08, 600, 0.09),
    ("deploy-staging", 0.07, 300, 0.12),
    ("deploy-production", 0.03, 360, 0.06),
    ("nightly-fuzz", 0.04, 1800, 0.30),
    ("docs", 0.04, 90, 0.05),
)
BRANCHES = ("main",) * 6 + ("develop", "release/2.4", "feature/login", "fix/flaky-cache")
PEOPLE = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "dependabot[bot]")
RUN_COLUMNS = (
    "pipeline_id",
    "external_id",
    "status",
    "started_at",
    "finished_at",
    "duration_sec",
    "branch",
    "commit_sha",
    "triggered_by",
    "source",
    "received_at",
    "updated_at",
)
SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"  # SQLAlchemy's storage format: text compares in time order


def generate_runs(size: int, *, now: datetime, seed: int) -> Iterator[list[tuple[Any, ...]]]:
    """``size`` runs over the last year, oldest first, in chunks; naive UTC datetimes.

    Start times are uniform over the year; a run whose start plus duration lies after ``now`` is
    still running, which leaves a realistic handful of running runs in the last hour.
    """
    rng = random.Random(seed)
    now = now.astimezone(UTC).replace(tzinfo=None)
    span = HISTORY_DAYS * 86400.0
    offsets = sorted(rng.random() * span for _ in range(size))
    weights = [p[1] for p in PIPELINES]
    ids = range(1, len(PIPELINES) + 1)
    chunk: list[tuple[Any, ...]] = []
    for i, offset in enumerate(offsets):
        pid = rng.choices(ids, weights)[0]
        _, _, median, fail_rate = PIPELINES[pid - 1]
        started = now - timedelta(seconds=span - offset)
        duration = round(median * rng.lognormvariate(0, 0.45), 3)
        finished: datetime | None = started + timedelta(seconds=duration)
        if finished > now:
            status, finished, duration_or_none = "running", None, None
        else:
            status = "failure" if rng.random() < fail_rate else "success"
            duration_or_none = duration
        chunk.append(
            (
                pid,
                f"hist-{i}",
                status,
                started,
                finished,
                duration_or_none,
                rng.choice(BRANCHES),
                f"{rng.getrandbits(160):040x}",
                rng.choice(PEOPLE),
                "api",
                finished or started,
                finished or started,
            )
        )
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


@dataclass
class BenchDatabase:
    """A throw-away, migrated database of one backend; ``drop`` removes every trace."""

    backend: str
    url: str
    admin_url: str | None = None
    path: str | None = None

    @classmethod
    def create(cls, backend: str, *, workdir: str, pg_admin_url: str) -> BenchDatabase:
        if backend == "sqlite":
            path = f"{workdir}/bench-{uuid.uuid4().hex[:8]}.db"
            db = cls(backend, f"sqlite:///{path}", path=path)
        else:
            name = f"cipulse_bench_{uuid.uuid4().hex[:10]}"
            admin = create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            admin.dispose()
            url = make_url(pg_admin_url).set(database=name).render_as_string(hide_password=False)
            db = cls(backend, url, admin_url=pg_admin_url)
        engine = make_engine(db.url)
        migrate.upgrade(engine)
        engine.dispose()
        return db

    def drop(self) -> None:
        if self.backend == "sqlite":
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            return
        name = make_url(self.url).database
        admin = create_engine(self.admin_url or "", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    def libpq_url(self) -> str:
        return make_url(self.url).set(drivername="postgresql").render_as_string(hide_password=False)


def _insert_pipelines(db: BenchDatabase, now: datetime) -> None:
    engine = make_engine(db.url)
    created = now - timedelta(days=HISTORY_DAYS + 1)
    with engine.begin() as conn:
        for pid, (name, *_rest) in enumerate(PIPELINES, start=1):
            conn.execute(
                text("INSERT INTO pipeline (id, name, created_at) VALUES (:id, :name, :at)"),
                {"id": pid, "name": name, "at": created.replace(tzinfo=None)},
            )
        if db.backend == "postgresql":
            conn.execute(text("SELECT setval('pipeline_id_seq', (SELECT max(id) FROM pipeline))"))
    engine.dispose()


def _load_sqlite(db: BenchDatabase, chunks: Iterator[list[tuple[Any, ...]]]) -> None:
    conn = sqlite3.connect(db.path or "", isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")  # the load only; the server runs with its own pragmas
    placeholders = ", ".join("?" * len(RUN_COLUMNS))
    sql = f"INSERT INTO pipeline_run ({', '.join(RUN_COLUMNS)}) VALUES ({placeholders})"
    for chunk in chunks:
        rows = [
            (
                *r[:3],
                r[3].strftime(SQLITE_TIME),
                r[4].strftime(SQLITE_TIME) if r[4] else None,
                *r[5:10],
                r[10].strftime(SQLITE_TIME),
                r[11].strftime(SQLITE_TIME),
            )
            for r in chunk
        ]
        conn.execute("BEGIN")
        conn.executemany(sql, rows)
        conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def _load_postgresql(db: BenchDatabase, chunks: Iterator[list[tuple[Any, ...]]]) -> None:
    with psycopg.connect(db.libpq_url()) as conn:
        for chunk in chunks:
            with (
                conn.cursor() as cur,
                cur.copy(f"COPY pipeline_run ({', '.join(RUN_COLUMNS)}) FROM STDIN") as copy,
            ):
                for row in chunk:
                    copy.write_row(row)
            conn.commit()


def _vacuum_analyze(db: BenchDatabase) -> None:
    """What autovacuum does on its own shortly after a bulk load; SQLite gets nothing (the app
    never runs ANALYZE there, so neither does the benchmark)."""
    with psycopg.connect(db.libpq_url(), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def load_history(db: BenchDatabase, size: int, *, now: datetime, seed: int) -> dict[str, Any]:
    """Bulk-load ``size`` runs, rebuild the rollup; returns how long each step took."""
    timings: dict[str, Any] = {}
    t0 = time.perf_counter()
    _insert_pipelines(db, now)
    chunks = generate_runs(size, now=now, seed=seed)
    if db.backend == "sqlite":
        _load_sqlite(db, chunks)
    else:
        _load_postgresql(db, chunks)
    timings["generate_and_load_s"] = round(time.perf_counter() - t0, 2)

    t0 = time.perf_counter()
    engine = make_engine(db.url)
    with Session(engine) as session:
        rebuild_rollup(session)
        session.commit()
        timings["rollup_rows"] = session.scalar(select(func.count()).select_from(PipelineRunHourly))
    engine.dispose()
    timings["rebuild_rollup_s"] = round(time.perf_counter() - t0, 2)

    if db.backend == "postgresql":
        t0 = time.perf_counter()
        _vacuum_analyze(db)
        timings["vacuum_analyze_s"] = round(time.perf_counter() - t0, 2)
    return timings
