"""The sync engine against the fake GitHub over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from cipulse.db import Database
from cipulse.jobstats import service as jobstats
from cipulse.models import Job, Step, WorkflowRun, utcnow
from cipulse.settings import Settings
from cipulse.sync import repository
from cipulse.sync.service import SyncResult
from cipulse.sync.tasks import SyncCoordinator
from tests.fakegithub import FakeGitHub, Scenario, expected_job_stats

REPO = "octo-org/hello-world"


def github_settings(make_settings, gh: FakeGitHub, **extra: Any) -> Settings:  # type: ignore[no-untyped-def]
    return make_settings(  # type: ignore[no-any-return]
        github_token=gh.token,
        github_api_url=gh.api_url,
        poll_interval_minutes=0,
        reconcile_cron="",
        **extra,
    )


def run_sync(
    settings: Settings, name: str = REPO, *, search_cap: int = 1000, **kwargs: Any
) -> SyncResult:
    async def go() -> SyncResult:
        db = Database(settings.resolved_database_url)
        coordinator = SyncCoordinator(db=db, settings=settings, search_cap=search_cap)
        try:
            return await coordinator.sync(name, **kwargs)
        finally:
            await coordinator.aclose()
            db.dispose()

    return asyncio.run(go())


def stored_stats(db_url: str, branch: str | None) -> dict[str, dict[str, int]]:
    db = Database(db_url)
    with db.read() as session:
        repo = repository.get_repo(session, REPO)
        assert repo is not None
        data = jobstats.ci_data(
            session, repo_id=repo.id, repo=REPO, branch=branch, days=400, now=utcnow()
        )
    db.dispose()
    return {
        name: {"totalRuns": s.totalRuns, "failures": s.failures, "successes": s.successes}
        for name, s in data.jobStats.items()
    }


def snapshot(db_url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every synced row by its GitHub identity, without our own surrogate ids."""
    db = Database(db_url)
    with db.read() as s:
        runs = sorted(
            (
                r.github_id,
                r.run_attempt,
                r.status,
                r.conclusion,
                r.head_branch,
                r.name,
                r.created_at,
                r.updated_at,
                r.jobs_synced_for,
            )
            for r in s.scalars(select(WorkflowRun))
        )
        jobs = sorted(
            (
                j.github_id,
                j.run_attempt,
                j.name,
                j.status,
                j.conclusion,
                j.started_at,
                j.completed_at,
                j.runner_name,
                tuple(j.labels),
            )
            for j in s.scalars(select(Job))
        )
        steps = s.scalar(select(func.count()).select_from(Step))
    db.dispose()
    return {"runs": runs, "jobs": jobs, "steps": [(steps,)]}


@pytest.fixture
def scenario() -> Scenario:
    return Scenario.generate(seed=7, runs=60, jobs_per_run=6, days=20)


@pytest.fixture
def gh(scenario: Scenario) -> Iterator[FakeGitHub]:
    with FakeGitHub(scenario) as fake:
        yield fake


def test_initial_sync_matches_github_for_main_and_all_branches(make_settings, db_url: str) -> None:  # type: ignore[no-untyped-def]
    scenario = Scenario.generate(seed=7, runs=220, jobs_per_run=8, days=25)
    with FakeGitHub(scenario) as gh:
        result = run_sync(github_settings(make_settings, gh))
    assert result.error is None
    assert result.mode == "initial"
    assert result.new_runs == len(scenario.runs)
    for branch in (None, "main", "dev"):
        want = expected_job_stats(scenario, REPO, branch=branch)
        assert stored_stats(db_url, branch) == want, branch
    # every job of every attempt, each job once
    assert len(snapshot(db_url)["jobs"]) == len(scenario.jobs)


def test_requests_per_new_run_and_idle_resync_is_free(
    make_settings, gh: FakeGitHub, scenario: Scenario
) -> None:  # type: ignore[no-untyped-def]
    settings = github_settings(make_settings, gh)
    first = run_sync(settings)
    jobs_calls = gh.stats.by_route["actions/list-jobs-for-workflow-run"]
    assert jobs_calls == len(scenario.runs)  # one jobs call per run: 8 jobs fit one page
    # the newest page (all 60 runs fit), the repository and its workflows
    assert first.requests == len(scenario.runs) + 1 + 2
    assert first.requests / first.new_runs <= 1.05

    gh.reset_stats()
    idle = run_sync(settings)
    assert idle.error is None
    assert idle.mode == "incremental"
    assert gh.stats.points == 0, gh.stats.by_route
    assert idle.new_runs == 0
    assert idle.jobs_fetched_for == 0


def test_new_and_completed_runs_are_picked_up(
    make_settings, gh: FakeGitHub, scenario: Scenario, db_url: str
) -> None:  # type: ignore[no-untyped-def]
    settings = github_settings(make_settings, gh)
    run_sync(settings)
    unfinished = [r for r in scenario.runs.values() if r.status != "completed"]
    assert unfinished, "the scenario has runs in progress"
    workflow = next(iter(scenario.workflows.values()))
    for run in unfinished:
        scenario.complete_run(run.id, "failure")
    added = scenario.add_run(workflow, jobs=["build", ("test", "failure")], head_branch="main")
    scenario.rerun(added.id)
    scenario.complete_run(added.id, "success")
    gh.reset_stats()
    result = run_sync(settings)
    assert result.error is None
    assert result.new_runs == 1
    assert result.updated_runs >= len(unfinished)
    assert stored_stats(db_url, None) == expected_job_stats(scenario, REPO)
    assert stored_stats(db_url, "main") == expected_job_stats(scenario, REPO, branch="main")


def test_rerun_keeps_the_failed_attempt(make_settings, db_url: str) -> None:  # type: ignore[no-untyped-def]
    scenario = Scenario()
    repo = scenario.add_repo(REPO)
    wf = scenario.add_workflow(repo, "CI")
    run = scenario.add_run(wf, jobs=["lint", ("test", "failure")], head_branch="main")
    scenario.rerun(run.id)
    scenario.complete_run(run.id, "success")
    with FakeGitHub(scenario) as gh:
        assert run_sync(github_settings(make_settings, gh)).error is None
    stats = stored_stats(db_url, "main")
    assert stats["test"] == {"totalRuns": 2, "failures": 1, "successes": 1}
    assert stats["lint"] == {"totalRuns": 1, "failures": 0, "successes": 1}
    db = Database(db_url)
    with db.read() as s:
        attempts = s.execute(select(WorkflowRun.run_attempt, WorkflowRun.conclusion)).all()
        repo_row = repository.get_repo(s, REPO)
        assert repo_row is not None
        data = jobstats.ci_data(
            s, repo_id=repo_row.id, repo=REPO, branch=None, days=30, now=utcnow()
        )
    db.dispose()
    assert sorted(attempts) == [(1, "failure"), (2, "success")]
    assert data.jobStats["test"].flaky == 1
    assert data.jobStats["test"].recentFailures[0].runAttempt == 1


def test_search_cap_splits_windows(make_settings, db_url: str) -> None:  # type: ignore[no-untyped-def]
    scenario = Scenario.generate(seed=3, runs=120, days=2, in_progress=0)
    with FakeGitHub(scenario, search_cap=20) as gh:
        result = run_sync(github_settings(make_settings, gh, initial_sync_days=3), search_cap=20)
    assert result.error is None
    assert result.new_runs == 120
    assert stored_stats(db_url, None) == expected_job_stats(scenario, REPO)


def test_retries_after_secondary_limit_and_server_errors(
    make_settings, gh: FakeGitHub, scenario: Scenario, db_url: str
) -> None:  # type: ignore[no-untyped-def]
    gh.secondary_limit_next(retry_after=1, path_contains="/actions/runs")
    gh.fail_next(502, count=2, path_contains="/jobs")
    result = run_sync(github_settings(make_settings, gh))
    assert result.error is None
    assert stored_stats(db_url, None) == expected_job_stats(scenario, REPO)


def test_primary_limit_exhausted_keeps_data_and_says_when(
    make_settings, gh: FakeGitHub, db_url: str
) -> None:  # type: ignore[no-untyped-def]
    settings = github_settings(make_settings, gh)
    run_sync(settings)
    before = snapshot(db_url)
    scenario = gh.scenario
    scenario.add_run(next(iter(scenario.workflows.values())), jobs=["x"], head_branch="main")
    gh.set_rate_limit(0, reset_in_seconds=7200)
    result = run_sync(settings)
    assert result.error is not None
    assert "rate limit is used up until" in result.error
    assert snapshot(db_url) == before
    db = Database(db_url)
    with db.read() as s:
        rows = repository.status_rows(s)
    db.dispose()
    state = rows[0][1]
    assert state is not None
    assert state.last_error == result.error
    assert state.last_success_at is not None  # the earlier success is still there
    assert state.rate_remaining == 0


def test_bad_token_is_one_clear_error(make_settings, gh: FakeGitHub, db_url: str) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(
        github_token="wrong", github_api_url=gh.api_url, poll_interval_minutes=0
    )
    result = run_sync(settings)
    assert result.error == (
        "GitHub rejected the token (401 Bad credentials): check CIPULSE_GITHUB_TOKEN"
    )
    assert "wrong" not in result.error
    assert snapshot(db_url)["runs"] == []


def test_missing_repository(make_settings, gh: FakeGitHub) -> None:  # type: ignore[no-untyped-def]
    result = run_sync(github_settings(make_settings, gh), "octo-org/nope")
    assert result.error is not None
    assert "/repos/octo-org/nope" in result.error
    assert "404" in result.error


def test_unreachable_github(make_settings) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(
        github_token="t", github_api_url="http://127.0.0.1:9", poll_interval_minutes=0
    )

    async def go() -> SyncResult:
        db = Database(settings.resolved_database_url)
        coordinator = SyncCoordinator(db=db, settings=settings)
        coordinator.client()._sleep = _no_sleep  # type: ignore[method-assign]
        try:
            return await coordinator.sync(REPO)
        finally:
            await coordinator.aclose()
            db.dispose()

    result = asyncio.run(go())
    assert result.error == "cannot reach GitHub at http://127.0.0.1:9: ConnectError"


async def _no_sleep(_seconds: float) -> None:
    return None


def test_limit_takes_the_newest_runs(
    make_settings, gh: FakeGitHub, scenario: Scenario, db_url: str
) -> None:  # type: ignore[no-untyped-def]
    result = run_sync(github_settings(make_settings, gh), limit=10)
    assert result.new_runs == 10
    newest = sorted(scenario.runs.values(), key=lambda r: r.created_at, reverse=True)[:10]
    stored = {row[0] for row in snapshot(db_url)["runs"]}
    assert stored == {r.id for r in newest}


def test_reconcile_rereads_with_304s(make_settings, gh: FakeGitHub, scenario: Scenario) -> None:  # type: ignore[no-untyped-def]
    settings = github_settings(make_settings, gh)
    run_sync(settings)
    gh.reset_stats()
    result = run_sync(settings, days=20)
    assert result.mode == "reconcile"
    assert result.error is None
    assert gh.stats.points == 0
    assert result.not_modified == result.requests


def test_etags_survive_a_restart(make_settings, gh: FakeGitHub) -> None:  # type: ignore[no-untyped-def]
    """The ETag store is in the database: a new process starts with it."""
    settings = github_settings(make_settings, gh)
    run_sync(settings)
    gh.reset_stats()
    run_sync(settings)  # a fresh coordinator and client, as after a restart
    assert gh.stats.points == 0
    assert gh.stats.not_modified > 0


def test_ci_data_endpoint_fresh_fetch_then_cache(
    make_settings, gh: FakeGitHub, scenario: Scenario
) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from cipulse.app import create_app

    settings = github_settings(make_settings, gh, repos=[REPO])
    with TestClient(create_app(settings)) as client:
        first = client.get("/api/ci-data", params={"branch": "main", "days": 60})
        assert first.status_code == 200
        assert first.headers["X-Data-Source"] == "fresh-fetch"
        body = first.json()
        want = expected_job_stats(scenario, REPO, branch="main")
        got = {
            n: {k: s[k] for k in ("totalRuns", "failures", "successes")}
            for n, s in body["jobStats"].items()
        }
        assert got == want
        assert body["lastUpdated"] is not None
        second = client.get("/api/ci-data", params={"repo": REPO, "days": 60})
        assert second.headers["X-Data-Source"] == "cache"
        assert client.get("/api/ci-data", params={"repo": "a/b"}).status_code == 404
        recent = next(s for s in body["jobStats"].values() if s["recentFailures"])
        assert set(recent["recentFailures"][0]) >= {
            "runId", "runNumber", "runUrl", "createdAt", "jobUrl"
        }  # fmt: skip


def test_refresh_endpoint_and_status(make_settings, gh: FakeGitHub, scenario: Scenario) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from cipulse.app import create_app

    settings = github_settings(make_settings, gh, repos=[REPO], admin_token="adm")
    with TestClient(create_app(settings)) as client:
        assert client.post("/api/refresh").status_code == 401
        r = client.post("/api/refresh?limit=500", headers={"Authorization": "Bearer adm"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["success"] is True
        assert body["summary"]["newRuns"] == len(scenario.runs)
        # Files extracted from the new runs' artifacts during the refresh (the background
        # artifact worker may have stored more since).
        stored = client.get("/api/files", params={"limit": 1000}).json()
        assert 0 < body["summary"]["newFiles"] <= len(stored)
        assert body["totalRuns"] >= len(scenario.runs)
        assert {"lastUpdated", "timestamp", "message"} <= set(body)
        status = client.get("/api/sync/status").json()
        assert status[0]["repo"] == REPO
        assert status[0]["last_success_at"] is not None
        assert status[0]["rate_limit"]["remaining"] is not None
        assert status[0]["last_requests"] > 0


def test_concurrent_refreshes_join_one_sync(make_settings, db_url: str) -> None:  # type: ignore[no-untyped-def]
    scenario = Scenario.generate(seed=5, runs=40, days=5)
    with FakeGitHub(scenario, latency_ms=20) as gh:
        settings = github_settings(make_settings, gh)

        async def go() -> list[SyncResult]:
            db = Database(settings.resolved_database_url)
            coordinator = SyncCoordinator(db=db, settings=settings)
            try:
                return list(await asyncio.gather(coordinator.sync(REPO), coordinator.sync(REPO)))
            finally:
                await coordinator.aclose()
                db.dispose()

        first, second = asyncio.run(go())
        assert first is second
        assert gh.stats.by_route["actions/list-jobs-for-workflow-run"] == len(scenario.runs)


def test_refresh_without_token_or_repos(make_settings) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from cipulse.app import create_app

    with TestClient(create_app(make_settings())) as client:
        r = client.post("/api/refresh")
        assert r.status_code == 400
        assert r.json()["success"] is False
        assert "cipulse repo add" in r.json()["message"]
    with TestClient(create_app(make_settings(repos=[REPO]))) as client:
        r = client.post("/api/refresh")
        assert r.status_code == 400
        assert "no GitHub token" in r.json()["message"]


def test_downloads_follow_the_redirect_without_the_token(
    gh: FakeGitHub, scenario: Scenario, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from cipulse.github.client import GitHubClient

    job = next(j for j in scenario.jobs.values() if j.status == "completed")

    async def go() -> int:
        async with GitHubClient(token=gh.token, api_url=gh.api_url) as client:
            return await client.download(
                f"/repos/{REPO}/actions/jobs/{job.id}/logs", tmp_path / "log.txt"
            )

    size = asyncio.run(go())
    assert size > 0
    assert (tmp_path / "log.txt").read_bytes().startswith(b"\xef\xbb\xbf")
    downloads = [e for e in gh.stats.log if e.host == "download"]
    assert downloads
    assert not any(e.authorization for e in downloads)


def test_killed_sync_resumes_to_the_same_database(make_settings, db_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """SIGKILL `cipulse sync` half-way, run it again: the same rows as a sync never killed."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import wipe

    scenario = Scenario.generate(seed=11, runs=80, jobs_per_run=6, days=10)
    with FakeGitHub(scenario, latency_ms=10) as gh:
        env = {
            "PATH": "/usr/bin:/bin",
            "CIPULSE_DATABASE_URL": db_url,
            "CIPULSE_DATA_DIR": str(tmp_path),
            "CIPULSE_GITHUB_TOKEN": gh.token,
            "CIPULSE_GITHUB_API_URL": gh.api_url,
        }
        command = [sys.executable, "-m", "cipulse", "sync", REPO]
        errors = tmp_path / "killed.stderr"
        with errors.open("wb") as stderr:
            proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
            deadline = time.monotonic() + 60
            while gh.stats.by_route.get("actions/list-jobs-for-workflow-run", 0) < 30:
                assert proc.poll() is None, errors.read_text()
                assert time.monotonic() < deadline
                time.sleep(0.02)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        partial = snapshot(db_url)
        assert 0 < len(partial["jobs"]) < len(scenario.jobs)

        resumed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert resumed.returncode == 0, resumed.stderr
        assert "being synced by another" not in resumed.stderr
        after_resume = snapshot(db_url)

        wipe(db_url)
        clean = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert clean.returncode == 0, clean.stderr
        assert snapshot(db_url) == after_resume
    assert stored_stats(db_url, None) == expected_job_stats(scenario, REPO)
    assert stored_stats(db_url, "main") == expected_job_stats(scenario, REPO, branch="main")


def test_cli_messages(make_settings, db_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    scenario = Scenario.generate(seed=2, runs=20, days=5)
    with FakeGitHub(scenario) as gh:
        base = {
            "PATH": "/usr/bin:/bin",
            "CIPULSE_DATABASE_URL": db_url,
            "CIPULSE_DATA_DIR": str(tmp_path),
            "CIPULSE_GITHUB_API_URL": gh.api_url,
        }

        def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "cipulse", *args],
                env={**base, **env},
                capture_output=True,
                text=True,
                timeout=120,
            )

        r = cli("sync")
        assert r.returncode == 1
        assert "no GitHub token" in r.stderr
        r = cli("repo", "add", "octo-org/nope", CIPULSE_GITHUB_TOKEN=gh.token)
        assert r.returncode == 1
        assert "GitHub has no repository octo-org/nope" in r.stderr
        r = cli("repo", "add", "not a repo")
        assert r.returncode == 2
        assert "is not OWNER/NAME" in r.stderr
        r = cli("repo", "add", REPO, "--branch", "main", CIPULSE_GITHUB_TOKEN=gh.token)
        assert r.returncode == 0, r.stderr
        assert f"tracking {REPO} (main)" in r.stdout
        r = cli("sync", CIPULSE_GITHUB_TOKEN="bad-token")
        assert r.returncode == 1
        assert "GitHub rejected the token (401 Bad credentials)" in r.stderr
        assert "bad-token" not in r.stderr + r.stdout
        assert "Traceback" not in r.stderr
        r = cli("sync", CIPULSE_GITHUB_TOKEN=gh.token)
        assert r.returncode == 0, r.stderr
        main_runs = sum(1 for run in scenario.runs.values() if run.head_branch == "main")
        assert f"{REPO} (initial): {main_runs} new runs" in r.stdout
        assert "rate limit" in r.stdout
        r = cli("repo", "list")
        assert REPO in r.stdout
        assert "main" in r.stdout
        r = cli("repo", "remove", REPO)
        assert r.returncode == 0
        assert "stopped tracking" in r.stdout
        r = cli("repo", "remove", "octo-org/other")
        assert r.returncode == 1
        assert "not a known repository" in r.stderr


def test_serve_polls_on_schedule(make_settings, gh: FakeGitHub, scenario: Scenario) -> None:  # type: ignore[no-untyped-def]
    """Under `cipulse serve` the tracked repositories are polled without anyone asking."""
    import time

    from fastapi.testclient import TestClient

    from cipulse.app import create_app

    settings = make_settings(
        github_token=gh.token,
        github_api_url=gh.api_url,
        repos=[REPO],
        poll_interval_minutes=0.01,  # every 0.6 s
        reconcile_cron="",
    )
    with TestClient(create_app(settings)) as client:
        deadline = time.monotonic() + 30
        polls = 0
        while time.monotonic() < deadline:
            status = client.get("/api/sync/status").json()
            polls = gh.stats.by_route.get("actions/list-workflow-runs-for-repo", 0)
            if status and status[0]["last_success_at"] and polls >= 2:
                break
            time.sleep(0.1)
        assert status[0]["runs_stored"] == len(scenario.runs)
        assert polls >= 2  # the first sync, then at least one poll (a free 304)
        assert gh.stats.not_modified >= 1


def test_identical_requests_in_flight_are_merged(gh: FakeGitHub) -> None:
    from cipulse.github.client import GitHubClient

    slow = FakeGitHub(gh.scenario, latency_ms=100)
    with slow:

        async def go() -> list[Any]:
            async with GitHubClient(token=slow.token, api_url=slow.api_url, concurrency=4) as c:
                pages = await asyncio.gather(*(c.get(f"/repos/{REPO}") for _ in range(5)))
                return [p.data["full_name"] for p in pages]

        names = asyncio.run(go())
        assert names == [REPO] * 5
        assert slow.stats.by_route["repos/get"] == 1


def test_primary_limit_waits_for_the_reset_then_goes_on(
    make_settings, gh: FakeGitHub, scenario: Scenario, db_url: str
) -> None:  # type: ignore[no-untyped-def]
    gh.set_rate_limit(0, reset_in_seconds=2)
    started = time.monotonic()
    result = run_sync(github_settings(make_settings, gh))
    assert result.error is None
    assert time.monotonic() - started >= 1  # it waited for GitHub's reset time
    assert stored_stats(db_url, None) == expected_job_stats(scenario, REPO)
