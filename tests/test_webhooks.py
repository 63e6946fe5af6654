"""POST /webhooks/github with GitHub's real deliveries: verified, stored first, processed after."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from cipulse.app import create_app
from cipulse.db import Database
from cipulse.models import Installation, Job, Repository, Step, WebhookDelivery, WorkflowRun
from tests.conftest import SHARED

HOOKS = SHARED / "fixtures" / "real" / "webhooks"
SIGNED = HOOKS / "signed-deliveries"
PUBLISHED_SECRET = "402786017574bd28f9d8f7a18648939751c47fe09077d56e10f0444f14fbb73b"
SECRET = "test-webhook-secret"


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def payload(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    return data["payload"] if "payload" in data and "name" in data else data  # probot wrapper


def deliver(
    client: TestClient,
    event: str,
    body: bytes | dict[str, Any],
    *,
    delivery: str | None = None,
    secret: str = SECRET,
    hook: str = "1",
) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(
        "/webhooks/github",
        content=raw,
        headers={
            "Content-Type": "application/json",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
            "X-GitHub-Hook-ID": hook,
            "X-Hub-Signature-256": sign(raw, secret),
        },
    )


def wait_until(check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    assert check()


def all_done(db_url: str) -> Callable[[], bool]:
    def check() -> bool:
        db = Database(db_url)
        with db.read() as s:
            pending = s.scalar(
                select(func.count())
                .select_from(WebhookDelivery)
                .where(WebhookDelivery.state == "pending")
            )
        db.dispose()
        return pending == 0

    return check


def count(db_url: str, model: type) -> int:
    db = Database(db_url)
    with db.read() as s:
        n = s.scalar(select(func.count()).select_from(model)) or 0
    db.dispose()
    return n


@pytest.fixture
def hooks(make_settings):  # type: ignore[no-untyped-def]
    with TestClient(create_app(make_settings(webhook_secret=SECRET))) as client:
        yield client


# -- the six real signed deliveries -----------------------------------------------------------


def signed_deliveries() -> list[Path]:
    files = sorted(SIGNED.glob("*.delivery.json"))
    assert len(files) == 6
    return files


@pytest.mark.parametrize("path", signed_deliveries(), ids=lambda p: p.name.split(".delivery")[0])
def test_real_signed_delivery_verifies_with_its_published_secret(
    make_settings, db_url: str, path: Path
) -> None:  # type: ignore[no-untyped-def]
    record = json.loads(path.read_text())
    body = base64.b64decode(record["body_raw_base64"])
    headers = record["headers"]
    if isinstance(headers, str):
        headers = json.loads(headers.replace("'", '"'))
    keep = {k: v for k, v in headers.items() if k.startswith("x-") or k == "content-type"}
    settings = make_settings(webhook_secret=PUBLISHED_SECRET)
    with TestClient(create_app(settings)) as client:
        wrong = make_settings(webhook_secret="not-the-secret")
        with TestClient(create_app(wrong)) as other:
            refused = other.post("/webhooks/github", content=body, headers=keep)
            assert refused.status_code == 401
            assert "signature does not match" in refused.json()["detail"]
        assert count(db_url, WebhookDelivery) == 0
        r = client.post("/webhooks/github", content=body, headers=keep)
        assert r.status_code == 202, r.text
        assert r.json()["delivery"] == headers["x-github-delivery"]
        again = client.post("/webhooks/github", content=body, headers=keep)
        assert again.status_code == 200
        assert again.json()["status"] == "duplicate"
        wait_until(all_done(db_url))
    assert count(db_url, WebhookDelivery) == 1


def test_documented_test_vector() -> None:
    from cipulse.github.webhooks import verify_signature

    verify_signature(
        b"Hello, World!",
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        "It's a Secret to Everybody",
    )


# -- refusals store nothing --------------------------------------------------------------------


def test_forged_truncated_and_unsigned_bodies_store_nothing(hooks: TestClient, db_url: str) -> None:
    body = (HOOKS / "workflow_job" / "queued.payload.json").read_bytes()
    good = sign(body)
    base = {
        "X-GitHub-Event": "workflow_job",
        "X-GitHub-Delivery": "d-1",
        "Content-Type": "application/json",
    }
    cases = [
        (body, {}, "missing X-Hub-Signature-256"),
        (body, {"X-Hub-Signature-256": "sha1=abc"}, "must start with sha256="),
        (body, {"X-Hub-Signature-256": sign(body, "other")}, "does not match"),
        (body[:-10], {"X-Hub-Signature-256": good}, "does not match"),
        (body.replace(b"queued", b"complet"), {"X-Hub-Signature-256": good}, "does not match"),
    ]
    for raw, extra, reason in cases:
        r = hooks.post("/webhooks/github", content=raw, headers={**base, **extra})
        assert r.status_code == 401, reason
        assert reason in r.json()["detail"]
        assert SECRET not in r.text
    assert count(db_url, WebhookDelivery) == 0


def test_endpoint_is_off_without_a_secret(make_settings, db_url: str) -> None:  # type: ignore[no-untyped-def]
    with TestClient(create_app(make_settings())) as client:
        r = deliver(client, "ping", {"zen": "x"})
        assert r.status_code == 503
        assert "CIPULSE_WEBHOOK_SECRET" in r.json()["detail"]
    with TestClient(create_app(make_settings(webhook_allow_unsigned=True))) as client:
        r = client.post(
            "/webhooks/github",
            json={"zen": "x"},
            headers={"X-GitHub-Event": "ping", "X-GitHub-Delivery": "p-1"},
        )
        assert r.status_code == 202
    assert count(db_url, WebhookDelivery) == 1


def test_body_size_cap(make_settings, db_url: str) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(webhook_secret=SECRET, webhook_max_body_mb=0.001)
    with TestClient(create_app(settings)) as client:
        r = deliver(client, "ping", {"zen": "x" * 5000})
        assert r.status_code == 413
    assert count(db_url, WebhookDelivery) == 0


def test_bad_headers_and_bodies(hooks: TestClient, db_url: str) -> None:
    raw = b"not json"
    r = hooks.post(
        "/webhooks/github",
        content=raw,
        headers={
            "X-GitHub-Event": "ping",
            "X-GitHub-Delivery": "x",
            "X-Hub-Signature-256": sign(raw),
        },
    )
    assert r.status_code == 400
    assert "not a JSON payload" in r.json()["detail"]
    raw = b"{}"
    r = hooks.post(
        "/webhooks/github",
        content=raw,
        headers={"X-GitHub-Delivery": "x", "X-Hub-Signature-256": sign(raw)},
    )
    assert r.status_code == 400
    assert "X-GitHub-Event" in r.json()["detail"]
    assert count(db_url, WebhookDelivery) == 0


# -- processing ---------------------------------------------------------------------------------


def job_events() -> list[tuple[str, dict[str, Any]]]:
    names = [
        "queued",
        "waiting",
        "in_progress.with-queued-steps",
        "completed.success.with-organization",
    ]
    out = []
    for name in names:
        data = payload(HOOKS / "workflow_job" / f"{name}.payload.json")
        out.append(("workflow_job", data))
    return out


def job_state(db_url: str) -> list[tuple[Any, ...]]:
    db = Database(db_url)
    with db.read() as s:
        jobs = sorted(
            (j.github_id, j.status, j.conclusion, j.started_at, j.completed_at, j.runner_name)
            for j in s.scalars(select(Job))
        )
        steps = sorted(
            (st.job_id, st.number, st.status, st.conclusion) for st in s.scalars(select(Step))
        )
        runs = sorted(
            (r.github_id, r.run_attempt, r.status) for r in s.scalars(select(WorkflowRun))
        )
    db.dispose()
    return [tuple(jobs), tuple(steps), tuple(runs)]


def test_job_events_in_order_shuffled_and_duplicated_end_the_same(
    make_settings, db_url: str
) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import wipe

    events = job_events()
    # GitHub's examples are separate jobs; make them one job's life: same ids throughout.
    first = events[0][1]["workflow_job"]
    for _, data in events:
        job = data["workflow_job"]
        job["id"], job["run_id"], job["run_attempt"] = first["id"], first["run_id"], 1
    settings = make_settings(webhook_secret=SECRET)
    results = []
    orders = [list(range(4)), [3, 0, 2, 1], [2, 3, 3, 0, 1, 1, 2, 0]]
    for order in orders:
        wipe(db_url)
        with TestClient(create_app(settings)) as client:
            for i in order:
                event, data = events[i]
                assert deliver(client, event, data).status_code == 202
            wait_until(all_done(db_url))
        results.append(job_state(db_url))
    assert results[0] == results[1] == results[2]
    jobs = results[0][0]
    assert len(jobs) == 1
    assert jobs[0][1:3] == ("completed", "success")
    assert results[0][1], "the completed job's steps are stored"


def test_same_delivery_twice_is_processed_once(hooks: TestClient, db_url: str) -> None:
    data = payload(HOOKS / "workflow_run" / "completed.payload.json")
    assert deliver(hooks, "workflow_run", data, delivery="abc").status_code == 202
    assert deliver(hooks, "workflow_run", data, delivery="abc").status_code == 200
    # the same delivery id from another hook is another delivery
    assert deliver(hooks, "workflow_run", data, delivery="abc", hook="2").status_code == 202
    wait_until(all_done(db_url))
    assert count(db_url, WebhookDelivery) == 2
    assert count(db_url, WorkflowRun) == 1


def test_runs_only_move_forward(hooks: TestClient, db_url: str) -> None:
    completed = payload(HOOKS / "workflow_run" / "completed.payload.json")
    requested = json.loads(json.dumps(completed))
    requested["action"] = "requested"
    requested["workflow_run"].update(status="queued", conclusion=None)
    deliver(hooks, "workflow_run", completed)
    wait_until(all_done(db_url))
    deliver(hooks, "workflow_run", requested)  # arrives late
    wait_until(all_done(db_url))
    db = Database(db_url)
    with db.read() as s:
        run = s.scalars(select(WorkflowRun)).one()
        assert (run.status, run.conclusion) == ("completed", "success")
    db.dispose()
    rerun = json.loads(json.dumps(requested))
    rerun["workflow_run"]["run_attempt"] = 2
    deliver(hooks, "workflow_run", rerun)
    wait_until(all_done(db_url))
    assert count(db_url, WorkflowRun) == 2  # the newer attempt is its own row; the first stays


def test_every_payload_example_is_processed(hooks: TestClient, db_url: str) -> None:
    files = sorted(p for p in HOOKS.rglob("*.json") if "signed-deliveries" not in p.parts)
    random.Random(1).shuffle(files)
    for path in files:
        event = path.parent.name
        assert deliver(hooks, event, payload(path)).status_code == 202, path
    wait_until(all_done(db_url))
    db = Database(db_url)
    with db.read() as s:
        states = dict(
            s.execute(
                select(WebhookDelivery.event, func.count())
                .where(WebhookDelivery.state == "failed")
                .group_by(WebhookDelivery.event)
            ).all()
        )
        ignored = set(
            s.scalars(select(WebhookDelivery.event).where(WebhookDelivery.state == "ignored"))
        )
        errors = [d.last_error for d in s.scalars(select(WebhookDelivery)) if d.last_error]
    db.dispose()
    assert states == {}, errors
    assert {"check_run", "check_suite", "workflow_dispatch"} <= ignored
    assert count(db_url, Installation) >= 1
    assert count(db_url, Job) >= 5


def test_installation_tracks_its_repositories(hooks: TestClient, db_url: str) -> None:
    created = payload(HOOKS / "installation" / "created.payload.json")
    deliver(hooks, "installation", created)
    added = payload(HOOKS / "installation_repositories" / "added.payload.json")
    deliver(hooks, "installation_repositories", added)
    wait_until(all_done(db_url))
    db = Database(db_url)
    with db.read() as s:
        tracked = {r.full_name for r in s.scalars(select(Repository).where(Repository.tracked))}
        inst = s.scalars(select(Installation)).all()
    db.dispose()
    expected = {r["full_name"] for r in created.get("repositories", [])} | {
        r["full_name"] for r in added["repositories_added"]
    }
    assert expected and expected <= tracked
    assert inst[0].account_login == created["installation"]["account"]["login"]
    deleted = payload(HOOKS / "installation" / "deleted.payload.json")
    deleted["installation"]["id"] = created["installation"]["id"]
    deliver(hooks, "installation", deleted)
    wait_until(all_done(db_url))
    db = Database(db_url)
    with db.read() as s:
        assert s.scalars(select(Installation)).one().deleted_at is not None
    db.dispose()


def test_failed_processing_is_kept_and_can_be_replayed(make_settings, db_url: str) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(webhook_secret=SECRET, admin_token="adm")
    bad = payload(HOOKS / "workflow_job" / "queued.payload.json")
    del bad["workflow_job"]["run_id"]  # a payload our handler cannot store
    admin = {"Authorization": "Bearer adm"}
    with TestClient(create_app(settings)) as client:
        r = deliver(client, "workflow_job", bad)
        assert r.status_code == 202
        delivery_id = r.json()["id"]

        def errored() -> bool:
            rows = client.get("/api/webhooks/deliveries", headers=admin).json()
            return bool(rows) and rows[0]["last_error"] is not None

        wait_until(errored)
        row = client.get("/api/webhooks/deliveries", headers=admin).json()[0]
        assert row["state"] == "pending"  # kept for a retry with backoff
        assert row["attempts"] == 1
        assert "run_id" in row["last_error"]
        assert client.get("/api/webhooks/deliveries").status_code == 401
        replayed = client.post(f"/api/webhooks/deliveries/{delivery_id}/replay", headers=admin)
        assert replayed.status_code == 200
        assert replayed.json()["attempts"] == 0
        assert client.post("/api/webhooks/deliveries/999/replay", headers=admin).status_code == 404


def test_cli_lists_and_replays(hooks: TestClient, db_url: str, tmp_path: Path) -> None:
    import subprocess
    import sys

    r = deliver(hooks, "check_run", {"action": "created"})
    delivery_id = r.json()["id"]
    wait_until(all_done(db_url))
    env = {
        "PATH": "/usr/bin:/bin",
        "CIPULSE_DATABASE_URL": db_url,
        "CIPULSE_DATA_DIR": str(tmp_path),
    }

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cipulse", "webhooks", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    listed = cli("list")
    assert "check_run" in listed.stdout
    assert "ignored" in listed.stdout
    replayed = cli("replay", str(delivery_id))
    assert replayed.returncode == 0
    assert f"delivery {delivery_id} queued again" in replayed.stdout
    missing = cli("replay", "99999")
    assert missing.returncode == 1
    assert "no delivery 99999" in missing.stderr
    assert cli("list", "--state", "bogus").returncode == 2
