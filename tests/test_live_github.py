"""A job changing on GitHub reaches an open stream (SSE) right after its webhook."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from cipulse.app import create_app
from tests.support import live_server
from tests.test_webhooks import HOOKS, SECRET, payload, sign


def one_job_life() -> list[dict[str, Any]]:
    names = ["queued", "in_progress.with-queued-steps", "completed.success.with-organization"]
    events = [payload(HOOKS / "workflow_job" / f"{n}.payload.json") for n in names]
    first = events[0]["workflow_job"]
    now = datetime.now(UTC).replace(microsecond=0)
    for data in events:
        job = data["workflow_job"]
        job["id"], job["run_id"], job["run_attempt"] = first["id"], first["run_id"], 1
        job["created_at"] = (now - timedelta(seconds=30)).isoformat()  # the examples are old
        if job.get("started_at"):
            job["started_at"] = (now - timedelta(seconds=20)).isoformat()
        if job.get("completed_at"):
            job["completed_at"] = now.isoformat()
    return events


def post(base: str, data: dict[str, Any], n: int) -> httpx.Response:
    raw = json.dumps(data).encode()
    return httpx.post(
        f"{base}/webhooks/github",
        content=raw,
        headers={
            "Content-Type": "application/json",
            "X-GitHub-Event": "workflow_job",
            "X-GitHub-Delivery": f"live-{n}",
            "X-Hub-Signature-256": sign(raw),
        },
    )


def test_stream_shows_a_job_moving_through_its_states(make_settings, db_url: str) -> None:  # type: ignore[no-untyped-def]
    app = create_app(make_settings(webhook_secret=SECRET))
    received: list[tuple[str, dict[str, Any]]] = []
    ready = threading.Event()

    with live_server(app) as base:

        def listen() -> None:
            with httpx.stream("GET", f"{base}/api/stream", timeout=30) as response:
                assert response.headers["content-type"].startswith("text/event-stream")
                ready.set()
                event = None
                for line in response.iter_lines():
                    if line.startswith("event: "):
                        event = line[7:]
                    elif line.startswith("data: ") and event:
                        received.append((event, json.loads(line[6:])))
                        if event == "job-update" and received[-1][1]["status"] == "completed":
                            return

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        assert ready.wait(10)
        time.sleep(0.2)  # the subscription is made when the first bytes go out
        states = []
        for n, data in enumerate(one_job_life()):
            sent = time.monotonic()
            assert post(base, data, n).status_code == 202
            while time.monotonic() - sent < 5:
                updates = [d for e, d in received if e == "job-update"]
                if len(updates) > n:
                    break
                time.sleep(0.02)
            states.append([d["status"] for e, d in received if e == "job-update"][-1])
        listener.join(10)
        in_progress = httpx.get(f"{base}/api/runs/in-progress").json()

    assert states == ["queued", "in_progress", "completed"]
    pipeline = [d for e, d in received if e == "pipeline-update"]
    assert pipeline[-1]["completedStages"] == [pipeline[-1]["jobs"][0]["name"]]
    assert pipeline[-1]["progress"] == 100.0
    assert {
        "id",
        "currentStage",
        "completedStages",
        "progress",
        "startTime",
        "duration",
        "activeNodes",
        "activeConnections",
    } <= set(pipeline[0])
    with_steps = [d for e, d in received if e == "job-update" and d["steps"]]
    assert with_steps, "the steps travel with the job"
    assert any(e == "log" for e, _ in received)
    assert len(in_progress) == 1  # its run has not completed: only its job did
    assert in_progress[0]["jobs"][0]["status"] == "completed"
