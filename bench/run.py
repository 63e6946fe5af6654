"""Benchmark of design E: ingest throughput and summary latency as stored history grows.

For each backend and history size: bulk-load a year of runs into a fresh database, rebuild the
hourly rollup, start the real application on a loopback port, then measure over HTTP

- ``GET /api/metrics/summary?minutes=W`` (the rollup-based summary) against the founding design's
  method (a ``GROUP BY`` over all runs on every request, served by a benchmark-only route in the
  same server, see ``design_e_naive.py``), after checking that all of them give the same answer;
- ``POST /api/events/run`` throughput with a few concurrent clients, then that the rollup still
  agrees with a full recount.

    .venv/bin/python bench/run.py [--sizes 10000,100000,1000000] [--backends sqlite,postgresql]

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
import random
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

import cipulse
import design_e_history as history
import design_e_inprocess as inprocess
import design_e_naive as naive
from cipulse.analytics import service as analytics
from cipulse.db import make_engine
from cipulse.models import PipelineRun, utcnow
from design_e_server import NAIVE_PATH, ThreadServer, build_app

BENCH_DIR = Path(__file__).resolve().parent
SUMMARY_PATH = "/api/metrics/summary"
INGEST_PATH = "/api/events/run"
DEFAULT_PG = os.environ.get(
    "CIPULSE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def percentile(samples: list[float], q: float) -> float:
    """Nearest-rank percentile: a value that was actually observed."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def stats(samples_ms: list[float]) -> dict[str, Any]:
    return {
        "n": len(samples_ms),
        "p50_ms": round(percentile(samples_ms, 50), 2),
        "p95_ms": round(percentile(samples_ms, 95), 2),
        "p99_ms": round(percentile(samples_ms, 99), 2),
        "max_ms": round(max(samples_ms), 2),
    }


def cpu_busy() -> Callable[[], float]:
    """Share of all CPUs not idle from now until the returned function is called: the machine
    is shared, and a busy neighbour shows up here rather than silently in the figures."""

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
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed_calls(call: Callable[[], None], *, n: int, warmup: int, budget_s: float) -> list[float]:
    """``warmup`` untimed calls, then up to ``n`` timed ones; stops early (after at least 10)
    once ``budget_s`` is spent, so the slow naive method cannot stretch the run to hours."""
    warm_end = time.perf_counter() + budget_s / 4
    for _ in range(warmup):
        call()
        if time.perf_counter() > warm_end:
            break
    samples: list[float] = []
    end = time.perf_counter() + budget_s
    while len(samples) < n and (len(samples) < 10 or time.perf_counter() < end):
        t0 = time.perf_counter()
        call()
        samples.append((time.perf_counter() - t0) * 1000)
    return samples


def timed_stats(
    call: Callable[[], None], *, n: int, warmup: int, budget_s: float
) -> dict[str, Any]:
    busy = cpu_busy()
    samples = timed_calls(call, n=n, warmup=warmup, budget_s=budget_s)
    return {**stats(samples), "machine_busy": busy()}


# --- server -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running_server(url: str, workdir: Path, mode: str) -> Iterator[tuple[str, int]]:
    """The server's base URL and process id (our own in thread mode, client included)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    if mode == "thread":
        server = ThreadServer(build_app(url, workdir), port)
        server.start()
        try:
            yield base, os.getpid()
        finally:
            server.stop()
        return
    logfile = (workdir / f"server-{port}.log").open("w")
    proc = subprocess.Popen(
        [
            *(sys.executable, str(BENCH_DIR / "design_e_server.py")),
            *("--database-url", url, "--data-dir", str(workdir), "--port", str(port)),
        ],
        stdout=logfile,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start, see {logfile.name}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(base + "/health", timeout=2).status_code == 200:
                    break
            time.sleep(0.1)
        yield base, proc.pid
    except BaseException:
        logfile.flush()
        tail = Path(logfile.name).read_text().splitlines()[-30:]
        log("server log (last lines):\n" + "\n".join(tail))
        raise
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        logfile.close()


# --- summary ----------------------------------------------------------------------------------


def check_same_answers(url: str, windows: list[int]) -> dict[str, list[str]]:
    """The rollup summary and both recounts at one fixed moment, field by field."""
    engine = make_engine(url)
    problems: dict[str, list[str]] = {}
    with Session(engine) as session:
        now = utcnow()
        for minutes in windows:
            ours = analytics.summary(session, minutes=minutes, now=now)
            for method in naive.METHODS:
                theirs = naive.summary(session, minutes=minutes, method=method, now=now)
                diffs = naive.same_answer(ours, theirs)
                if diffs:
                    problems[f"{minutes}/{method}"] = diffs[:5]
    engine.dispose()
    return problems


def measure_summaries(base: str, url: str, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    engine = make_engine(url)
    with httpx.Client(base_url=base, timeout=300) as client:
        for minutes in args.windows:

            def get(path: str, params: dict[str, Any]) -> Callable[[], None]:
                def call() -> None:
                    client.get(path, params=params).raise_for_status()

                return call

            row: dict[str, Any] = {}
            row["ours"] = timed_stats(
                get(SUMMARY_PATH, {"minutes": minutes}),
                n=args.requests,
                warmup=args.warmup,
                budget_s=args.budget,
            )
            totals, reads = inprocess.breakdown(
                engine,
                minutes=minutes,
                timed=lambda call: timed_calls(
                    call, n=args.requests, warmup=5, budget_s=args.budget
                ),
            )
            row["ours_in_process"] = {**stats(totals), "reads_p50_ms": reads}
            row["plans"] = inprocess.query_plans(engine, minutes=minutes)
            row["naive_plans"] = {
                method: inprocess.query_plans(engine, minutes=minutes, method=method)[0]
                for method in naive.METHODS
            }
            for method in naive.METHODS:
                row[method] = timed_stats(
                    get(NAIVE_PATH, {"minutes": minutes, "method": method}),
                    n=args.requests,
                    warmup=args.warmup,
                    budget_s=args.budget,
                )
            log(
                f"  summary {minutes:>5} min: ours p50 {row['ours']['p50_ms']} p95 "
                f"{row['ours']['p95_ms']} ms | scan p50 {row['scan']['p50_ms']} p95 "
                f"{row['scan']['p95_ms']} ms (n={row['scan']['n']}) | range p95 "
                f"{row['range']['p95_ms']} ms | in-process reads {reads} | machine busy "
                f"{row['ours']['machine_busy']:.0%}"
            )
            rollup_plan = [p["plan"] for p in row["plans"] if p["table"] == "pipeline_run_hourly"]
            log(f"    rollup plan: {rollup_plan}")
            out[str(minutes)] = row
    engine.dispose()
    return out


# --- ingest -----------------------------------------------------------------------------------


def ingest_jobs(events: int, *, seed: int, tag: str) -> list[list[dict[str, Any]]]:
    """Half the events are finished runs sent once, half are running -> finished pairs.

    A pair's second event is only queued once the first has been answered (see ``run_ingest``).
    """
    rng = random.Random(seed)
    now = datetime.now(UTC)
    names = [p[0] for p in history.PIPELINES]
    weights = [p[1] for p in history.PIPELINES]
    pairs = events // 4
    singles = events - 2 * pairs
    jobs: list[list[dict[str, Any]]] = []
    for i in range(singles):
        duration = round(rng.uniform(30, 900), 3)
        started = now - timedelta(seconds=duration + rng.uniform(0, 600))
        jobs.append(
            [
                {
                    "pipeline": rng.choices(names, weights)[0],
                    "status": "failure" if rng.random() < 0.15 else "success",
                    "started_at": started.isoformat(),
                    "finished_at": (started + timedelta(seconds=duration)).isoformat(),
                    "duration_sec": duration,
                    "branch": rng.choice(history.BRANCHES),
                    "commit": f"{rng.getrandbits(160):040x}",
                    "triggered_by": rng.choice(history.PEOPLE),
                    "id": f"{tag}-s{i}",
                }
            ]
        )
    for i in range(pairs):
        pipeline, commit = rng.choices(names, weights)[0], f"{rng.getrandbits(160):040x}"
        start = {
            "pipeline": pipeline,
            "status": "running",
            "started_at": (now - timedelta(seconds=rng.uniform(0, 300))).isoformat(),
            "branch": rng.choice(history.BRANCHES),
            "commit": commit,
            "triggered_by": rng.choice(history.PEOPLE),
            "id": f"{tag}-p{i}",
        }
        # The CI reports the end without times: the server stamps finished_at and the duration.
        end = {
            "pipeline": pipeline,
            "status": "failure" if rng.random() < 0.15 else "success",
            "commit": commit,
            "id": f"{tag}-p{i}",
        }
        jobs.append([start, end])
    rng.shuffle(jobs)
    return jobs


async def run_ingest(
    base: str, jobs: list[list[dict[str, Any]]], concurrency: int
) -> tuple[list[float], Counter[int], float]:
    queue = deque(jobs)
    latencies: list[float] = []
    codes: Counter[int] = Counter()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=120) as client:

        async def worker() -> None:
            while queue:
                job = queue.popleft()
                t0 = time.perf_counter()
                response = await client.post(INGEST_PATH, json=job[0])
                latencies.append((time.perf_counter() - t0) * 1000)
                codes[response.status_code] += 1
                if len(job) > 1 and response.status_code < 300:
                    queue.append(job[1:])  # the run finishes later, maybe on another client

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - t0
    return latencies, codes, wall


def count_runs(url: str) -> int:
    engine = make_engine(url)
    with Session(engine) as session:
        stored = session.scalar(select(func.count()).select_from(PipelineRun)) or 0
    engine.dispose()
    return stored


def measure_ingest(
    base: str, pid: int, url: str, size: int, concurrency: int, args: argparse.Namespace
) -> dict[str, Any]:
    """Post ``--ingest-events`` events with ``concurrency`` clients; check what was stored."""
    tag = f"bench{size}c{concurrency}"
    before = count_runs(url)
    warm = ingest_jobs(max(concurrency * 2, 16), seed=args.seed + 1, tag=tag + "w")
    warm = [job[:1] for job in warm if job[0]["status"] != "running"]
    asyncio.run(run_ingest(base, warm, concurrency))
    jobs = ingest_jobs(args.ingest_events, seed=args.seed + 2, tag=tag)
    runs = len(jobs)
    events = sum(len(j) for j in jobs)
    busy, cpu_before = cpu_busy(), process_cpu_s(pid)
    latencies, codes, wall = asyncio.run(run_ingest(base, jobs, concurrency))
    server_cpu_s = process_cpu_s(pid) - cpu_before
    expected = Counter({201: runs, 200: events - runs})
    stored = count_runs(url)
    result: dict[str, Any] = {
        "events": events,
        "runs": runs,
        "concurrency": concurrency,
        "wall_s": round(wall, 2),
        "events_per_s": round(events / wall, 1),
        "runs_per_s": round(runs / wall, 1),
        "post": stats(latencies),
        "status_codes": {str(k): v for k, v in sorted(codes.items())},
        "status_codes_ok": codes == expected,
        "stored_runs_ok": stored == before + len(warm) + runs,
        "machine_busy": busy(),
        "server_cpu_ms_per_event": round(server_cpu_s * 1000 / events, 2),
    }
    log(
        f"  ingest x{concurrency}: {events} events / {runs} runs in {wall:.1f} s = "
        f"{result['runs_per_s']} runs/s, POST p50 {result['post']['p50_ms']} "
        f"p95 {result['post']['p95_ms']} ms, codes {dict(codes)}, server CPU "
        f"{result['server_cpu_ms_per_event']} ms/event, "
        f"machine busy {result['machine_busy']:.0%}"
    )
    return result


# --- one backend, one size --------------------------------------------------------------------


def database_bytes(db: history.BenchDatabase) -> int:
    if db.backend == "sqlite":
        return Path(db.path or "").stat().st_size
    engine = make_engine(db.url)
    with engine.connect() as conn:
        size = int(conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one())
    engine.dispose()
    return size


def bench_one(backend: str, size: int, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    log(f"{backend} {size:,} runs: creating the database")
    db = history.BenchDatabase.create(backend, workdir=str(workdir), pg_admin_url=args.pg_admin_url)
    try:
        result: dict[str, Any] = {"backend": backend, "size": size}
        result["load"] = history.load_history(db, size, now=utcnow(), seed=args.seed)
        result["database_mb"] = round(database_bytes(db) / 2**20, 1)
        log(f"  loaded: {result['load']}, {result['database_mb']} MB")
        result["answers_before_ingest"] = check_same_answers(db.url, args.windows)
        with running_server(db.url, workdir, args.server) as (base, pid):
            result["summary"] = measure_summaries(base, db.url, args)
            if size in args.ingest_sizes:
                result["ingest"] = [
                    measure_ingest(base, pid, db.url, size, concurrency, args)
                    for concurrency in args.ingest_concurrency
                ]
        result["answers_after_ingest"] = check_same_answers(db.url, args.windows)
        for key in ("answers_before_ingest", "answers_after_ingest"):
            if result[key]:
                log(f"  MISMATCH {key}: {result[key]}")
        return result
    finally:
        db.drop()


# --- report -----------------------------------------------------------------------------------


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
    }


def git_state() -> dict[str, Any]:
    """The repository's commit, whether its src/ differed from it, and where ``cipulse`` was
    actually imported from (``PYTHONPATH`` may point at a clean export of a commit instead)."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=BENCH_DIR.parent, capture_output=True, text=True, check=False
        )
        return done.stdout.strip()

    return {
        "commit": git("rev-parse", "--short", "HEAD") or None,
        "src_changed": bool(git("status", "--porcelain", "--", "src")),
        "cipulse_imported_from": str(Path(cipulse.__file__).resolve().parent.parent),
    }


def postgres_version(admin_url: str) -> str | None:
    with contextlib.suppress(Exception):
        engine = make_engine(admin_url)
        with engine.connect() as conn:
            version = str(conn.execute(text("SHOW server_version")).scalar_one())
        engine.dispose()
        return version
    return None


def tables(report: dict[str, Any]) -> str:
    results = [r for r in report["results"] if "error" not in r]
    failed = [
        f"{r['backend']} {r['size']:,}: {r['error']}" for r in report["results"] if "error" in r
    ]
    lines = [
        "Summary latency over HTTP, ms. ours = GET /api/metrics/summary (rollup); scan = GROUP BY",
        "over all runs (founding design); range = GROUP BY with WHERE started_at >= since.",
        "in-proc = the same summary called in-process, no HTTP; busy = machine CPU busy (all).",
        f"{'backend':<11}{'runs':>10}{'window':>7} | {'ours p50':>8}{'p95':>7}{'p99':>7}"
        f"{'in-proc':>8} | {'scan p50':>9}{'p95':>8}{'n':>4} | {'range p50':>9}{'p95':>8}"
        f" | {'scan/ours p95':>13} | {'busy':>4}",
    ]
    for r in results:
        for window, row in r["summary"].items():
            o, s, g = row["ours"], row["scan"], row["range"]
            lines.append(
                f"{r['backend']:<11}{r['size']:>10,}{window:>7} | {o['p50_ms']:>8}{o['p95_ms']:>7}"
                f"{o['p99_ms']:>7}{row['ours_in_process']['p50_ms']:>8} | {s['p50_ms']:>9}"
                f"{s['p95_ms']:>8}{s['n']:>4} | {g['p50_ms']:>9}{g['p95_ms']:>8} | "
                f"{s['p95_ms'] / o['p95_ms']:>12.0f}x | {o['machine_busy']:>4.0%}"
            )
    lines += [
        "",
        "Where the in-process summary spends its time (median ms per read, first window)",
        f"{'backend':<11}{'runs':>10}{'window':>7} | {'total':>6} | "
        + " ".join(f"{name:>21}" for name in inprocess.READS),
    ]
    for r in results:
        window, row = next(iter(r["summary"].items()))
        reads = row["ours_in_process"]["reads_p50_ms"]
        lines.append(
            f"{r['backend']:<11}{r['size']:>10,}{window:>7} | "
            f"{row['ours_in_process']['p50_ms']:>6} | "
            + " ".join(f"{reads.get(name, ''):>21}" for name in inprocess.READS)
        )
    lines += [
        "",
        "Ingest, POST /api/events/run (half new finished runs, half running -> finished pairs)",
        f"{'backend':<11}{'runs':>10} | {'events':>6}{'runs':>6}{'clients':>8} | {'runs/s':>7}"
        f"{'events/s':>9} | {'POST p50':>8}{'p95':>7}{'p99':>7} | {'ok':>5} | {'busy':>4}"
        f" | server CPU ms/event",
    ]
    for r in results:
        for i in r.get("ingest", []):
            lines.append(
                f"{r['backend']:<11}{r['size']:>10,} | {i['events']:>6}{i['runs']:>6}"
                f"{i['concurrency']:>8} | {i['runs_per_s']:>7}{i['events_per_s']:>9} | "
                f"{i['post']['p50_ms']:>8}{i['post']['p95_ms']:>7}{i['post']['p99_ms']:>7} | "
                f"{i['status_codes_ok'] and i['stored_runs_ok']!s:>5} | {i['machine_busy']:>4.0%}"
                f" | {i['server_cpu_ms_per_event']:>6}"
            )
    mismatches = [
        (r["backend"], r["size"])
        for r in results
        if r["answers_before_ingest"] or r["answers_after_ingest"]
    ]
    lines += [
        "",
        "Same answer from the rollup and both recounts, before and after ingest: "
        + ("yes" if not mismatches else f"NO for {mismatches}"),
    ]
    if failed:
        lines += ["", "FAILED (no figures):", *failed]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    def ints(value: str) -> list[int]:
        return [int(v.replace("_", "")) for v in value.split(",") if v]

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=ints, default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--windows", type=ints, default=[1440, 10080, 43200])
    parser.add_argument("--requests", type=int, default=200, help="timed GETs per measurement")
    parser.add_argument("--warmup", type=int, default=20, help="untimed GETs before each")
    parser.add_argument(
        "--budget", type=float, default=20.0, help="seconds at most per measurement (min 10 GETs)"
    )
    parser.add_argument("--ingest-events", type=int, default=2000)
    parser.add_argument(
        "--ingest-concurrency", type=ints, default=[1, 8], help="client counts to post with"
    )
    parser.add_argument(
        "--ingest-sizes", type=ints, default=None, help="sizes to measure ingest at (default: all)"
    )
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument("--server", choices=("process", "thread"), default="process")
    parser.add_argument("--pg-admin-url", default=DEFAULT_PG)
    parser.add_argument("--out", type=Path, default=None, help="JSON results file")
    args = parser.parse_args(argv)
    args.backends = [b for b in args.backends.split(",") if b]
    if set(args.backends) - {"sqlite", "postgresql"}:
        parser.error("--backends takes sqlite and/or postgresql")
    if args.ingest_sizes is None:
        args.ingest_sizes = args.sizes
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    started = time.perf_counter()
    report: dict[str, Any] = {
        "command": " ".join([".venv/bin/python", "bench/run.py", *sys.argv[1:]]),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "git": git_state(),
        "settings": {
            **{k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "pg_admin_url": make_url(args.pg_admin_url).render_as_string(hide_password=True),
        },
        "results": [],
    }
    if "postgresql" in args.backends:
        report["machine"]["postgresql"] = postgres_version(args.pg_admin_url)
    with tempfile.TemporaryDirectory(prefix="cipulse-bench-") as tmp:
        for backend in args.backends:
            for size in args.sizes:
                try:
                    report["results"].append(bench_one(backend, size, args, Path(tmp)))
                except Exception as exc:  # one failed size must not lose the others' figures
                    log(f"{backend} {size:,} runs FAILED: {exc!r}")
                    report["results"].append({"backend": backend, "size": size, "error": repr(exc)})
    report["total_s"] = round(time.perf_counter() - started, 1)
    report["git_at_end"] = git_state()
    if report["git_at_end"] != report["git"]:
        log(f"WARNING: the code changed during the run: {report['git']} -> {report['git_at_end']}")
    out = args.out or Path(tempfile.gettempdir()) / "cipulse-bench" / (
        f"results-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(tables(report))
    print(f"\ncode {report['git']}; total {report['total_s']} s; results in {out}")
    if any("error" in r for r in report["results"]):
        sys.exit(1)


if __name__ == "__main__":
    main()
