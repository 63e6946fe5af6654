"""The webhook answer's insert while the worker runs, in one process, without HTTP.

A narrower companion to ``webhooks.py`` that needs no server and no load generator, so it says
something even on a busy machine: open-loop inserts into the inbox at ``--rate`` (each one as
the route does it, ``asyncio.to_thread`` around ``Database.write``) while the webhook worker
processes the same deliveries in its thread, as inside ``cipulse serve``. Each variant runs on
a fresh database, in turns, so both see the same background load:

- ``queue``: as shipped; on SQLite the writers of the process take turns in arrival order
  (``db.WriteQueue``).
- ``busy``: the same without the queue: writers wait in SQLite's busy handler, as before.
  (On PostgreSQL the two are the same code; ``busy`` is then a repeat.)

Then, per round, the worker alone: ``--drain`` deliveries stored first, then processed with
nothing else running (deliveries per second).

    .venv/bin/python bench/webhooks_writers.py [--backends sqlite,postgresql] [--rate 200]
        [--duration 10] [--rounds 2] [--drain 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import threading
import time
import uuid
from typing import Any

from sqlalchemy import create_engine, text

from cipulse import migrate
from cipulse.db import Database
from cipulse.github.webhooks import parse_delivery
from cipulse.live.bus import Bus
from cipulse.models import utcnow
from cipulse.webhooks import repository as inbox
from cipulse.webhooks.tasks import WebhookWorker
from webhooks_deliveries import Generator

PG_ADMIN = os.environ.get(
    "CIPULSE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def fresh(backend: str) -> tuple[str, Any]:
    if backend == "sqlite":
        return f"sqlite:///{tempfile.mkdtemp()}/writers.db", None
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    name = f"cipulse_writers_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    return admin.url.set(database=name).render_as_string(hide_password=False), (admin, name)


def drop(handle: Any) -> None:
    if handle is not None:
        admin, name = handle
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


async def burst(db: Database, deliveries: list[Any], rate: float) -> list[float]:
    """Open loop: delivery i is stored at t0 + i/rate; answers the ms from due to committed."""

    def store(d: Any) -> None:
        parsed = parse_delivery(d.headers, d.body)
        with db.write() as uow:
            inbox.store(uow.session, parsed, d.body, now=utcnow())

    latencies: list[float] = []

    async def one(d: Any, due: float) -> None:
        await asyncio.to_thread(store, d)
        latencies.append((time.perf_counter() - due) * 1000)

    loop_t0 = time.perf_counter()
    pending = []
    for i, d in enumerate(deliveries):
        due = loop_t0 + i / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        pending.append(asyncio.create_task(one(d, due)))
    await asyncio.gather(*pending)
    return latencies


def run_variant(backend: str, variant: str, rate: float, duration: float) -> dict[str, Any]:
    url, handle = fresh(backend)
    db = Database(url)
    try:
        migrate.upgrade(db.engine)
        if variant == "busy":
            db._write_queue = None
        gen = Generator("bench", seed=7)
        warm, timed = gen.take(int(rate)), gen.take(int(rate * duration))
        worker = WebhookWorker(db=db, bus=Bus())
        stop = threading.Event()
        processed = [0]

        def work() -> None:
            while not stop.is_set():
                n = worker.process_due()
                processed[0] += n
                if not n:
                    time.sleep(0.01)

        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        asyncio.run(burst(db, warm, rate))
        started, before = time.perf_counter(), processed[0]
        latencies = asyncio.run(burst(db, timed, rate))
        elapsed = time.perf_counter() - started
        done = processed[0] - before
        stop.set()
        thread.join()
        return {
            "backend": backend,
            "variant": variant,
            "n": len(latencies),
            "p50": percentile(latencies, 0.5),
            "p99": percentile(latencies, 0.99),
            "max": max(latencies),
            "worker_per_s": done / elapsed,
        }
    finally:
        db.dispose()
        drop(handle)


def drain_rate(backend: str, n: int) -> float:
    url, handle = fresh(backend)
    db = Database(url)
    try:
        migrate.upgrade(db.engine)
        for d in Generator("bench", seed=11).take(n):
            with db.write() as uow:
                inbox.store(uow.session, parse_delivery(d.headers, d.body), d.body, now=utcnow())
        worker = WebhookWorker(db=db, bus=Bus())
        started, done = time.perf_counter(), 0
        while handled := worker.process_due():
            done += handled
        return done / (time.perf_counter() - started)
    finally:
        db.dispose()
        drop(handle)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--drain", type=int, default=1000, help="0: skip the worker alone")
    args = parser.parse_args()
    rows = []
    for backend in [b for b in args.backends.split(",") if b]:
        for _ in range(args.rounds):
            for variant in ("queue", "busy"):
                row = run_variant(backend, variant, args.rate, args.duration)
                load = os.getloadavg()[0]
                row["load"] = load
                rows.append(row)
                print(
                    f"{backend:10} {variant:6} {args.rate:.0f}/s: insert p50 {row['p50']:7.1f}"
                    f" p99 {row['p99']:8.1f} max {row['max']:8.1f} ms; worker"
                    f" {row['worker_per_s']:5.0f}/s; load {load:.1f}",
                    flush=True,
                )
            if args.drain:
                rate = drain_rate(backend, args.drain)
                print(
                    f"{backend:10} worker alone: {rate:5.0f} deliveries/s"
                    f" ({args.drain} stored first); load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
