"""Design E's ingest contract: POST /api/events/run."""

from __future__ import annotations

from fastapi.testclient import TestClient

from cipulse.app import create_app


def post(client: TestClient, **body: object):  # type: ignore[no-untyped-def]
    return client.post("/api/events/run", json=body)


def test_new_finished_run_is_created(client: TestClient) -> None:
    r = post(
        client,
        pipeline="build",
        status="success",
        started_at="2026-11-20T10:00:00Z",
        finished_at="2026-11-20T10:05:00Z",
        branch="main",
        commit="abc123",
        triggered_by="alice",
    )
    assert r.status_code == 201
    run = r.json()["run"]
    assert run["pipeline"] == "build"
    assert run["status"] == "success"
    assert run["duration_sec"] == 300
    assert run["branch"] == "main"
    assert run["commit"] == "abc123"
    assert run["triggered_by"] == "alice"


def test_running_then_finished_is_one_run(client: TestClient) -> None:
    first = post(client, pipeline="test", status="running", commit="c1", branch="main")
    assert first.status_code == 201
    done = post(client, pipeline="test", status="failure", commit="c1", duration_sec=42)
    assert done.status_code == 200
    assert done.json()["run"]["id"] == first.json()["run"]["id"]
    runs = client.get("/api/runs").json()
    assert len(runs) == 1
    assert runs[0]["status"] == "failure"
    assert runs[0]["branch"] == "main"
    summary = client.get("/api/metrics/summary").json()
    assert (summary["total"], summary["failure"], summary["running"]) == (1, 1, 0)


def test_finished_run_does_not_go_back_to_running(client: TestClient) -> None:
    post(client, pipeline="p", status="running", commit="c", id="r-1")
    post(client, pipeline="p", status="success", commit="c", id="r-1")
    late = post(client, pipeline="p", status="running", commit="c", id="r-1")
    assert late.status_code == 200
    assert late.json()["changed"] is False
    assert client.get("/api/runs").json()[0]["status"] == "success"


def test_same_id_twice_is_stored_once(client: TestClient) -> None:
    body = {"pipeline": "deploy", "status": "success", "commit": "d1", "id": "evt-77"}
    assert client.post("/api/events/run", json=body).status_code == 201
    again = client.post("/api/events/run", json=body)
    assert again.status_code == 200
    assert again.json()["created"] is False
    assert len(client.get("/api/runs").json()) == 1


def test_idempotency_key_header(client: TestClient) -> None:
    body = {"pipeline": "deploy", "status": "failure"}
    headers = {"Idempotency-Key": "k-1"}
    assert client.post("/api/events/run", json=body, headers=headers).status_code == 201
    assert client.post("/api/events/run", json=body, headers=headers).status_code == 200
    assert client.get("/api/metrics/summary").json()["failure"] == 1


def test_two_finished_runs_of_one_commit_without_id_are_two_runs(client: TestClient) -> None:
    post(client, pipeline="p", status="failure", commit="same")
    post(client, pipeline="p", status="success", commit="same")
    assert len(client.get("/api/runs").json()) == 2


def test_running_runs_of_other_commits_are_separate(client: TestClient) -> None:
    post(client, pipeline="p", status="running", commit="a")
    post(client, pipeline="p", status="running", commit="b")
    post(client, pipeline="p", status="success", commit="b")
    statuses = {r["commit"]: r["status"] for r in client.get("/api/runs").json()}
    assert statuses == {"a": "running", "b": "success"}


def test_bad_status_names_the_field(client: TestClient) -> None:
    r = post(client, pipeline="p", status="done")
    assert r.status_code == 422
    assert r.json()["message"].startswith("status:")
    assert r.json()["detail"][0]["loc"] == ["body", "status"]


def test_missing_pipeline_names_the_field(client: TestClient) -> None:
    r = post(client, status="success")
    assert r.status_code == 422
    assert "pipeline" in r.json()["message"]


def test_bad_timestamps_are_refused(client: TestClient) -> None:
    r = post(client, pipeline="p", status="success", started_at="yesterday")
    assert r.status_code == 422
    assert "started_at" in r.json()["message"]
    r = post(
        client,
        pipeline="p",
        status="success",
        started_at="2026-01-02T00:00:00Z",
        finished_at="2026-01-01T00:00:00Z",
    )
    assert r.status_code == 422
    assert "finished_at is before started_at" in r.json()["message"]
    r = post(client, pipeline="p", status="success", duration_sec=-1)
    assert r.status_code == 422
    assert "duration_sec" in r.json()["message"]
    assert client.get("/api/runs").json() == []


def test_not_json_is_refused(client: TestClient) -> None:
    r = client.post(
        "/api/events/run", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 422


def test_overlong_pipeline_name_is_refused(client: TestClient) -> None:
    r = post(client, pipeline="x" * 201, status="success")
    assert r.status_code == 422
    assert "pipeline" in r.json()["message"]


def test_ingest_token_required_when_set(make_settings) -> None:  # type: ignore[no-untyped-def]
    with TestClient(create_app(make_settings(ingest_token="s3cret-token"))) as c:
        body = {"pipeline": "p", "status": "success"}
        missing = c.post("/api/events/run", json=body)
        assert missing.status_code == 401
        assert "Bearer" in missing.json()["detail"]
        wrong = c.post("/api/events/run", json=body, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert "s3cret-token" not in wrong.text
        ok = c.post("/api/events/run", json=body, headers={"Authorization": "Bearer s3cret-token"})
        assert ok.status_code == 201
        assert len(c.get("/api/runs").json()) == 1


def test_naive_timestamps_are_taken_as_utc(client: TestClient) -> None:
    r = post(
        client,
        pipeline="p",
        status="success",
        started_at="2026-11-20T10:00:00",
        finished_at="2026-11-20T11:00:00+01:00",
    )
    assert r.status_code == 201
    assert r.json()["run"]["duration_sec"] == 0
