"""The job-log viewer on a 100 MB log: first byte and whole page, against the naive method.

    .venv/bin/python bench/logs_viewer.py              # 100 MB, about two minutes
    .venv/bin/python bench/logs_viewer.py --mb 20      # quicker

The log is the real pytorch job log (``shared/fixtures/real/logs``) repeated to ``--mb``
megabytes. It is stored as cipulse stores a fetched log (gzip chunks + index, in a local storage
folder) with its job rows in a SQLite file, and the whole app is served by uvicorn on 127.0.0.1.
Measured over HTTP, in the same run (median of ``--repeat``):

* **viewer, at the first error**: ``GET /repos/o/r/jobs/{id}/log`` (opens at the first error);
* **viewer, deep line**: ``?line=`` near the end of the log;
* **search**: ``?q=`` for a rare text, scanning the whole log chunk by chunk;
* **raw download**: ``GET /api/jobs/{id}/log.txt``, streamed;
* **naive**: a route added to the same server that does what a simple viewer does: read the
  whole log (one gzip file), decompress it, and render every line to HTML in one response.

First byte is the time to the first body byte; page is the time to the last. Peak Python memory
(tracemalloc) of one viewer page and of the naive render (on a 10 MB slice, scaled to the whole
log: tracemalloc slows it tenfold) is measured in-process afterwards.
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from fastapi.responses import HTMLResponse  # noqa: E402
from markupsafe import escape  # noqa: E402
from tests.support import live_server  # noqa: E402

from cipulse import migrate  # noqa: E402
from cipulse.app import create_app  # noqa: E402
from cipulse.db import Database  # noqa: E402
from cipulse.logs import chunks, parse, service  # noqa: E402
from cipulse.models import Job, JobLog, Repository, WorkflowRun, utcnow  # noqa: E402
from cipulse.settings import Settings  # noqa: E402
from cipulse.storage import from_settings  # noqa: E402
from cipulse.web import logs as log_pages  # noqa: E402

FIXTURE = ROOT.parent / "shared" / "fixtures" / "real" / "logs"
FULL = FIXTURE / "pytorch-full-job-log.failing-tests.exit1.txt"
JOB_ID = 4242


def build_log(path: Path, megabytes: float) -> int:
    """The real log repeated until ``megabytes``; returns its size."""
    piece = FULL.read_bytes()
    if not piece.endswith(b"\n"):
        piece += b"\n"
    target = int(megabytes * 1024 * 1024)
    written = 0
    with path.open("wb") as out:
        while written < target:
            out.write(piece)
            written += len(piece)
    return written


def seed(settings: Settings, raw: Path) -> tuple[str, chunks.Index, float]:
    """Store the log as the fetcher does, and the rows that point at it."""
    storage = from_settings(settings)
    prefix = service.storage_prefix(repository_id=1, job_github_id=JOB_ID)
    start = time.perf_counter()
    with raw.open("rb") as source:
        index = service.store(storage, prefix=prefix, source=source)
    seconds = time.perf_counter() - start
    db = Database(settings.resolved_database_url)
    migrate.upgrade(db.engine)
    now = utcnow()
    with db.write() as uow:
        s = uow.session
        repo = Repository(id=1, owner="o", name="r", full_name="o/r", created_at=now)
        s.add(repo)
        s.flush()
        run = WorkflowRun(
            github_id=1, run_attempt=1, repository_id=1, status="completed",
            conclusion="failure", created_at=now,
        )  # fmt: skip
        s.add(run)
        s.flush()
        job = Job(
            github_id=JOB_ID, run_id=run.id, name="test", status="completed",
            conclusion="failure", labels=[],
        )  # fmt: skip
        s.add(job)
        s.flush()
        row = JobLog(job_id=job.id, state="pending", error_count=0, warning_count=0)
        s.add(row)
        s.flush()
        service.record_stored(row, prefix=prefix, index=index, now=now)
    db.dispose()
    return prefix, index, seconds


def naive_render(raw_gz: Path) -> str:
    """A simple viewer: the whole log decompressed, every line rendered, one page."""
    text = gzip.decompress(raw_gz.read_bytes()).decode("utf-8", "replace")
    rows = []
    for line in parse.parse_lines(text.split("\n")):
        rows.append(
            f'<div class="log-line" id="L{line.number}"><a href="#L{line.number}">'
            f"{line.number}</a><time>{escape(line.short_time or '')}</time>"
            f"<span>{parse.ansi_to_html(line.text)}</span></div>"
        )
    return "<!doctype html><html><body>" + "\n".join(rows) + "</body></html>"


def timed_get(client: httpx.Client, url: str) -> tuple[float, float, int]:
    """(first byte ms, whole body ms, bytes)."""
    start = time.perf_counter()
    first = None
    size = 0
    with client.stream("GET", url) as response:
        response.raise_for_status()
        for piece in response.iter_raw():
            if first is None and piece:
                first = time.perf_counter()
            size += len(piece)
    end = time.perf_counter()
    return ((first or end) - start) * 1000, (end - start) * 1000, size


def measure(client: httpx.Client, url: str, repeat: int) -> dict[str, float]:
    samples = [timed_get(client, url) for _ in range(repeat)]
    return {
        "first_ms": statistics.median(s[0] for s in samples),
        "page_ms": statistics.median(s[1] for s in samples),
        "bytes": samples[0][2],
    }


def peak_mb(fn: Callable[[], Any]) -> float:
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 1024 / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=float, default=100.0, help="log size in MB")
    parser.add_argument("--repeat", type=int, default=5, help="requests per measurement")
    parser.add_argument("--naive-repeat", type=int, default=2, help="naive requests")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="cipulse-bench-logs-") as folder:
        base = Path(folder)
        raw = base / "log.txt"
        size = build_log(raw, args.mb)
        settings = Settings(data_dir=base / "data", auto_migrate=False)
        prefix, index, store_s = seed(settings, raw)
        naive_gz = base / "naive.log.gz"
        with raw.open("rb") as source, gzip.open(naive_gz, "wb", compresslevel=6) as out:
            while block := source.read(1 << 20):
                out.write(block)
        raw.unlink()
        print(f"log: {size / 1e6:.1f} MB, {index.lines:,} lines, {len(index.chunks)} chunks, "
              f"stored {index.compressed_bytes / 1e6:.1f} MB, {index.errors:,} errors")  # fmt: skip
        print(f"store (chunk + gzip + index): {store_s:.1f} s, {size / 1e6 / store_s:.0f} MB/s")

        app = create_app(settings)

        async def naive(job_id: int) -> HTMLResponse:
            return HTMLResponse(naive_render(naive_gz))

        app.add_api_route("/naive/{job_id}/log", naive, methods=["GET"])
        last_line = index.lines - 10
        with live_server(app) as url, httpx.Client(timeout=600) as client:
            page = f"{url}/repos/o/r/jobs/{JOB_ID}/log"
            timed_get(client, page)  # warm up: imports, templates, connections
            results = {
                "viewer, at the first error": measure(client, page, args.repeat),
                "viewer, deep line": measure(client, f"{page}?line={last_line}", args.repeat),
                "search (rare text, whole log)": measure(
                    client, f"{page}?q=no-such-text-anywhere&page=1", args.repeat
                ),
                "raw download (streamed)": measure(
                    client, f"{url}/api/jobs/{JOB_ID}/log.txt", max(1, args.repeat // 2)
                ),
                "naive (whole log in one page)": measure(
                    client, f"{url}/naive/{JOB_ID}/log", args.naive_repeat
                ),
            }
        print(f"\n{'what':34} {'first byte':>12} {'whole page':>12} {'body':>10}")
        for name, r in results.items():
            print(f"{name:34} {r['first_ms']:>9.0f} ms {r['page_ms']:>9.0f} ms "
                  f"{r['bytes'] / 1e6:>7.1f} MB")  # fmt: skip
        ratio = results["naive (whole log in one page)"]["first_ms"] / max(
            results["viewer, at the first error"]["first_ms"], 0.001
        )
        print(f"\nfirst byte: the viewer is {ratio:.0f}x sooner than the naive page")

        storage = from_settings(settings)

        def one_page() -> None:
            idx = service.read_index(storage, prefix=prefix)
            shown = service.read_page(
                storage, prefix=prefix, index=idx, start=3001, limit=log_pages.PER_PAGE
            )
            log_pages.blocks(shown, focus=3194)

        viewer_mb = peak_mb(one_page)
        # tracemalloc slows the naive render tenfold: measure it on a 10 MB slice and scale
        sample = base / "sample.log.gz"
        sample_mb = min(args.mb, 10.0)
        with gzip.open(naive_gz, "rb") as source, gzip.open(sample, "wb") as out:
            out.write(source.read(int(sample_mb * 1024 * 1024)))
        naive_mb = peak_mb(lambda: naive_render(sample)) * args.mb / sample_mb
        print(
            f"peak Python memory: viewer page {viewer_mb:.1f} MB, "
            f"naive about {naive_mb:.0f} MB (measured on {sample_mb:.0f} MB, scaled)"
        )


if __name__ == "__main__":
    main()
