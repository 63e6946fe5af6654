"""Durability: the server is killed (SIGKILL) after the transition is stored and while its alert
is on the wire; after a restart the alert is delivered exactly once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from cipulse.db import Database
from cipulse.models import AlertDelivery, AlertEvent
from tests.test_alerts import History
from tests.test_email import free_port, wait_for


class HoldingReceiver:
    """A webhook consumer that can hold requests unanswered, as a hung network would."""

    def __init__(self) -> None:
        self.delivered: list[dict[str, Any]] = []
        self.held = 0
        self.release = threading.Event()
        self.holding = True
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if receiver.holding:
                    receiver.held += 1
                    receiver.release.wait(30)
                    return  # no answer: the sender never learns whether it arrived
                receiver.delivered.append(
                    {"delivery": self.headers["X-Cipulse-Delivery"], **json.loads(body)}
                )
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[HoldingReceiver]:
    r = HoldingReceiver()
    yield r
    r.close()


def start_server(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "cipulse", "serve", "--port", str(port)],
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    out.close()

    def healthy() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return process.poll() is not None

    assert wait_for(healthy, timeout=60), log.read_text()
    assert process.poll() is None, log.read_text()
    return process


def test_killed_between_transition_and_delivery_then_delivered_once(
    db_url: str, tmp_path: Path, receiver: HoldingReceiver
) -> None:
    alerts_file = tmp_path / "alerts.yaml"
    alerts_file.write_text(
        json.dumps(
            {
                "channels": [{"name": "hook", "kind": "webhook", "config": {"url": receiver.url}}],
                "rules": [{"name": "main", "kind": "branch"}],
            }
        )
    )
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "CIPULSE_DATABASE_URL": db_url,
        "CIPULSE_DATA_DIR": str(tmp_path),
        "CIPULSE_ALERTS_FILE": str(alerts_file),
        "CIPULSE_ALERT_EVALUATE_SECONDS": "0.2",
        "CIPULSE_POLL_INTERVAL_MINUTES": "0",
        "CIPULSE_RECONCILE_CRON": "",
    }
    log = tmp_path / "server.log"
    port = free_port()
    db = Database(db_url)
    server = start_server(env, port, log)
    try:
        now = datetime.now(UTC)
        history = History(db)
        history.run("success", at=now - timedelta(hours=2))
        history.run("failure", at=now - timedelta(hours=1))
        # The transition is stored and its alert is on the wire, unanswered: kill the server.
        assert wait_for(lambda: receiver.held == 1, timeout=30), log.read_text()
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=10)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=10)

    with db.read() as s:
        (event,) = s.scalars(select(AlertEvent)).all()
        (delivery,) = s.scalars(select(AlertDelivery)).all()
        assert event.kind == "broken"
        assert delivery.state == "pending" and delivery.claimed_by  # held by the dead process
    receiver.holding = False
    receiver.release.set()

    server = start_server(env, port, log)
    try:
        assert wait_for(lambda: len(receiver.delivered) == 1, timeout=30), log.read_text()
        time.sleep(1.0)  # a duplicate would have arrived by now
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)
    assert len(receiver.delivered) == 1
    assert receiver.delivered[0]["event"] == "broken"
    assert receiver.delivered[0]["delivery"] == str(delivery.id)
    with db.read() as s:
        assert [(d.state, d.attempts) for d in s.scalars(select(AlertDelivery))] == [("sent", 1)]
        assert len(s.scalars(select(AlertEvent)).all()) == 1  # the restart raised nothing new
    db.dispose()
