"""``/api/stats``: answers described in OpenAPI, filters validated, tables exported as CSV/JSON."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from cipulse.app import create_app
from cipulse.db import Database
from cipulse.models import utcnow
from cipulse.settings import Settings
from cipulse.stats import generate
from cipulse.web import export

ENDPOINTS = ("overview", "breakdown", "jobs", "durations", "queue", "recovery", "flaky", "compare")


@pytest.fixture
def api(db_url: str, settings: Settings) -> Iterator[TestClient]:
    db = Database(db_url)
    generate.generate(db.engine, runs=300, days=10, now=utcnow(), repositories=2, seed=5)
    db.dispose()
    with TestClient(create_app(settings)) as client:
        yield client


def test_every_endpoint_answers_and_is_in_the_schema(api: TestClient) -> None:
    schema = api.get("/openapi.json").json()
    for name in ENDPOINTS:
        path = f"/api/stats/{name}"
        assert path in schema["paths"], path
        ref = schema["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
        assert "$ref" in ref["schema"], path
        response = api.get(path, params={"days": 7})
        assert response.status_code == 200, (path, response.text)
    body = api.get("/api/stats/overview", params={"days": 7, "repo": "acme5/service-1"}).json()
    assert body["period"]["days"] == 7 and len(body["daily"]) == 7
    assert body["kpis"]["runs"] == sum(d["runs"] for d in body["daily"]) > 0
    assert set(body["kpis"]["trends"]) >= {"failure_rate", "duration_p95", "runs_per_day"}
    assert body["branches"] and {b["branch"] for b in body["branches"]} == {"main", "release"}


def test_filters_are_validated(api: TestClient) -> None:
    unknown = api.get("/api/stats/overview", params={"repo": "nobody/nothing"})
    assert unknown.status_code == 404 and "nobody/nothing" in unknown.json()["detail"]
    assert api.get("/api/stats/jobs", params={"days": 0}).status_code == 422
    assert api.get("/api/stats/jobs", params={"days": 401}).status_code == 422
    assert api.get("/api/stats/breakdown", params={"by": "colour"}).status_code == 422
    assert api.get("/api/stats/jobs", params={"format": "xml"}).status_code == 422
    today = utcnow().date()
    backwards = api.get(
        "/api/stats/compare",
        params={"a_from": str(today), "a_to": str(today - timedelta(days=3))},
    )
    assert backwards.status_code == 422 and "a_to" in backwards.text
    ancient = api.get("/api/stats/compare", params={"b_from": "0001-01-01"})
    assert ancient.status_code == 422 and "b_from" in ancient.text
    nul = api.get("/api/stats/overview", params={"branch": "ma\x00in"})
    assert nul.status_code == 422 and "NUL" in nul.text


def test_compare_two_periods(api: TestClient) -> None:
    today = utcnow().date()
    body = api.get(
        "/api/stats/compare",
        params={
            "a_from": str(today - timedelta(days=9)),
            "a_to": str(today - timedelta(days=5)),
            "b_from": str(today - timedelta(days=4)),
            "b_to": str(today),
        },
    ).json()
    assert body["a"]["days"] == 5 and body["b"]["days"] == 5
    both = api.get("/api/stats/overview", params={"days": 10}).json()["kpis"]["runs"]
    assert body["a_kpis"]["runs"] + body["b_kpis"]["runs"] == both
    ci = next(r for r in body["workflows"] if r["key"] == "CI")
    assert ci["a_runs"] + ci["b_runs"] > 0


def test_tables_export_as_csv_and_json(api: TestClient) -> None:
    as_json = api.get("/api/stats/jobs", params={"days": 7}).json()["jobs"]
    response = api.get("/api/stats/jobs", params={"days": 7, "format": "csv"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="job-failure-rates.csv"' in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == len(as_json) > 0
    first = rows[0]
    assert (
        first["job"] == as_json[0]["job"]
        and float(first["failure_rate"]) == (as_json[0]["failure_rate"])
    )
    assert len(first["daily_failures"].split(";")) == 7
    listed = api.get("/api/stats/jobs", params={"days": 7, "format": "json"}).json()
    assert listed == as_json
    compare = api.get("/api/stats/compare", params={"format": "csv"}).text
    assert compare.splitlines()[0].startswith("key,a.success,a.failure")


def test_export_helper_flattens_and_escapes() -> None:
    text = export.to_csv(
        [{"name": 'say "hi", then go', "a": {"b": 1, "c": None}, "days": [1, None, 3]}]
    )
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows == [{"name": 'say "hi", then go', "a.b": "1", "a.c": "", "days": "1;;3"}]
    assert export.link("/jobs", {"repo": "o/r", "branch": None}, "csv") == (
        "/jobs?repo=o%2Fr&format=csv"
    )


@pytest.mark.parametrize("table", ["daily", "branches", "in_progress", "recent"])
def test_each_overview_table_exports(api: TestClient, table: str) -> None:
    whole = api.get("/api/stats/overview").json()[table]
    response = api.get("/api/stats/overview", params={"table": table, "format": "csv"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    name = table.replace("_", "-")
    assert f'filename="overview-{name}.csv"' in response.headers["content-disposition"]
    assert len(list(csv.DictReader(io.StringIO(response.text)))) == len(whole)
    listed = api.get("/api/stats/overview", params={"table": table, "format": "json"}).json()
    assert listed == whole
    assert api.get("/api/stats/overview", params={"table": "nope"}).status_code == 422
