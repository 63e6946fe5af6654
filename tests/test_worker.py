"""`cipulse worker`: deliveries stored by a web process are processed by another process."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from cipulse.app import create_app
from cipulse.db import Database, WriteQueue
from cipulse.github.webhooks import parse_delivery
from cipulse.live.bus import Bus
from cipulse.models import Job, WebhookDelivery, utcnow
from cipulse.webhooks import repository as inbox
from cipulse.webhooks import tasks
from tests.conftest import ROOT
from tests.test_webhooks import SECRET, all_done, deliver, job_events, wait_until

# -- the write queue: SQLite writers of one process take turns in the order they came ---------


def test_write_queue_serves_writers_in_the_order_they_came() -> None:
    queue = WriteQueue()
    assert queue.acquire(1)
    order: list[int] = []

    def writer(n: int) -> None:
        with queue.turn():
            order.append(n)

    threads = []
    for n in range(6):
        thread = threading.Thread(target=writer, args=(n,))
        thread.start()
        wait_until(lambda n=n: len(queue._waiters) == n + 1)  # queued before the next comes
        threads.append(thread)
    queue.release()
    for thread in threads:
        thread.join()
    assert order == list(range(6))


def test_write_queue_lets_its_holder_through_and_a_waiter_give_up() -> None:
    queue = WriteQueue()
    with queue.turn(), queue.turn():  # a nested write in the same thread does not wait for itself
        assert queue.held_by_me()
        gave_up: list[bool] = []
        waiter = threading.Thread(target=lambda: gave_up.append(queue.acquire(0.01)))
        waiter.start()
        waiter.join()
        assert gave_up == [False]
        assert not queue._waiters
    assert not queue.held_by_me()
    assert queue.acquire(0)


# -- cipulse worker beside a web process that only stores -------------------------------------


@pytest.fixture
def web(make_settings) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    settings = make_settings(webhook_secret=SECRET, webhook_worker_in_serve=False)
    with TestClient(create_app(settings)) as client:
        yield client


def start_worker(db_url: str, tmp_path: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIPULSE_") or "TEST" in k} | {
        "CIPULSE_DATABASE_URL": db_url,
        "CIPULSE_DATA_DIR": str(tmp_path),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "cipulse", "worker"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def stop(worker: subprocess.Popen[bytes]) -> tuple[int, str]:
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
    try:
        output, _ = worker.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        worker.kill()
        output, _ = worker.communicate()
    return worker.returncode, output.decode(errors="replace")


def pending(db_url: str) -> int:
    db = Database(db_url)
    with db.read() as s:
        n = len(
            s.scalars(select(WebhookDelivery.id).where(WebhookDelivery.state == "pending")).all()
        )
    db.dispose()
    return n


def test_worker_command_processes_what_the_web_process_stored(
    web: TestClient, db_url: str, tmp_path: Path
) -> None:
    for event, data in job_events():
        assert deliver(web, event, data).status_code == 202
    assert pending(db_url) == 4  # the web process only stored them
    worker = start_worker(db_url, tmp_path)
    try:
        wait_until(all_done(db_url), timeout=60)
        # Later deliveries reach the running worker too (NOTIFY on PostgreSQL, a poll on SQLite).
        event, data = job_events()[-1]
        data = {**data, "workflow_job": {**data["workflow_job"], "id": 1234567890123}}
        assert deliver(web, event, data).status_code == 202
        wait_until(all_done(db_url), timeout=60)
    finally:
        code, output = stop(worker)
    assert code == 0, output
    assert "stopped" in output
    db = Database(db_url)
    with db.read() as s:
        jobs = {j.github_id: (j.status, j.conclusion) for j in s.scalars(select(Job))}
        states = set(s.scalars(select(WebhookDelivery.state)))
    db.dispose()
    assert states == {"processed"}
    expected = {d["workflow_job"]["id"]: d["workflow_job"]["status"] for _, d in job_events()}
    assert {gid: status for gid, (status, _) in jobs.items()} == expected | {
        1234567890123: "completed"
    }
    assert jobs[1234567890123] == ("completed", "success")


def test_worker_changes_reach_the_web_process_live(db_url: str) -> None:
    """The worker NOTIFYs what changed as it commits; the web process relays it to its bus."""
    if not db_url.startswith("postgresql"):
        pytest.skip("live updates cross processes through PostgreSQL NOTIFY")
    db = Database(db_url)
    event, data = job_events()[0]
    body = json.dumps(data).encode()
    headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": "live-1", "X-GitHub-Hook-ID": "1"}
    with db.write() as uow:
        inbox.store(uow.session, parse_delivery(headers, body), body, now=utcnow())

    def listening() -> bool:
        with db.read() as s:
            query = (
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND query LIKE 'LISTEN%'"
            )
            return bool(s.scalar(text(query)))

    async def scenario() -> dict[str, Any]:
        bus = Bus()
        bus.bind(asyncio.get_running_loop())
        changes = bus.subscribe(tasks.GITHUB_CHANGED)
        relay = tasks.WebhookWorker(db=db, bus=bus, relay_only=True)
        relaying = asyncio.create_task(relay.run())
        try:
            await asyncio.to_thread(wait_until, listening)
            worker = tasks.WebhookWorker(db=db, bus=Bus(), notify_changes=True)
            assert await asyncio.to_thread(worker.process_due) == 1
            return await asyncio.wait_for(changes.get(), 30)  # type: ignore[no-any-return]
        finally:
            relaying.cancel()
            with pytest.raises(asyncio.CancelledError):
                await relaying

    change = asyncio.run(scenario())
    db.dispose()
    assert change["kind"] == "job"
    assert change["job_id"] == data["workflow_job"]["id"]
    assert change["status"] == "queued"
