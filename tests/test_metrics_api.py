"""Design E's read contracts: summary, runs, simulate, health and the live WebSocket."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cipulse.app import create_app

SUMMARY_FIELDS = {
    "window_minutes", "total", "success", "failure", "success_rate", "avg_duration_sec",
    "last_status", "last_finished_at", "per_pipeline",
}  # fmt: skip


def iso(moment: datetime) -> str:
    return moment.isoformat()


# (pipeline, status, minutes ago it started, duration seconds)
HISTORY = [
    ("build", "success", 3, 60), ("build", "failure", 25, 120), ("build", "success", 61, 90),
    ("build", "success", 95, 30), ("test", "failure", 130, 300), ("test", "success", 170, 200),
    ("test", "running", 2, None), ("deploy", "success", 700, 45), ("deploy", "failure", 1300, 50),
    ("deploy", "success", 1500, 40), ("test", "failure", 3000, 310), ("build", "success", 9000, 80),
    ("lint", "success", 20000, 10), ("lint", "failure", 50000, 12),
]  # fmt: skip


def load(client: TestClient, now: datetime) -> None:
    for i, (pipeline, status, ago, duration) in enumerate(HISTORY):
        started = now - timedelta(minutes=ago)
        body: dict[str, Any] = {"pipeline": pipeline, "status": status, "id": f"h{i}"}
        body["started_at"] = iso(started)
        if duration is not None:
            body["finished_at"] = iso(started + timedelta(seconds=duration))
        assert client.post("/api/events/run", json=body).status_code == 201


def reference(now: datetime, minutes: int) -> dict[str, Any]:
    """The summary computed the plain way, straight from the rows we sent."""
    rows = [r for r in HISTORY if r[2] <= minutes]
    success = sum(1 for r in rows if r[1] == "success")
    failure = sum(1 for r in rows if r[1] == "failure")
    durations = [r[3] for r in rows if r[3] is not None]
    per = {}
    for name in sorted({r[0] for r in rows}):
        mine = [r for r in rows if r[0] == name]
        s = sum(1 for r in mine if r[1] == "success")
        f = sum(1 for r in mine if r[1] == "failure")
        d = [r[3] for r in mine if r[3] is not None]
        per[name] = {
            "total": len(mine),
            "success": s,
            "failure": f,
            "success_rate": round(100 * s / (s + f), 2) if s + f else None,
            "avg_duration_sec": round(sum(d) / len(d), 3) if d else None,
        }
    return {
        "total": len(rows),
        "success": success,
        "failure": failure,
        "running": sum(1 for r in rows if r[1] == "running"),
        "success_rate": round(100 * success / (success + failure), 2) if rows else None,
        "avg_duration_sec": round(sum(durations) / len(durations), 3) if durations else None,
        "per_pipeline": per,
    }


@pytest.mark.parametrize("minutes", [60, 120, 1440, 10080, 43200, 527040])
def test_summary_equals_reference(client: TestClient, minutes: int) -> None:
    now = datetime.now(UTC)
    load(client, now)
    got = client.get(f"/api/metrics/summary?minutes={minutes}").json()
    assert set(got) >= SUMMARY_FIELDS
    want = reference(now, minutes)
    assert got["window_minutes"] == minutes
    for key in ("total", "success", "failure", "running", "success_rate", "avg_duration_sec"):
        assert got[key] == want[key], key
    per = {p["pipeline"]: p for p in got["per_pipeline"]}
    assert set(per) == set(want["per_pipeline"])
    for name, expected in want["per_pipeline"].items():
        for key, value in expected.items():
            assert per[name][key] == value, (name, key)


def test_last_status_is_the_newest_finished_run(client: TestClient) -> None:
    now = datetime.now(UTC)
    load(client, now)
    got = client.get("/api/metrics/summary").json()
    assert got["last_status"] == "success"  # build, started 3 min ago, took 60 s
    expected = now - timedelta(minutes=3) + timedelta(seconds=60)
    assert abs(datetime.fromisoformat(got["last_finished_at"]) - expected) < timedelta(seconds=1)
    per = {p["pipeline"]: p for p in got["per_pipeline"]}
    assert per["test"]["last_status"] == "failure"


def test_empty_summary(client: TestClient) -> None:
    got = client.get("/api/metrics/summary").json()
    assert got["total"] == 0
    assert got["success_rate"] is None
    assert got["avg_duration_sec"] is None
    assert got["last_status"] is None
    assert got["per_pipeline"] == []


def test_summary_window_is_validated(client: TestClient) -> None:
    r = client.get("/api/metrics/summary?minutes=0")
    assert r.status_code == 422
    assert r.json()["message"].startswith("minutes:")
    assert client.get("/api/metrics/summary?minutes=abc").status_code == 422


def test_runs_newest_first_with_limit(client: TestClient) -> None:
    load(client, datetime.now(UTC))
    runs = client.get("/api/runs?limit=3").json()
    assert [r["pipeline"] for r in runs] == ["test", "build", "build"]  # 2, 3 and 25 min ago
    assert set(runs[0]) >= {
        "id", "pipeline", "status", "started_at", "finished_at", "duration_sec", "branch",
        "commit", "triggered_by",
    }  # fmt: skip
    assert len(client.get("/api/runs").json()) == 14
    assert client.get("/api/runs?limit=0").status_code == 422
    assert client.get("/api/runs?limit=501").status_code == 422


def test_daily_counts(client: TestClient) -> None:
    load(client, datetime.now(UTC))
    days = client.get("/api/metrics/daily?days=60").json()
    assert len(days) == 60
    assert sum(d["total"] for d in days) == len(HISTORY)
    assert sum(d["failure"] for d in days) == sum(1 for r in HISTORY if r[1] == "failure")


def test_simulate_creates_runs_with_the_fail_rate(client: TestClient) -> None:
    r = client.post("/api/simulate?count=40&fail_rate=1", json={"pipelines": ["alpha", "beta"]})
    assert r.status_code == 201
    assert r.json()["created"] == 40
    summary = client.get("/api/metrics/summary").json()
    assert summary["total"] == 40
    assert summary["failure"] == 40
    assert {p["pipeline"] for p in summary["per_pipeline"]} <= {"alpha", "beta"}
    r = client.post("/api/simulate?count=5&fail_rate=0")
    assert r.status_code == 201
    assert client.get("/api/metrics/summary").json()["success"] == 5


def test_simulate_validates(client: TestClient) -> None:
    assert client.post("/api/simulate?count=0").status_code == 422
    assert client.post("/api/simulate?fail_rate=1.5").status_code == 422
    r = client.post("/api/simulate", json={"pipelines": "build"})
    assert r.status_code == 422
    assert client.get("/api/runs").json() == []


def test_simulate_needs_admin_token_when_set(make_settings) -> None:  # type: ignore[no-untyped-def]
    with TestClient(create_app(make_settings(admin_token="adm-123"))) as c:
        assert c.post("/api/simulate?count=1").status_code == 401
        r = c.post("/api/simulate?count=1", headers={"Authorization": "Bearer adm-123"})
        assert r.status_code == 201


def test_health(client: TestClient) -> None:
    body = client.get("/health").json()
    assert body["ok"] is True
    assert datetime.fromisoformat(body["time"])
    assert body["components"]["database"]["ok"] is True
    assert body["components"]["database"]["revision"]
    assert body["components"]["email"]["enabled"] is False


def test_websocket_gets_update_after_each_ingest(client: TestClient) -> None:
    with client.websocket_connect("/ws/metrics") as ws:
        first = ws.receive_json()
        assert first["type"] == "metrics_update"
        assert first["payload"]["total"] == 0
        client.post("/api/events/run", json={"pipeline": "p", "status": "failure"})
        update = ws.receive_json()
        assert update["type"] == "metrics_update"
        assert update["payload"]["total"] == 1
        assert update["payload"]["failure"] == 1
        client.post("/api/events/run", json={"pipeline": "p", "status": "success"})
        assert ws.receive_json()["payload"]["total"] == 2


def test_every_websocket_client_gets_the_update(client: TestClient) -> None:
    with (
        client.websocket_connect("/ws/metrics") as a,
        client.websocket_connect("/ws/metrics?minutes=60") as b,
    ):
        a.receive_json()
        b.receive_json()
        client.post("/api/events/run", json={"pipeline": "p", "status": "success"})
        assert a.receive_json()["payload"]["window_minutes"] == 1440
        got_b = b.receive_json()["payload"]
        assert (got_b["window_minutes"], got_b["total"]) == (60, 1)
