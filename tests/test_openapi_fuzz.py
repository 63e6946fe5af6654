"""schemathesis against the app's own OpenAPI schema, in process, on SQLite and PostgreSQL.

Every ``GET /api/...`` and the POSTs that are safe to send at random (ingest, test reports, the
webhook endpoint, which checks its signature first) get generated requests on a database
seeded by a sync from the fake GitHub plus a few ingested runs; no answer may be a 5xx.
The run is bounded and deterministic: few examples per operation, derandomized.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings

from cipulse.app import create_app
from tests.fakegithub import FakeGitHub, Scenario
from tests.test_sync import github_settings, run_sync

INGEST_TOKEN = "fuzz-ingest-token"
ADMIN_TOKEN = "fuzz-admin-token"
SAFE_POSTS = {"/api/events/run", "/api/test-reports", "/webhooks/github"}
NEVER = {"/api/stream"}  # an endless event stream: nothing to fuzz
MAX_EXAMPLES = 8


def _selected(ctx: Any) -> bool:
    operation = ctx.operation
    path, method = operation.path, operation.method.upper()
    if path in NEVER:
        return False
    if method == "GET":
        return path.startswith("/api/")
    return method == "POST" and path in SAFE_POSTS


@pytest.fixture
def api_schema(make_settings, db_url: str) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    scenario = Scenario.generate(seed=11, runs=30, jobs_per_run=4, days=10)
    with FakeGitHub(scenario) as gh:
        app_settings = github_settings(
            make_settings,
            gh,
            ingest_token=INGEST_TOKEN,
            admin_token=ADMIN_TOKEN,
            webhook_secret="fuzz-webhook-secret",
        )
        assert run_sync(app_settings).error is None
        app = create_app(app_settings)
        with TestClient(app) as client:  # runs the lifespan: the app's context exists
            for status in ("success", "failure", "running"):
                client.post(
                    "/api/events/run",
                    json={"pipeline": "build", "status": status, "branch": "main"},
                    headers={"Authorization": f"Bearer {INGEST_TOKEN}"},
                ).raise_for_status()
            yield schemathesis.openapi.from_asgi("/openapi.json", app).include(_selected)


def _fuzz(operation: Any) -> str | None:
    """The first 5xx that generated requests to one operation cause, or None."""
    headers = {"Authorization": f"Bearer {INGEST_TOKEN}"} if operation.method == "post" else {}

    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: the report names the request
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def check(case: Any) -> None:
        case.call_and_validate(headers=headers, checks=[schemathesis.checks.not_a_server_error])

    try:
        check()
    except Exception as exc:  # schemathesis raises its failure group; keep its text
        return f"{operation.method.upper()} {operation.path}: {str(exc)[:1500]}"
    return None


def test_no_server_errors(api_schema: Any) -> None:
    """Each selected operation is fuzzed on its own, so one 5xx does not hide another."""
    operations = [result.ok() for result in api_schema.get_all_operations()]
    paths = {op.path for op in operations}
    assert "/api/repos/{owner}/{repo}/runs/{run_id}" in paths and "/api/orgs" in paths
    assert "/api/stream" not in paths
    failures = [found for op in operations if (found := _fuzz(op)) is not None]
    assert failures == [], "\n\n".join(failures)
