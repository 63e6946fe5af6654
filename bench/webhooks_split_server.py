"""cipulse with its webhook worker moved to a second process, for the webhook benchmark only.

It shows what the acknowledgement costs when the worker does not share the web process (and
its GIL): ``--role web`` is ``cipulse serve`` with the in-process worker left idle, and
``--role worker`` runs the same ``WebhookWorker`` alone on the same database. The worker is
not woken across processes, so it polls every ``--poll`` seconds when idle (a real split would
use PostgreSQL LISTEN/NOTIFY or a short poll).

    .venv/bin/python bench/webhooks_split_server.py --role web --port 8123
    .venv/bin/python bench/webhooks_split_server.py --role worker
"""

from __future__ import annotations

import argparse
import asyncio
import logging

import uvicorn

from cipulse.app import create_app
from cipulse.db import Database
from cipulse.live.bus import Bus
from cipulse.settings import Settings
from cipulse.webhooks import tasks


async def _idle(self: tasks.WebhookWorker) -> None:
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", choices=("web", "worker"), required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--poll", type=float, default=0.05)
    args = parser.parse_args()
    settings = Settings()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.role == "web":
        tasks.WebhookWorker.run = _idle  # type: ignore[method-assign]
        app = create_app(settings)
        uvicorn.run(app, host=args.host, port=args.port, log_level=settings.log_level.lower())
        return
    tasks.IDLE_POLL_SECONDS = args.poll
    db = Database(settings.resolved_database_url)
    worker = tasks.WebhookWorker(db=db, bus=Bus())
    try:
        asyncio.run(worker.run())
    finally:
        db.dispose()


if __name__ == "__main__":
    main()
