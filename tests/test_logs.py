"""Job logs end to end: fetched from the fake GitHub over real HTTP (through its redirect, without
the token), stored in chunks, served by the API and the viewer, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from cipulse.app import create_app
from cipulse.context import AppContext
from cipulse.db import Database
from cipulse.logs import service
from cipulse.logs.tasks import LogFetcher, PassResult
from cipulse.models import Job, JobLog, utcnow
from cipulse.settings import Settings
from tests.fakegithub import FakeGitHub, Run, Scenario
from tests.fakegithub.apps import app_key

REPO = "octo-org/hello-world"
LOGS = Path(__file__).resolve().parent.parent.parent / "shared" / "fixtures" / "real" / "logs"
FULL = LOGS / "pytorch-full-job-log.failing-tests.exit1.txt"
EXCERPTS = sorted((LOGS / "pytorch-test-infra-excerpts").glob("*.txt"))


def github_settings(make_settings, gh: FakeGitHub, **extra: Any) -> Settings:  # type: ignore[no-untyped-def]
    return make_settings(  # type: ignore[no-any-return]
        github_token=gh.token,
        github_api_url=gh.api_url,
        poll_interval_minutes=0,
        reconcile_cron="",
        **extra,
    )


def fetch(settings: Settings, *, passes: int = 1, sync: bool = True) -> list[PassResult]:
    """Sync the repository, then run the log fetcher ``passes`` times."""

    async def go() -> list[PassResult]:
        ctx = AppContext.build(settings)
        fetcher = LogFetcher(db=ctx.db, settings=settings, storage=ctx.storage, sync=ctx.sync)
        try:
            if sync and ctx.sync.app_mode:
                await ctx.sync.discover_installations()
            if sync:
                result = await ctx.sync.sync(REPO)
                assert result.error is None, result.error
            return [await fetcher.run_once() for _ in range(passes)]
        finally:
            await fetcher.aclose()
            await ctx.sync.aclose()
            ctx.db.dispose()

    # In a thread of its own: a browser test's Playwright may hold this thread's event loop.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, go()).result()


def logs_by_job(db_url: str) -> dict[int, JobLog]:
    """Log rows by GitHub job id."""
    db = Database(db_url)
    try:
        with db.read() as session:
            rows = session.execute(
                select(Job.github_id, JobLog).join(JobLog, JobLog.job_id == Job.id)
            )
            return {gid: row for gid, row in rows}
    finally:
        db.dispose()


def make_due(db_url: str) -> None:
    db = Database(db_url)
    try:
        with db.write() as uow:
            uow.session.execute(
                update(JobLog).values(next_attempt_at=utcnow() - timedelta(seconds=1))
            )
    finally:
        db.dispose()


def jobs_of(run: Run) -> dict[str, int]:
    return {job.name: job.id for job in run.attempts[0].jobs}


@pytest.fixture
def world(make_settings) -> Iterator[tuple[FakeGitHub, Run, Any]]:  # type: ignore[no-untyped-def]
    scenario = Scenario()
    repo = scenario.add_repo(REPO)
    workflow = scenario.add_workflow(repo, "CI")
    run = scenario.add_run(workflow, jobs=[("test", "failure"), ("lint", "success")])
    with FakeGitHub(scenario) as gh:
        gh.job_logs[jobs_of(run)["test"]] = FULL.read_bytes()
        yield gh, run, lambda **extra: github_settings(make_settings, gh, **extra)


def test_failed_job_log_is_fetched_stored_and_served(world, db_url: str) -> None:  # type: ignore[no-untyped-def]
    gh, run, build = world
    settings = build()
    [result] = fetch(settings)
    assert (result.stored, result.failed) == (1, 0)
    test_id, lint_id = jobs_of(run)["test"], jobs_of(run)["lint"]
    rows = logs_by_job(db_url)
    assert set(rows) == {test_id}  # the passing job's log is not fetched by default
    row = rows[test_id]
    assert (row.state, row.line_count, row.error_count) == ("stored", 4768, 2)
    assert row.first_error_text == "Process completed with exit code 1."
    assert row.raw_bytes == FULL.stat().st_size and 0 < (row.stored_bytes or 0) < row.raw_bytes
    # the redirect was followed, and the signed URL never saw the token
    downloads = [e for e in gh.stats.log if e.host == "download"]
    assert downloads and not any(e.authorization for e in downloads)
    # nothing left to do on the next pass
    assert fetch(settings, sync=False)[0].handled == 0

    with TestClient(create_app(settings)) as client:
        page = client.get(f"/api/jobs/{test_id}/log", params={"start": 3190, "limit": 10}).json()
        assert page["line_count"] == 4768 and page["first_error_line"] == row.first_error_line
        assert [x["number"] for x in page["lines"]] == list(range(3190, 3200))
        error = next(x for x in page["lines"] if x["number"] == row.first_error_line)
        assert error == {
            "number": row.first_error_line,
            "timestamp": error["timestamp"],
            "kind": "error",
            "text": "Process completed with exit code 1.",
        }
        assert [i["kind"] for i in page["issues"]] == ["error", "error"]
        assert page["next_start"] == 3200
        raw = client.get(f"/api/jobs/{test_id}/log.txt")
        assert raw.status_code == 200 and raw.content == FULL.read_bytes()
        assert raw.headers["content-type"].startswith("text/plain")
        assert raw.headers["x-content-type-options"] == "nosniff"
        found = client.get(f"/api/jobs/{test_id}/log", params={"q": "exit code 1", "limit": 1})
        assert [m["line"] for m in found.json()["matches"]] == [3194, 4047]

        html = client.get(f"/repos/{REPO}/jobs/{test_id}/log")
        assert html.status_code == 200
        assert f'data-focus="{row.first_error_line}"' in html.text
        assert f'id="L{row.first_error_line}"' in html.text
        assert "log-focus" in html.text and "Errors and warnings" in html.text
        missing = client.get(f"/api/jobs/{lint_id}/log")
        assert missing.status_code == 404
        assert "was not fetched" in missing.json()["detail"]
        assert client.get(f"/repos/{REPO}/jobs/{lint_id}/log").status_code == 200

    db = Database(db_url)
    try:
        with db.read() as session:
            internal = session.scalar(select(Job.id).where(Job.github_id == test_id))
            assert internal is not None
            assert service.first_error_line(session, job_id=internal) == row.first_error_text
    finally:
        db.dispose()


def test_fetch_all_logs_takes_passing_jobs_too(world, db_url: str) -> None:  # type: ignore[no-untyped-def]
    _gh, run, build = world
    [result] = fetch(build(fetch_all_logs=True))
    assert result.stored == 2
    rows = logs_by_job(db_url)
    lint = rows[jobs_of(run)["lint"]]
    assert lint.state == "stored" and lint.error_count == 0 and lint.first_error_text is None


def test_expired_log_is_recorded_and_not_retried(world, db_url: str) -> None:  # type: ignore[no-untyped-def]
    gh, run, build = world
    test_id = jobs_of(run)["test"]
    gh.fail_next(410, path_contains=f"/actions/jobs/{test_id}/logs", count=5)
    settings = build()
    [result] = fetch(settings)
    assert result.expired == 1
    assert logs_by_job(db_url)[test_id].state == "expired"
    make_due(db_url)
    assert fetch(settings, sync=False)[0].handled == 0  # never asked again
    with TestClient(create_app(settings)) as client:
        api = client.get(f"/api/jobs/{test_id}/log")
        assert api.status_code == 404 and "expired" in api.json()["detail"]
        page = client.get(f"/repos/{REPO}/jobs/{test_id}/log")
        assert page.status_code == 404 and "GitHub no longer has this log" in page.text


def test_transient_failure_is_retried_with_backoff(world, db_url: str) -> None:  # type: ignore[no-untyped-def]
    gh, run, build = world
    test_id = jobs_of(run)["test"]
    gh.fail_next(503, host="download", path_contains=f"/jobs/{test_id}/")
    settings = build()
    [result] = fetch(settings)
    assert result.retried == 1
    row = logs_by_job(db_url)[test_id]
    assert (row.state, row.attempts) == ("pending", 1)
    assert row.next_attempt_at > utcnow()
    assert (row.last_error or "").startswith("GitHub answered 5")
    assert fetch(settings, sync=False)[0].handled == 0  # not due yet
    make_due(db_url)
    assert fetch(settings, sync=False)[0].stored == 1
    assert logs_by_job(db_url)[test_id].state == "stored"


def test_repeated_not_found_marks_the_log_missing(world, db_url: str) -> None:  # type: ignore[no-untyped-def]
    gh, run, build = world
    test_id = jobs_of(run)["test"]
    gh.fail_next(404, path_contains=f"/actions/jobs/{test_id}/logs", count=10)
    settings = build()
    fetch(settings)
    for _ in range(2):
        make_due(db_url)
        fetch(settings, sync=False)
    row = logs_by_job(db_url)[test_id]
    assert (row.state, row.attempts) == ("missing", 3)
    make_due(db_url)
    assert fetch(settings, sync=False)[0].handled == 0


def test_a_log_can_be_asked_for(world, db_url: str) -> None:  # type: ignore[no-untyped-def]
    _gh, run, build = world
    settings = build(admin_token="adm1n")
    fetch(settings)
    lint_id = jobs_of(run)["lint"]
    with TestClient(create_app(settings)) as client:
        assert client.post(f"/api/jobs/{lint_id}/log/fetch").status_code == 401
        auth = {"Authorization": "Bearer adm1n"}
        asked = client.post(f"/api/jobs/{lint_id}/log/fetch", headers=auth)
        assert asked.status_code == 202 and asked.json()["state"] == "pending"
        assert client.post("/api/jobs/99999999/log/fetch", headers=auth).status_code == 404
    fetch(settings, sync=False)
    assert logs_by_job(db_url)[lint_id].state == "stored"


def test_bad_requests_get_clear_errors(world, db_url: str) -> None:  # type: ignore[no-untyped-def]
    _gh, run, build = world
    settings = build()
    fetch(settings)
    test_id = jobs_of(run)["test"]
    with TestClient(create_app(settings)) as client:
        assert client.get("/api/jobs/123456789/log").json()["detail"] == "no job 123456789 is known"
        assert client.get(f"/api/jobs/{test_id}/log", params={"limit": 0}).status_code == 422
        assert client.get(f"/api/jobs/{test_id}/log", params={"limit": 99999}).status_code == 422
        assert client.get("/api/jobs/abc/log").status_code == 422
        assert client.get(f"/api/jobs/{test_id}/log", params={"q": "x" * 201}).status_code == 422
        # the job exists, but not in this repository
        assert client.get(f"/repos/someone/else/jobs/{test_id}/log").status_code == 404
        assert client.get(f"/repos/{REPO}/jobs/notanumber/log").status_code == 404
        # a past-the-end page is empty, not an error
        past = client.get(f"/api/jobs/{test_id}/log", params={"start": 10**6}).json()
        assert past["lines"] == [] and past["next_start"] is None
        # odd query values fall back to the first page
        assert client.get(f"/repos/{REPO}/jobs/{test_id}/log?page=-1&line=x").status_code == 200


@pytest.mark.parametrize("path", EXCERPTS, ids=lambda p: p.stem)
def test_every_excerpt_is_served_by_the_viewer(path: Path, make_settings, db_url: str) -> None:  # type: ignore[no-untyped-def]
    scenario = Scenario()
    repo = scenario.add_repo(REPO)
    run = scenario.add_run(scenario.add_workflow(repo, "CI"), jobs=[("test", "failure")])
    job_id = jobs_of(run)["test"]
    with FakeGitHub(scenario) as gh:
        gh.job_logs[job_id] = path.read_bytes()
        settings = github_settings(make_settings, gh)
        assert fetch(settings)[0].stored == 1
        with TestClient(create_app(settings)) as client:
            page = client.get(f"/repos/{REPO}/jobs/{job_id}/log")
            assert page.status_code == 200
            assert "\x1b" not in page.text
            lines = path.read_bytes().decode("utf-8", "replace").splitlines()
            assert f'id="L{len(lines)}"' in page.text
            assert client.get(f"/api/jobs/{job_id}/log.txt").content == path.read_bytes()


def test_app_mode_downloads_with_the_installation_token(
    make_settings, db_url: str, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    scenario = Scenario()
    repo = scenario.add_repo(REPO)
    run = scenario.add_run(scenario.add_workflow(repo, "CI"), jobs=[("test", "failure")])
    scenario.add_installation("octo-org", repos=[REPO], id=1001)
    key_file = tmp_path / "app.pem"
    key_file.write_bytes(app_key().private_pem)
    job_id = jobs_of(run)["test"]
    with FakeGitHub(scenario, app_id=4242) as gh:
        gh.job_logs[job_id] = FULL.read_bytes()
        settings = make_settings(
            github_app_id=4242, github_app_private_key_file=key_file,
            github_api_url=gh.api_url, poll_interval_minutes=0, reconcile_cron="",
        )  # fmt: skip
        assert fetch(settings)[0].stored == 1
        assert gh.stats.token_purchases >= 1
        assert gh.rate_limit_remaining == 5000  # no personal token was used
        logs = [e for e in gh.stats.log if e.path.endswith(f"/actions/jobs/{job_id}/logs")]
        assert logs and all(e.authorization for e in logs)
        downloads = [e for e in gh.stats.log if e.host == "download"]
        assert downloads and not any(e.authorization for e in downloads)
    assert logs_by_job(db_url)[job_id].state == "stored"
