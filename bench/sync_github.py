"""Benchmark of the GitHub sync: requests, rate-limit points and wall time, against design A.

A fake GitHub (the tests' one, in its own process, every answer delayed by ``--latency-ms``)
holds ``--runs`` runs of ``--jobs`` jobs. Measured, each on a fresh database:

- cipulse's initial sync, then an idle re-sync (nothing changed on GitHub);
- design A's method: list the runs 100 a page, then one jobs call per run, every time, with no
  conditional requests (and the default ``filter=latest``, so earlier attempts are never seen).

Rate-limit points are read from GitHub's own ``x-ratelimit-remaining`` before and after.

    .venv/bin/python bench/sync_github.py [--runs 1000] [--jobs 8] [--latency-ms 50]
        [--concurrency 4] [--backend sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

from cipulse import migrate
from cipulse.db import Database, make_engine
from cipulse.settings import Settings
from cipulse.sync.tasks import SyncCoordinator

REPO = "octo-org/hello-world"
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def remaining(api_url: str, token: str) -> int:
    r = httpx.get(f"{api_url}/rate_limit", headers={"Authorization": f"Bearer {token}"})
    return int(r.json()["resources"]["core"]["remaining"])


def fresh_database(backend: str, workdir: Path) -> tuple[str, Any]:
    if backend == "sqlite":
        return f"sqlite:///{workdir / f'{uuid.uuid4().hex}.db'}", None
    name = f"cipulse_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return admin.url.set(database=name).render_as_string(hide_password=False), drop


async def cipulse_sync(url: str, settings: Settings) -> dict[str, Any]:
    db = Database(url)
    coordinator = SyncCoordinator(db=db, settings=settings)
    try:
        started = time.perf_counter()
        result = await coordinator.sync(REPO)
        wall = time.perf_counter() - started
    finally:
        await coordinator.aclose()
        db.dispose()
    assert result.error is None, result.error
    return {
        "requests": result.requests,
        "not_modified": result.not_modified,
        "new_runs": result.new_runs,
        "jobs_stored": result.jobs_stored,
        "wall_s": round(wall, 2),
    }


async def design_a(api_url: str, token: str, runs: int, concurrency: int) -> dict[str, Any]:
    """List every run 100 a page, then GET each run's jobs; no ETags, no attempts."""
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json"}
    requests = 0
    jobs_seen = 0
    started = time.perf_counter()
    async with httpx.AsyncClient(headers=headers, timeout=60) as http:
        ids: list[int] = []
        url: str | None = f"{api_url}/repos/{REPO}/actions/runs?per_page=100"
        while url and len(ids) < runs:
            r = await http.get(url)
            requests += 1
            ids += [run["id"] for run in r.json()["workflow_runs"]]
            url = r.links.get("next", {}).get("url")
        slots = asyncio.Semaphore(concurrency)

        async def jobs(run_id: int) -> int:
            async with slots:
                r = await http.get(
                    f"{api_url}/repos/{REPO}/actions/runs/{run_id}/jobs?per_page=100"
                )
                return len(r.json()["jobs"])

        counts = await asyncio.gather(*(jobs(i) for i in ids))
        requests += len(ids)
        jobs_seen = sum(counts)
    return {
        "requests": requests,
        "jobs_seen": jobs_seen,
        "wall_s": round(time.perf_counter() - started, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()

    fake = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).with_name("fake_github_server.py")),
            str(args.runs),
            str(args.jobs),
            str(args.latency_ms),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert fake.stdout is not None and fake.stdin is not None
    info = json.loads(fake.stdout.readline())
    api_url, token = info["api_url"], info["token"]
    report: dict[str, Any] = {"args": vars(args), "scenario": info}
    with tempfile.TemporaryDirectory() as tmp:
        try:
            url, drop = fresh_database(args.backend, Path(tmp))
            migrate.upgrade(make_engine(url))
            settings = Settings(
                database_url=url,
                data_dir=Path(tmp),
                github_token=token,
                github_api_url=api_url,
                github_concurrency=args.concurrency,
                poll_interval_minutes=0,
                reconcile_cron="",
            )
            before = remaining(api_url, token)
            initial = asyncio.run(cipulse_sync(url, settings))
            initial["points"] = before - remaining(api_url, token)
            before = remaining(api_url, token)
            idle = asyncio.run(cipulse_sync(url, settings))
            idle["points"] = before - remaining(api_url, token)
            if drop:
                drop()

            before = remaining(api_url, token)
            naive = asyncio.run(design_a(api_url, token, info["runs"], args.concurrency))
            naive["points"] = before - remaining(api_url, token)
            before = remaining(api_url, token)
            naive_again = asyncio.run(design_a(api_url, token, info["runs"], args.concurrency))
            naive_again["points"] = before - remaining(api_url, token)
        finally:
            fake.stdin.close()
            fake.wait(timeout=30)

    ideal = initial["requests"] * args.latency_ms / 1000 / args.concurrency
    report.update(
        initial=initial,
        idle=idle,
        design_a=naive,
        design_a_again=naive_again,
        ideal_wall_s=round(ideal, 2),
    )
    runs = info["runs"]
    rows = [
        ("cipulse initial sync", initial, initial["requests"] / runs),
        ("cipulse idle re-sync", idle, idle["requests"] / runs),
        ("design A, first time", naive, naive["requests"] / runs),
        ("design A, again", naive_again, naive_again["requests"] / runs),
    ]
    print(
        f"\n{runs} runs x {args.jobs} jobs ({info['jobs']} job records incl. re-run attempts), "
        f"{args.latency_ms:.0f} ms per request, concurrency {args.concurrency}, {args.backend}"
    )
    print(f"{'method':24} {'requests':>9} {'req/run':>8} {'points':>7} {'wall s':>7}")
    for name, row, per_run in rows:
        print(
            f"{name:24} {row['requests']:9d} {per_run:8.3f} {row['points']:7d} {row['wall_s']:7.2f}"
        )
    print(
        f"ideal wall for cipulse's initial requests: {ideal:.2f} s "
        f"(measured/ideal = {initial['wall_s'] / ideal:.2f})"
    )
    missed = initial["jobs_stored"] - naive["jobs_seen"]
    print(
        f"job records: cipulse stored {initial['jobs_stored']}, design A saw "
        f"{naive['jobs_seen']} (earlier attempts it never sees: {missed})"
    )
    out = Path(tempfile.gettempdir()) / f"cipulse-bench-sync-{args.backend}.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"details: {out}")


if __name__ == "__main__":
    main()
