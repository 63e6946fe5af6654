"""Pure GitHub pieces on real recorded data: payload parsing and retry decisions."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cipulse.github.ratelimit import RateLimit, decide
from cipulse.github.schemas import PayloadError, parse_job, parse_run, parse_workflow
from tests.conftest import SHARED

REST = SHARED / "fixtures" / "real" / "rest"
WEBHOOKS = SHARED / "fixtures" / "real" / "webhooks"


def load(path: Path) -> Any:
    return json.loads(path.read_text())


def all_runs() -> list[dict[str, Any]]:
    runs = []
    for path in sorted((REST / "octokit-rb-decoded").glob("list-workflow-runs-*.body.json")):
        runs += load(path)["workflow_runs"]
    runs.append(load(REST / "openapi-examples" / "workflow-run.json"))
    runs += load(REST / "openapi-examples" / "workflow-run-paginated.json")["workflow_runs"]
    for path in sorted((WEBHOOKS / "workflow_run").glob("*.json")):
        body = load(path)
        body = body.get("payload", body)
        runs.append(body["workflow_run"])
    return runs


def all_jobs() -> list[dict[str, Any]]:
    jobs = load(REST / "pytorch-test-infra" / "list-jobs-for-run.pytorch-pytorch.json")["jobs"]
    for path in sorted((REST / "octokit-rb-decoded").glob("list-jobs-*.body.json")):
        jobs += load(path)["jobs"]
    jobs.append(load(REST / "openapi-examples" / "job.json"))
    for path in sorted((WEBHOOKS / "workflow_job").glob("*.json")):
        body = load(path)
        body = body.get("payload", body)
        jobs.append(body["workflow_job"])
    return jobs


def test_every_real_run_parses() -> None:
    runs = all_runs()
    assert len(runs) >= 8
    for raw in runs:
        run = parse_run(raw)
        assert run.github_id == raw["id"]
        assert run.created_at.tzinfo is UTC
        assert run.run_attempt >= 1
        assert run.status == raw["status"]


def test_every_real_job_parses() -> None:
    jobs = all_jobs()
    assert len(jobs) >= 10
    for raw in jobs:
        job = parse_job(raw)
        assert job.github_id == raw["id"]
        assert job.run_github_id == raw["run_id"]
        assert len(job.steps) == len(raw.get("steps") or [])


def test_job_fields_from_the_real_failure() -> None:
    raw = load(WEBHOOKS / "workflow_job" / "completed.failure.with-organization.payload.json")
    job = parse_job(raw["workflow_job"])
    assert job.name == "linters"
    assert job.conclusion == "failure"
    failed = [s for s in job.steps if s.conclusion == "failure"]
    assert [s.name for s in failed] == ["Run yarn run format-check"]
    assert job.started_at is not None and job.completed_at is not None
    assert job.completed_at >= job.started_at


def test_skipped_job_without_runner() -> None:
    raw = load(WEBHOOKS / "workflow_job" / "completed.skipped.otel-contrib.json")
    job = parse_job(raw.get("payload", raw)["workflow_job"])
    assert (job.conclusion, job.runner_name, job.steps, job.run_attempt) == (
        "skipped",
        None,
        [],
        13,
    )


def test_real_workflows_parse() -> None:
    for path in sorted((REST / "octokit-rb-decoded").glob("list-workflows.*.body.json")):
        for raw in load(path)["workflows"]:
            assert parse_workflow(raw).github_id == raw["id"]


@given(
    st.dictionaries(
        st.sampled_from(
            ["id", "run_id", "created_at", "name", "steps", "run_attempt", "status", "labels"]
        ),
        st.one_of(st.none(), st.integers(), st.text(), st.lists(st.integers())),
    )
)
def test_parsers_never_crash_on_junk(data: dict[str, Any]) -> None:
    for parse in (parse_run, parse_job, parse_workflow):
        with contextlib.suppress(PayloadError):
            parse(data)


NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_retry_after_wins() -> None:
    v = decide(403, {"Retry-After": "7", "x-ratelimit-remaining": "0"}, "", attempt=0, now=NOW)
    assert v.retry_after == 7


def test_primary_limit_waits_for_reset() -> None:
    reset = int((NOW + timedelta(seconds=120)).timestamp())
    headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)}
    v = decide(403, headers, "API rate limit exceeded", attempt=0, now=NOW)
    assert v.retry_after == pytest.approx(121)


def test_secondary_limit_waits_a_minute_then_backs_off() -> None:
    msg = "You have exceeded a secondary rate limit"
    first = decide(403, {"x-ratelimit-remaining": "4000"}, msg, attempt=0, now=NOW)
    later = decide(429, {}, msg, attempt=3, now=NOW)
    assert first.retry_after == 60
    assert later.retry_after is not None and later.retry_after >= 60


def test_server_errors_back_off_and_403_permission_is_final() -> None:
    waits = [decide(502, {}, "", attempt=a, now=NOW).retry_after for a in range(4)]
    assert waits == sorted(waits)
    assert waits[0] is not None and waits[0] > 0
    assert decide(403, {}, "Resource not accessible", attempt=0, now=NOW).retry_after is None
    assert decide(422, {}, "Validation Failed", attempt=0, now=NOW).retry_after is None


def test_rate_limit_headers_from_real_recordings() -> None:
    meta = load(REST / "octokit-rb-decoded" / "list-workflow-runs-for-repo.3-pages.1.meta.json")
    headers = meta.get("response_headers") or meta.get("headers") or meta["response"]["headers"]
    flat = {k: v[0] if isinstance(v, list) else v for k, v in headers.items()}
    rate = RateLimit.from_headers(flat)
    assert rate is not None
    assert rate.limit == 5000
    assert rate.remaining is not None and 0 <= rate.remaining <= 5000
    assert rate.reset_at is not None and rate.reset_at.year == 2022
