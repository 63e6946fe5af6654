"""Benchmark of the webhook receiver: acknowledgement latency, sustained rate, kill and restart.

For each backend (SQLite, PostgreSQL), on a fresh database each time:

- **ours**: the real server (``python -m cipulse serve``, its own process on a free loopback port)
  takes an open-loop load of signed deliveries on ``POST /webhooks/github`` at a fixed rate
  (``--rate``, default 200/s for ``--duration`` 15 s), then at higher rates (``--steps``) until
  the p99 acknowledgement passes ``--target-ms`` or errors appear. After each burst the
  benchmark polls the database until the worker has processed everything, and checks that no
  acknowledged delivery is missing or failed and that every run and job ended in the state its
  deliveries say.
- **split**: the same load against ``cipulse serve`` with ``CIPULSE_WEBHOOK_WORKER_IN_SERVE=false``
  beside a ``cipulse worker`` process (the scale path; woken by NOTIFY on PostgreSQL, polling
  every second on SQLite): what the acknowledgement costs when the worker does not share the web
  process's GIL.
- **ackonly**: the same web process with no worker running during each burst (the worker process
  is started after it, to drain): the acknowledgement path's own cost and ceiling, with nothing
  else writing to the database. A diagnostic, not a way to run cipulse.
- **inline**: the same load against design C's original method, processing each delivery inside
  the request (``bench/webhooks_inline_server.py``, the same app plus one route).
- **kill**: a burst at ``--rate`` during which the server is killed (SIGKILL) half-way and started
  again at once on the same database. Only the deliveries that got no 2xx answer are sent again
  (GitHub redelivers failed deliveries only). Every acknowledged delivery must be stored and end
  processed, and the deliveries the killed worker had claimed must be processed after the
  restart without waiting for their claim to expire.

Deliveries are built from real captured payloads (``bench/webhooks_deliveries.py``); ours,
split, ackonly and inline get the same stream. Latency is measured by the client from sending
the request to receiving the whole answer; the load is open loop (each request leaves at its
scheduled time whether or not earlier ones were answered). The client is httpx (``--client
httpx``, sharded pools) or a minimal raw HTTP/1.1 client (``--client raw``) that costs the
shared CPUs much less (``bench/webhooks_client.py``).

    .venv/bin/python bench/webhooks.py [--backends sqlite,postgresql] [--rate 200]
        [--duration 15] [--steps 400,800,1600] [--methods ours,split,ackonly,inline,kill]
        [--client httpx|raw] [--out /tmp/cipulse-bench/webhooks.json]

Figures go to stdout as tables and to a JSON file (``--out``, default under /tmp).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from cipulse.db import make_engine
from cipulse.models import Job, WebhookDelivery, WorkflowRun
from cipulse.sync.repository import STATUS_RANK
from webhooks_client import Client, error_name, make_client
from webhooks_deliveries import FIXTURES, Delivery, Expectation, Generator, load_templates

BENCH_DIR = Path(__file__).resolve().parent
INBOX_PATH = "/webhooks/github"
INLINE_PATH = "/bench/inline-webhook"  # bench/webhooks_inline_server.py
SECRET = "bench-webhook-secret-4b1d"  # noqa: S105 (the throw-away servers' own)
METHODS = ("ours", "split", "ackonly", "inline", "kill")
DEFAULT_PG = os.environ.get(
    "CIPULSE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- figures ----------------------------------------------------------------------------------


def percentile(samples: list[float], q: float) -> float:
    """Nearest-rank percentile: a value that was actually observed."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def stats(samples: list[float]) -> dict[str, Any]:
    if not samples:
        return {"n": 0}
    return {
        "n": len(samples),
        "p50": round(percentile(samples, 50), 2),
        "p95": round(percentile(samples, 95), 2),
        "p99": round(percentile(samples, 99), 2),
        "max": round(max(samples), 2),
    }


def cpu_busy() -> Callable[[], float]:
    """Share of all CPUs not idle from now until the returned function is called."""

    def jiffies() -> tuple[int, int]:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:9]]
        return sum(values), values[3] + values[4]

    total0, idle0 = jiffies()

    def since() -> float:
        total1, idle1 = jiffies()
        return round(1 - (idle1 - idle0) / max(total1 - total0, 1), 3)

    return since


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds used so far by one process (all its threads)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine() -> dict[str, Any]:
    mem_kb = 0
    with contextlib.suppress(OSError), open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    cpu = platform.processor()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(mem_kb / 2**20, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def git_state() -> dict[str, Any]:
    """The commit measured, and whether the webhook code differs from it."""
    root = BENCH_DIR.parent
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        changed = subprocess.run(
            [
                "git",
                "status",
                "--porcelain",
                "--",
                "src/cipulse/webhooks",
                "src/cipulse/db.py",
                "src/cipulse/claims.py",
                "src/cipulse/sync/repository.py",
            ],
            cwd=root,
            capture_output=True,
            text=True,
        ).stdout.split("\n")
        return {"commit": commit, "webhook_code_changed": [c for c in changed if c.strip()]}
    return {}


def postgres_info(admin_url: str) -> dict[str, Any] | None:
    with contextlib.suppress(Exception):
        engine = create_engine(admin_url)
        with engine.connect() as conn:
            info = {
                name: str(conn.execute(text(f"SHOW {name}")).scalar_one())
                for name in ("server_version", "synchronous_commit", "shared_buffers", "fsync")
            }
        engine.dispose()
        return info
    return None


# --- databases and servers --------------------------------------------------------------------


@dataclass
class BenchDatabase:
    backend: str
    url: str
    drop: Callable[[], None]


def fresh_database(backend: str, workdir: Path, admin_url: str) -> BenchDatabase:
    """An empty database; the server migrates it when it starts, as in production."""
    if backend == "sqlite":
        path = workdir / f"webhooks-{uuid.uuid4().hex[:8]}.db"

        def remove() -> None:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)

        return BenchDatabase(backend, f"sqlite:///{path}", remove)
    name = f"cipulse_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    return BenchDatabase(backend, url, drop)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """The server under test in its own process(es), configured through ``CIPULSE_*``.

    Kinds: ``cipulse`` is ``python -m cipulse serve`` itself; ``inline`` is the same app with
    design C's in-request route (``webhooks_inline_server.py``); ``split`` is ``cipulse serve``
    with ``CIPULSE_WEBHOOK_WORKER_IN_SERVE=false`` beside a ``cipulse worker`` process.
    """

    def __init__(self, kind: str, database_url: str, workdir: Path, log_level: str) -> None:
        self.kind = kind
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("CIPULSE_") and k != "GITHUB_TOKEN"
        }
        self.env.update(
            CIPULSE_DATABASE_URL=database_url,
            CIPULSE_WEBHOOK_SECRET=SECRET,
            CIPULSE_DATA_DIR=str(workdir),
            CIPULSE_LOG_LEVEL=log_level,
            CIPULSE_POLL_INTERVAL_MINUTES="0",
            CIPULSE_RECONCILE_CRON="",
        )
        self.procs: list[subprocess.Popen[bytes]] = []
        self.starts = 0
        self.logs: list[Path] = []

    @property
    def pid(self) -> int:
        """The process that answers HTTP."""
        return self.procs[0].pid

    def cpu_s(self) -> float:
        return sum(process_cpu_s(p.pid) for p in self.procs)

    def _popen(
        self, argv: list[str], name: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        self.starts += 1
        path = self.workdir / f"server-{name}-{self.port}-{self.starts}.log"
        self.logs.append(path)
        with path.open("wb") as logfile:
            return subprocess.Popen(
                argv,
                stdout=logfile,
                stderr=subprocess.STDOUT,
                env=self.env | (env or {}),
                cwd=BENCH_DIR.parent,
            )

    def spawn(self) -> None:
        port = ["--port", str(self.port)]
        env = None
        if self.kind == "cipulse":
            argv = [sys.executable, "-m", "cipulse", "serve", *port]
        elif self.kind == "inline":
            argv = [sys.executable, str(BENCH_DIR / "webhooks_inline_server.py"), *port]
        else:  # split, ackonly: the web process without its worker
            argv = [sys.executable, "-m", "cipulse", "serve", *port]
            env = {"CIPULSE_WEBHOOK_WORKER_IN_SERVE": "false"}
        self.procs = [self._popen(argv, self.kind, env)]

    def start_worker(self) -> None:
        """``cipulse worker`` in its own process (split: always; ackonly: between bursts)."""
        argv = [sys.executable, "-m", "cipulse", "worker"]
        self.procs.append(self._popen(argv, f"{self.kind}-worker"))

    def stop_worker(self) -> None:
        worker = self.procs.pop()
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()

    async def wait_ready(self, limit_s: float = 90.0) -> float:
        """Seconds from now until ``/health`` answers 200 (the process must be spawned)."""
        started = time.perf_counter()
        proc = self.procs[0]
        async with httpx.AsyncClient(base_url=self.base, timeout=2) as http:
            while True:
                if proc.poll() is not None or time.perf_counter() - started > limit_s:
                    tail = self.logs[-1].read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"the {self.kind} server did not start:\n{tail}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get("/health")).status_code == 200:
                        break
                await asyncio.sleep(0.05)
        if self.kind == "split":  # the worker, once the web process has migrated the database
            self.start_worker()
        return time.perf_counter() - started

    def kill(self) -> None:
        for proc in self.procs:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is not None:
                continue
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# --- open-loop load ---------------------------------------------------------------------------


@dataclass
class Sent:
    delivery: Delivery
    at: float  # scheduled send time (perf_counter)
    started: float = 0.0
    done: float = 0.0
    status: int | None = None
    answer: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


async def open_loop(
    client: Client,
    path: str,
    deliveries: list[Delivery],
    rate: float,
    *,
    hooks: dict[int, Callable[[], Awaitable[None]]] | None = None,
) -> tuple[list[Sent], list[asyncio.Task[None]]]:
    """Send delivery i at t0 + i/rate, whatever happened to the earlier ones.

    ``hooks[i]`` is started (not awaited) just before delivery i leaves; its task is returned.
    """
    hooks = hooks or {}
    t0 = time.perf_counter() + 0.05
    sent = [Sent(d, t0 + i / rate) for i, d in enumerate(deliveries)]

    async def send(item: Sent) -> None:
        item.started = time.perf_counter()
        try:
            answer = await client.post(
                path, content=item.delivery.body, headers=item.delivery.headers
            )
            item.status = answer.status_code
            with contextlib.suppress(ValueError, AttributeError):
                item.answer = answer.json().get("status")
        except Exception as exc:  # any failure: not acknowledged (httpx may leak others)
            item.error = error_name(exc)
        item.done = time.perf_counter()

    tasks: list[asyncio.Task[None]] = []
    hook_tasks: list[asyncio.Task[None]] = []
    try:
        for i, item in enumerate(sent):
            delay = item.at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if i in hooks:
                hook_tasks.append(asyncio.create_task(hooks[i]()))
            tasks.append(asyncio.create_task(send(item)))
        await asyncio.gather(*tasks)
    except BaseException:
        for task in [*tasks, *hook_tasks]:
            task.cancel()
        await asyncio.gather(*tasks, *hook_tasks, return_exceptions=True)
        raise
    return sent, hook_tasks


def outcome(item: Sent) -> str:
    return str(item.status) if item.status is not None else (item.error or "?")


def summarize(sent: list[Sent], rate: float) -> dict[str, Any]:
    ok = [s for s in sent if s.ok]
    t0 = sent[0].at
    end = max(s.done for s in sent)
    started = [s.started for s in sent]
    return {
        "offered_per_s": rate,
        "sent": len(sent),
        "sent_per_s": round(len(sent) / max(max(started) - min(started), 1e-9), 1),
        "acked": len(ok),
        "acked_per_s": round(len(ok) / max(end - t0, 1e-9), 1),
        "not_acked": len(sent) - len(ok),
        "outcomes": dict(Counter(outcome(s) for s in sent)),
        "answers": dict(Counter(s.answer for s in ok)),
        "duplicates_sent": sum(s.delivery.duplicate for s in sent),
        # acknowledgement latency: request sent -> answer received, acknowledged requests only
        "ack_ms": stats([(s.done - s.started) * 1000 for s in ok]),
        # the same from the scheduled send time: includes any lag of the load generator itself
        "ack_from_schedule_ms": stats([(s.done - s.at) * 1000 for s in ok]),
        "client_lag_ms": stats([(s.started - s.at) * 1000 for s in sent]),
    }


# --- database checks --------------------------------------------------------------------------


def inbox_counts(engine: Engine) -> dict[str, int]:
    with Session(engine) as session:
        rows = session.execute(
            select(WebhookDelivery.state, func.count()).group_by(WebhookDelivery.state)
        ).all()
    return {state: int(n) for state, n in rows}


def wait_drained(engine: Engine, stored_at_least: int, timeout: float) -> dict[str, Any]:
    """Poll until nothing is pending and at least ``stored_at_least`` deliveries are stored."""
    started = time.perf_counter()
    while True:
        counts = inbox_counts(engine)
        drained = counts.get("pending", 0) == 0 and sum(counts.values()) >= stored_at_least
        waited = time.perf_counter() - started
        if drained or waited > timeout:
            return {"drained": drained, "waited_s": round(waited, 2), "states": counts}
        time.sleep(0.2)


def inbox_rows(engine: Engine) -> dict[str, dict[str, Any]]:
    columns = (
        WebhookDelivery.delivery_id,
        WebhookDelivery.id,
        WebhookDelivery.state,
        WebhookDelivery.received_at,
        WebhookDelivery.processed_at,
        WebhookDelivery.claimed_by,
        WebhookDelivery.claimed_until,
        WebhookDelivery.attempts,
        WebhookDelivery.last_error,
    )
    with Session(engine) as session:
        rows = session.execute(select(*columns)).all()
    return {row[0]: row._asdict() for row in rows}


def processing_figures(
    engine: Engine,
    guids: set[str],
    acked: set[str],
    burst_end: datetime,
    worker_from: datetime | None = None,
) -> dict[str, Any]:
    """What the worker did with one burst's deliveries, from the inbox itself."""
    rows = [r for g, r in inbox_rows(engine).items() if g in guids]
    done = [r for r in rows if r["processed_at"] is not None]
    lags = [(r["processed_at"] - r["received_at"]).total_seconds() * 1000 for r in done]
    first_in = min((r["received_at"] for r in rows), default=None)
    if worker_from is not None:  # the worker was started only then (ackonly)
        first_in = worker_from
    last_out = max((r["processed_at"] for r in done), default=None)
    stored = {r["delivery_id"] for r in rows}
    return {
        "stored": len(rows),
        "states": dict(Counter(r["state"] for r in rows)),
        "lost": len(acked - stored),  # acknowledged, yet not in the inbox
        "failed": sum(r["state"] == "failed" for r in rows),
        "retried": sum((r["attempts"] or 0) > 1 for r in rows),
        # received -> processed, per delivery (server clock)
        "processing_lag_ms": stats(lags),
        "done_after_burst_s": round((last_out - burst_end).total_seconds(), 2)
        if last_out
        else None,
        "worker_per_s": round(len(done) / max((last_out - first_in).total_seconds(), 1e-3), 1)
        if last_out and first_in
        else None,
    }


def check_state(engine: Engine, expect: Expectation) -> dict[str, Any]:
    """Every run and job holds the highest status its acknowledged deliveries carried.

    ``behind``: lower or missing, an acknowledged update was lost. ``ahead``: higher, a delivery
    that got no 2xx (an answer after GitHub's 10 s, say) was processed all the same.
    """
    with Session(engine) as session:
        runs = dict(
            session.execute(
                select(WorkflowRun.github_id, WorkflowRun.status).where(
                    WorkflowRun.run_attempt == 1
                )
            ).all()
        )
        jobs = dict(session.execute(select(Job.github_id, Job.status)).all())
    behind: list[str] = []
    ahead: list[str] = []
    for kind, want, have in (("run", expect.runs, runs), ("job", expect.jobs, jobs)):
        for gid, status in want.items():
            got = have.get(gid)
            if got == status:
                continue
            higher = got is not None and STATUS_RANK.get(got, 0) > STATUS_RANK.get(status, 0)
            (ahead if higher else behind).append(f"{kind} {gid}: expected {status}, stored {got}")
    return {
        "runs": len(expect.runs),
        "jobs": len(expect.jobs),
        "behind": len(behind),
        "ahead": len(ahead),
        "examples": (behind + ahead)[:5],
        "ok": not behind,
    }


def state_cell(state: dict[str, Any]) -> str:
    if state["behind"]:
        return f"-{state['behind']}"
    return f"+{state['ahead']}" if state["ahead"] else "ok"


# --- measurements -----------------------------------------------------------------------------


def acked_guids(sent: Iterable[Sent]) -> set[str]:
    return {s.delivery.guid for s in sent if s.ok}


class Target:
    """One server on one fresh database, with its generator and what it acknowledged so far."""

    def __init__(self, method: str, backend: str, args: argparse.Namespace, workdir: Path):
        self.method = method
        self.backend = backend
        self.args = args
        self.db = fresh_database(backend, workdir, args.pg_admin_url)
        kind = {"ours": "cipulse", "kill": "cipulse"}.get(method, method)
        self.server = ServerProcess(kind, self.db.url, workdir, args.log_level)
        self.path = INLINE_PATH if method == "inline" else INBOX_PATH
        self.engine = make_engine(self.db.url)
        seed = args.seed + (1 if method == "kill" else 0)  # the same stream for each method
        self.generator = Generator(SECRET, seed=seed, templates=load_templates(args.fixtures))
        self.expect = Expectation()
        self.acked: set[str] = set()
        self.startup_s: list[float] = []

    async def start(self) -> None:
        self.server.spawn()
        self.startup_s.append(round(await self.server.wait_ready(), 2))

    def close(self) -> None:
        self.server.stop()
        self.engine.dispose()
        self.db.drop()

    def record(self, sent: list[Sent]) -> set[str]:
        ok = acked_guids(sent)
        self.acked |= ok
        self.expect.add(s.delivery for s in sent if s.ok)
        return ok

    async def warm_up(self, http: Client) -> dict[str, Any]:
        """A short untimed burst: connections opened, caches and the pool warm, then drained."""
        deliveries = self.generator.take(max(1, round(self.args.rate * self.args.warmup)))
        sent, _ = await open_loop(http, self.path, deliveries, self.args.rate)
        self.record(sent)
        if self.method == "ackonly":
            self.server.start_worker()
        if self.method != "inline":
            await asyncio.to_thread(wait_drained, self.engine, len(self.acked), 60)
        if self.method == "ackonly":
            await asyncio.to_thread(self.server.stop_worker)
        return {"sent": len(sent), "acked": sum(s.ok for s in sent)}

    async def measure(self, http: Client, rate: float, seconds: float) -> dict[str, Any]:
        deliveries = self.generator.take(round(rate * seconds))
        before = cpu_busy()  # what else runs on the shared machine, just before the burst
        await asyncio.sleep(1.0)
        busy_before = before()
        busy = cpu_busy()
        server_cpu0, client_cpu0 = self.server.cpu_s(), time.process_time()
        wall0 = time.perf_counter()
        sent, _ = await open_loop(http, self.path, deliveries, rate)
        wall = time.perf_counter() - wall0
        burst_end = datetime.now(UTC)
        result: dict[str, Any] = {
            "rate": rate,
            "seconds": seconds,
            **summarize(sent, rate),
            "server_cores": round((self.server.cpu_s() - server_cpu0) / wall, 2),
            "client_cores": round((time.process_time() - client_cpu0) / wall, 2),
            "machine_busy": busy(),
            "machine_busy_before": busy_before,
        }
        result["samples"] = [  # [scheduled s from start, latency ms or None, outcome]
            [
                round(x.at - sent[0].at, 4),
                round((x.done - x.started) * 1000, 2) if x.ok else None,
                outcome(x),
            ]
            for x in sent
        ]
        ok = self.record(sent)
        if self.method != "inline":
            worker_from = None
            if self.method == "ackonly":
                worker_from = datetime.now(UTC)
                self.server.start_worker()
            drain = await asyncio.to_thread(
                wait_drained, self.engine, len(self.acked), self.args.drain_timeout
            )
            if self.method == "ackonly":
                await asyncio.to_thread(self.server.stop_worker)
            figures = await asyncio.to_thread(
                processing_figures,
                self.engine,
                {d.guid for d in deliveries},
                ok,
                burst_end,
                worker_from,
            )
            result["processing"] = {**drain, **figures}
            result["machine_busy_incl_drain"] = busy()
        result["state"] = await asyncio.to_thread(check_state, self.engine, self.expect)
        a = result["ack_ms"]
        result["ack_ok"] = bool(
            result["not_acked"] == 0
            and a.get("p99", math.inf) <= self.args.target_ms
            and result["acked_per_s"] >= 0.95 * rate
        )
        # the load generator fell behind its schedule: the figures say more about it than the server
        result["client_limited"] = bool(
            result["sent_per_s"] < 0.95 * rate or result["client_lag_ms"].get("p99", 0) > 20
        )
        processing = result.get("processing", {})
        result["processing_ok"] = bool(
            result["state"]["ok"]
            and processing.get("drained", True)
            and not processing.get("lost")
            and not processing.get("failed")
        )
        return result


def describe(method: str, r: dict[str, Any]) -> str:
    a = r["ack_ms"]
    text_ = (
        f"{method} {r['rate']:.0f}/s: acked {r['acked']}/{r['sent']} at {r['acked_per_s']}/s, "
        f"ack p50 {a.get('p50')} p99 {a.get('p99')} max {a.get('max')} ms, "
        f"client lag p99 {r['client_lag_ms'].get('p99')} ms, server {r['server_cores']} cores, "
        f"client {r['client_cores']}, busy {r['machine_busy']:.0%}"
    )
    if "processing" in r:
        p = r["processing"]
        text_ += (
            f"; drained {p['drained']} {p['waited_s']} s after, worker {p['worker_per_s']}/s, "
            f"lost {p['lost']}, failed {p['failed']}"
        )
    return text_ + f"; run/job states {state_cell(r['state'])}"


async def bench_method(method: str, backend: str, args: argparse.Namespace, workdir: Path) -> dict:
    """The base rate, then each step up while the previous one met the target."""
    s = Target(method, backend, args, workdir)
    out: dict[str, Any] = {"backend": backend, "method": method, "runs": []}
    try:
        await s.start()
        async with make_client(args.client, s.server.base, args.connections) as http:
            out["warmup"] = await s.warm_up(http)
            plan = [(args.rate, args.duration)]
            plan += [(rate, args.step_duration) for rate in args.steps if rate > args.rate]
            for rate, seconds in plan:
                result = await s.measure(http, rate, seconds)
                out["runs"].append(result)
                log(f"{backend} {describe(method, result)}")
                if not (result["ack_ok"] and result["processing_ok"]):
                    break
        passing = [r["rate"] for r in out["runs"] if r["ack_ok"] and r["processing_ok"]]
        out["max_sustained_per_s"] = max(passing, default=None)
        out["startup_s"] = s.startup_s
    finally:
        s.close()
    return out


async def kill_test(backend: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """SIGKILL the server half-way through a burst, start it again at once, redeliver what got
    no 2xx, and check that nothing acknowledged is lost and everything ends processed."""
    s = Target("kill", backend, args, workdir)
    out: dict[str, Any] = {"backend": backend, "method": "kill", "rate": args.rate}
    try:
        await s.start()
        async with make_client(args.client, s.server.base, args.connections) as http:
            out["warmup"] = await s.warm_up(http)
            deliveries = s.generator.take(round(args.rate * args.kill_duration))
            timeline: dict[str, Any] = {}

            async def kill_and_restart() -> None:
                timeline["killed_pid"] = s.server.pid
                timeline["kill_at"] = time.perf_counter()
                timeline["kill_wall"] = datetime.now(UTC)
                await asyncio.to_thread(s.server.kill)
                rows = await asyncio.to_thread(inbox_rows, s.engine)
                now = datetime.now(UTC)
                timeline["at_kill"] = {
                    "stored": len(rows),
                    "states": dict(Counter(r["state"] for r in rows.values())),
                    "claimed_by_killed": [
                        {
                            "id": r["id"],
                            "claimed_by": r["claimed_by"],
                            "claim_left_s": round((r["claimed_until"] - now).total_seconds(), 1),
                        }
                        for r in rows.values()
                        if r["state"] == "pending"
                        and r["claimed_until"] is not None
                        and r["claimed_until"] > now
                    ],
                }
                timeline["respawn_wall"] = datetime.now(UTC)
                s.server.spawn()
                timeline["restart_s"] = round(await s.server.wait_ready(), 2)
                timeline["ready_at"] = time.perf_counter()
                timeline["ready_wall"] = datetime.now(UTC)

            half = len(deliveries) // 2
            busy = cpu_busy()
            sent, hook_tasks = await open_loop(
                http, s.path, deliveries, args.rate, hooks={half: kill_and_restart}
            )
            await asyncio.gather(*hook_tasks)
            burst = summarize(sent, args.rate)
            burst["machine_busy"] = busy()
            before = [x for x in sent if x.done < timeline["kill_at"]]
            burst["before_kill"] = {
                "sent": len(before),
                "acked": sum(x.ok for x in before),
                "ack_ms": stats([(x.done - x.started) * 1000 for x in before if x.ok]),
            }
            burst["down_s"] = round(timeline["ready_at"] - timeline["kill_at"], 2)
            out["burst"] = burst
            first_acked = s.record(sent)
            log(
                f"{backend} kill: {burst['acked']}/{burst['sent']} acked, outcomes "
                f"{burst['outcomes']}, down {burst['down_s']} s"
            )

            # GitHub redelivers failed deliveries only: send again what got no 2xx.
            redeliveries = []
            seen: set[str] = set()
            todo = []
            for d in deliveries:
                if d.guid not in first_acked and d.guid not in seen:
                    seen.add(d.guid)
                    todo.append(d)
            for _ in range(3):
                if not todo:
                    break
                again, _ = await open_loop(http, s.path, todo, args.rate)
                s.record(again)
                redeliveries.append(summarize(again, args.rate))
                todo = [x.delivery for x in again if not x.ok]
            out["redeliveries"] = redeliveries
            out["never_acked"] = len(todo)

        drain = await asyncio.to_thread(wait_drained, s.engine, len(s.acked), args.kill_wait)
        rows = await asyncio.to_thread(inbox_rows, s.engine)
        ours = {d.guid for d in deliveries}
        mine = [r for g, r in rows.items() if g in ours]
        respawn = timeline["respawn_wall"]  # the restarted server may process before it answers
        dead = {c["id"] for c in timeline["at_kill"]["claimed_by_killed"]}
        dead_rows = [r for r in rows.values() if r["id"] in dead]
        after_restart = [
            (r["processed_at"] - respawn).total_seconds()
            for r in rows.values()
            if r["processed_at"] is not None and r["processed_at"] >= respawn
        ]
        now = datetime.now(UTC)
        out["result"] = {
            **drain,
            "acknowledged": len(s.acked & ours),
            "lost": len((s.acked & ours) - set(rows)),
            "stored": len(mine),
            "states": dict(Counter(r["state"] for r in mine)),
            "failed": sum(r["state"] == "failed" for r in rows.values()),
            "stored_but_unanswered": sum(r["answers"].get("duplicate", 0) for r in redeliveries),
            "first_processed_after_restart_s": round(min(after_restart), 2)
            if after_restart
            else None,
            "killed_worker_claims": len(dead),
            "killed_claims_done_after_restart_s": round(
                max((r["processed_at"] - respawn).total_seconds() for r in dead_rows), 2
            )
            if dead_rows and all(r["processed_at"] is not None for r in dead_rows)
            else None,
            "killed_claims_still_pending": sum(r["state"] == "pending" for r in dead_rows),
            "killed_claims_wait_left_s": max(
                (
                    round((r["claimed_until"] - now).total_seconds(), 1)
                    for r in dead_rows
                    if r["state"] == "pending" and r["claimed_until"] is not None
                ),
                default=None,
            ),
            "pending_with_live_claim": sum(
                1
                for r in rows.values()
                if r["state"] == "pending" and r["claimed_until"] and r["claimed_until"] > now
            ),
        }
        out["state"] = await asyncio.to_thread(check_state, s.engine, s.expect)
        out["timeline"] = {
            "killed_pid": timeline["killed_pid"],
            "restarted_pid": s.server.pid,
            "restart_s": timeline["restart_s"],
            "at_kill": {
                **{k: v for k, v in timeline["at_kill"].items() if k != "claimed_by_killed"},
                "claimed_by_killed": len(timeline["at_kill"]["claimed_by_killed"]),
                "claim_left_s": max(
                    (c["claim_left_s"] for c in timeline["at_kill"]["claimed_by_killed"]),
                    default=None,
                ),
            },
        }
        r = out["result"]
        out["ok"] = bool(
            r["lost"] == 0
            and r["drained"]
            and r["failed"] == 0
            and out["never_acked"] == 0
            and out["state"]["ok"]
        )
        log(f"{backend} kill: {json.dumps(r, default=str)}")
    finally:
        s.close()
    return out


# --- report -----------------------------------------------------------------------------------


def fmt(value: Any, spec: str = "") -> str:
    if value is None:
        return "-"
    return format(value, spec)


def tables(report: dict[str, Any]) -> str:
    target = report["settings"]["target_ms"]
    lines = [
        "Acknowledgement of signed deliveries, open loop, latency in ms (client: sent -> answer,",
        f"{report['settings']['client']} client).",
        "ours = POST /webhooks/github (store raw, answer, process after); inline = design C's",
        "original method (process inside the request); split = ours with the worker in a 2nd",
        "process (a proposed fix); ackonly = no worker during the burst (diagnostic: the answer",
        "path alone). lag = client scheduling lag p99 (client-limited: the load",
        "generator fell behind its schedule); srv cpu = cores used by the server process(es);",
        "drain = s from the last answer until the worker had processed all; worker = deliveries",
        "processed per s by the worker; proc p99 = received -> processed p99 (s); state = every",
        "run/job ends as its acknowledged deliveries say (ok), +N: N ahead (processed though not",
        "acknowledged), -N: N behind (an acknowledged update lost); busy = all",
        "CPUs busy during the burst; bg = the same in the idle second before it (other work).",
        "",
        f"{'backend':<10} {'method':<7} {'rate':>5} {'acked/s':>8} {'not ok':>6} "
        f"{'p50':>6} {'p95':>6} {'p99':>7} {'max':>7} {'lag':>5} | {'drain':>6} {'worker':>6} "
        f"{'proc p99':>8} {'lost':>4} {'state':>5} | {'srv cpu':>7} {'busy':>4} {'bg':>4} | target",
    ]
    for block in report["results"]:
        for r in block["runs"]:
            a, p = r["ack_ms"], r.get("processing")
            verdict = "met" if r["ack_ok"] and r["processing_ok"] else "MISSED"
            verdict += " (client-limited)" if r["client_limited"] else ""
            lines.append(
                f"{block['backend']:<10} {block['method']:<7} {r['rate']:>5.0f} "
                f"{r['acked_per_s']:>8.1f} {r['not_acked']:>6} {fmt(a.get('p50'), '.1f'):>6} "
                f"{fmt(a.get('p95'), '.1f'):>6} {fmt(a.get('p99'), '.1f'):>7} "
                f"{fmt(a.get('max'), '.0f'):>7} {fmt(r['client_lag_ms'].get('p99'), '.0f'):>5} | "
                f"{fmt(p and p['done_after_burst_s'], '.1f'):>6} "
                f"{fmt(p and p['worker_per_s'], '.0f'):>6} "
                f"{fmt(p and (p['processing_lag_ms'].get('p99') or 0) / 1000, '.1f'):>8} "
                f"{fmt(p and p['lost']):>4} {state_cell(r['state']):>5} | "
                f"{r['server_cores']:>7.2f} {r['machine_busy']:>4.0%} "
                f"{r['machine_busy_before']:>4.0%} | {verdict}"
            )
    lines += ["", f"Highest rate meeting p99 <= {target} ms with every delivery acknowledged:"]
    for block in report["results"]:
        lines.append(
            f"  {block['backend']:<10} {block['method']:<7} {fmt(block['max_sustained_per_s'])}/s"
        )
    for k in report["kill"]:
        r, t = k["result"], k["timeline"]
        lines += [
            "",
            f"Kill test, {k['backend']}: SIGKILL half-way through {k['burst']['sent']} deliveries "
            f"at {k['rate']:.0f}/s, restarted at once ({t['restart_s']} s to ready, "
            f"{k['burst']['down_s']} s down).",
            f"  first pass: {k['burst']['acked']} acknowledged, outcomes {k['burst']['outcomes']};"
            f" before the kill p99 {k['burst']['before_kill']['ack_ms'].get('p99')} ms",
            f"  redelivered what got no 2xx: {[x['sent'] for x in k['redeliveries']]} "
            f"(answered duplicate, i.e. stored before the kill but unanswered: "
            f"{r['stored_but_unanswered']}); never acknowledged: {k['never_acked']}",
            f"  acknowledged {r['acknowledged']}, lost {r['lost']}, failed {r['failed']}, "
            f"states {r['states']}, drained {r['drained']} after {r['waited_s']} s; "
            f"run/job states: {state_cell(k['state'])}",
            f"  at the kill: {t['at_kill']['states']}, claimed by the killed worker "
            f"{t['at_kill']['claimed_by_killed']} (claims had {t['at_kill']['claim_left_s']} s "
            f"left); after restart they were done in "
            f"{fmt(r['killed_claims_done_after_restart_s'])} s, still pending "
            f"{r['killed_claims_still_pending']}; first delivery processed "
            f"{fmt(r['first_processed_after_restart_s'])} s after the restart began -> "
            f"{'no delivery lost' if k['ok'] else 'FAILED'}",
        ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    def floats(value: str) -> list[float]:
        return [float(v) for v in value.split(",") if v]

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument(
        "--methods",
        default=",".join(METHODS),
        help="ours (cipulse serve), split (its worker in a 2nd process), ackonly (no worker "
        "during the bursts), inline (design C), kill",
    )
    parser.add_argument(
        "--client", choices=("httpx", "raw"), default="httpx", help="see webhooks_client.py"
    )
    parser.add_argument("--rate", type=float, default=200.0, help="deliveries per second")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds at --rate")
    parser.add_argument("--steps", type=floats, default=[400, 800, 1600], help="higher rates")
    parser.add_argument("--step-duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=1.0, help="untimed seconds at --rate")
    parser.add_argument("--target-ms", type=float, default=50.0, help="p99 acknowledgement")
    parser.add_argument("--connections", type=int, default=256, help="client connection pool")
    parser.add_argument("--drain-timeout", type=float, default=120.0)
    parser.add_argument("--kill-duration", type=float, default=15.0)
    parser.add_argument(
        "--kill-wait",
        type=float,
        default=120.0,
        help="seconds to wait for everything processed after the kill test's redelivery",
    )
    parser.add_argument("--log-level", default="INFO", help="CIPULSE_LOG_LEVEL of the servers")
    parser.add_argument("--fixtures", type=Path, default=FIXTURES)
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument("--pg-admin-url", default=DEFAULT_PG)
    parser.add_argument("--out", type=Path, default=None, help="JSON results file")
    args = parser.parse_args(argv)
    args.backends = [b for b in args.backends.split(",") if b]
    args.methods = [m for m in args.methods.split(",") if m]
    if set(args.backends) - {"sqlite", "postgresql"}:
        parser.error("--backends takes sqlite and/or postgresql")
    if set(args.methods) - set(METHODS):
        parser.error(f"--methods takes any of {','.join(METHODS)}")
    return args


async def run_all(args: argparse.Namespace, report: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory(prefix="cipulse-bench-webhooks-") as tmp:
        workdir = Path(tmp)
        for backend in args.backends:
            for method in METHODS[:-1]:
                if method in args.methods:
                    report["results"].append(await bench_method(method, backend, args, workdir))
            if "kill" in args.methods:
                report["kill"].append(await kill_test(backend, args, workdir))


def _stop(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # so that servers are stopped and databases dropped


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    started = time.perf_counter()
    report: dict[str, Any] = {
        "command": " ".join([".venv/bin/python", "bench/webhooks.py", *sys.argv[1:]]),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "git": git_state(),
        "settings": {
            **{k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "pg_admin_url": make_url(args.pg_admin_url).render_as_string(hide_password=True),
        },
        "results": [],
        "kill": [],
    }
    if "postgresql" in args.backends:
        report["machine"]["postgresql"] = postgres_info(args.pg_admin_url)
    loop_factory = None
    with contextlib.suppress(ImportError):
        import uvloop

        loop_factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(run_all(args, report))
    report["total_s"] = round(time.perf_counter() - started, 1)
    out = args.out or Path(tempfile.gettempdir()) / "cipulse-bench" / (
        f"webhooks-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(tables(report))
    print(f"\ntotal {report['total_s']} s; results in {out}")


if __name__ == "__main__":
    main()
