"""The real application plus one benchmark-only route that answers the summary the naive way.

Run as a script it serves on loopback in its own process, so the load generator does not share a
GIL with the server (``bench/run.py --server thread`` keeps both in one process instead).
"""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path
from typing import Annotated

import uvicorn
from fastapi import APIRouter, Depends, FastAPI, Query

import design_e_naive as naive
from cipulse.analytics.routes import MAX_WINDOW_MINUTES
from cipulse.analytics.schemas import Summary
from cipulse.app import create_app
from cipulse.context import AppContext, get_ctx
from cipulse.settings import Settings

NAIVE_PATH = "/bench/naive-summary"

router = APIRouter()


@router.get(NAIVE_PATH, response_model=Summary)
def naive_summary(
    ctx: Annotated[AppContext, Depends(get_ctx)],
    minutes: Annotated[int, Query(ge=1, le=MAX_WINDOW_MINUTES)] = 1440,
    method: Annotated[str, Query(pattern="^(scan|range)$")] = "scan",
) -> Summary:
    """Same answer as ``GET /api/metrics/summary``, recounted from every run."""
    with ctx.db.read() as session:
        return naive.summary(session, minutes=minutes, method=method)


def build_app(database_url: str, data_dir: Path) -> FastAPI:
    settings = Settings(
        database_url=database_url,
        data_dir=data_dir,
        auto_migrate=False,  # migrated before the load
        log_level="WARNING",
    )
    app = create_app(settings)
    app.include_router(router)
    return app


def _config(app: FastAPI, port: int) -> uvicorn.Config:
    # Same server as `cipulse serve` (uvicorn, uvloop/httptools when installed), no access log.
    return uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


class ThreadServer:
    """Uvicorn in a background thread of the calling process."""

    def __init__(self, app: FastAPI, port: int) -> None:
        self.server = uvicorn.Server(_config(app, port))
        self.thread = threading.Thread(target=self.server.run, name="bench-server", daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the benchmark server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.Server(_config(build_app(args.database_url, args.data_dir), args.port)).run()


if __name__ == "__main__":
    main()
