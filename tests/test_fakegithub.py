"""The fake GitHub that the sync engine is tested against: its answers, its faults, its data.

Plain httpx over real HTTP on 127.0.0.1, so what is checked here is what a client sees.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import threading
import time
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.fakegithub import FakeGitHub, Scenario, expected_job_stats
from tests.fakegithub import schema as openapi
from tests.fakegithub.bodies import REST_FIXTURES
from tests.fakegithub.httputil import created_filter

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
REPO = "octo-org/hello-world"
RUNS = f"/repos/{REPO}/actions/runs"
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z ")


@pytest.fixture(scope="module")
def history() -> Scenario:
    """A generated history; tests that change data build their own scenario."""
    return Scenario.generate(7, runs=120, now=NOW)


@pytest.fixture
def gh(history: Scenario) -> Iterator[FakeGitHub]:
    with FakeGitHub(history) as fake:
        yield fake


def client(gh: FakeGitHub, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token or gh.token}"}
    return httpx.Client(base_url=gh.api_url, headers=headers, timeout=10)


def walk(http: httpx.Client, url: str, key: str) -> list[httpx.Response]:
    """Every page of a listing, following ``next`` links."""
    pages = [http.get(url)]
    while "next" in pages[-1].links:
        pages.append(http.get(pages[-1].links["next"]["url"]))
    assert all(page.status_code == 200 for page in pages)
    assert all(key in page.json() for page in pages)
    return pages


def rels(response: httpx.Response) -> list[str]:
    """The rel names of a Link header, in the order sent."""
    return re.findall(r'rel="(\w+)"', response.headers.get("link", ""))


# --------------------------------------------------------------------------------------------
# pagination


@pytest.mark.parametrize("form", ["repos", "repositories"])
def test_pagination_walks_every_run_once_in_both_url_forms(
    gh: FakeGitHub, history: Scenario, form: str
) -> None:
    repo = history.repo_named(REPO)
    assert repo is not None
    start = RUNS if form == "repos" else f"/repositories/{repo.id}/actions/runs"
    with client(gh) as http:
        pages = walk(http, f"{start}?per_page=7", "workflow_runs")
    seen = [run["id"] for page in pages for run in page.json()["workflow_runs"]]
    assert seen == [run.id for run in history.runs_of(repo.id)]  # each once, newest first
    assert len(pages) == -(-len(seen) // 7)
    assert {page.json()["total_count"] for page in pages} == {len(seen)}
    assert rels(pages[0]) == ["next", "last"]
    assert all(rels(page) == ["prev", "next", "last", "first"] for page in pages[1:-1])
    assert rels(pages[-1]) == ["prev", "first"]
    for page in pages:
        for link in page.links.values():
            assert link["url"].startswith(f"{gh.api_url}/repositories/{repo.id}/actions/runs?")
            assert "per_page=7" in link["url"]
    assert pages[0].links["last"]["url"].endswith(f"page={len(pages)}")


def test_link_carries_every_query_parameter_and_a_default_per_page(gh: FakeGitHub) -> None:
    with client(gh) as http:
        first = http.get(RUNS, params={"branch": "main", "exclude_pull_requests": "true"})
    assert len(first.json()["workflow_runs"]) == 30  # the default page size
    following = httpx.URL(first.links["next"]["url"])
    assert dict(following.params) == {
        "branch": "main",
        "exclude_pull_requests": "true",
        "per_page": "30",
        "page": "2",
    }


def test_a_listing_that_fits_one_page_has_no_link_header(gh: FakeGitHub) -> None:
    with client(gh) as http:
        answer = http.get(f"/repos/{REPO}/actions/workflows")
    assert answer.status_code == 200
    assert "link" not in answer.headers
    assert answer.json()["total_count"] == len(answer.json()["workflows"]) == 3


def test_page_size_is_capped_at_100() -> None:
    scenario = Scenario(now=NOW)
    wf = scenario.add_workflow(scenario.add_repo(REPO), "CI")
    for _ in range(120):
        scenario.add_run(wf, jobs=["build"])
    with FakeGitHub(scenario) as gh, client(gh) as http:
        answer = http.get(RUNS, params={"per_page": 500})
    assert len(answer.json()["workflow_runs"]) == 100
    assert "per_page=100" in answer.links["next"]["url"]


def test_filtered_listings_reach_only_the_first_search_cap_runs(history: Scenario) -> None:
    repo = history.repo_named(REPO)
    assert repo is not None
    on_main = [run.id for run in history.runs_of(repo.id) if run.head_branch == "main"]
    assert len(on_main) > 20
    with FakeGitHub(history, search_cap=10) as gh, client(gh) as http:
        pages = walk(http, f"{RUNS}?branch=main&per_page=4", "workflow_runs")
        beyond = http.get(RUNS, params={"branch": "main", "per_page": 4, "page": 4})
        unfiltered = walk(http, f"{RUNS}?per_page=100", "workflow_runs")
    assert [len(page.json()["workflow_runs"]) for page in pages] == [4, 4, 2]
    seen = [run["id"] for page in pages for run in page.json()["workflow_runs"]]
    assert seen == on_main[:10]
    assert {page.json()["total_count"] for page in pages} == {len(on_main)}  # the true count
    assert beyond.json() == {"total_count": len(on_main), "workflow_runs": []}
    reached = sum(len(page.json()["workflow_runs"]) for page in unfiltered)
    assert reached == len(history.runs_of(repo.id)) > 10  # no filter, no cap


# --------------------------------------------------------------------------------------------
# filters


@pytest.fixture(scope="module")
def dated() -> Iterator[FakeGitHub]:
    """Five runs, one per day at 10:00 UTC from 2026-11-01, alternating branches; served."""
    scenario = Scenario(now=NOW)
    wf = scenario.add_workflow(scenario.add_repo(REPO), "CI")
    for day in range(5):
        scenario.add_run(
            wf,
            jobs=["build"],
            created_at=datetime(2026, 11, 1 + day, 10, tzinfo=UTC),
            head_branch="main" if day % 2 == 0 else "dev",
            event="push" if day < 4 else "pull_request",
            head_sha=f"{day:040d}",
            conclusion="failure" if day == 1 else None,
        )
    with FakeGitHub(scenario) as gh:
        yield gh


@pytest.mark.parametrize(
    ("created", "days"),
    [
        ("2026-11-02", [2]),
        ("2026-11-02..2026-11-03", [2, 3]),
        ("2026-11-02T10:00:00Z..2026-11-03T10:00:00Z", [2, 3]),  # both ends included
        ("2026-11-02T10:00:01Z..2026-11-03T10:00:00Z", [3]),
        (">=2026-11-04", [4, 5]),
        (">2026-11-04", [5]),
        ("<=2026-11-02", [1, 2]),
        ("<2026-11-02", [1]),
        (">=2026-11-03T10:00:00Z", [3, 4, 5]),
        (">2026-11-03T10:00:00Z", [4, 5]),
        ("<2026-11-03T10:00:00+00:00", [1, 2]),
        ("2026-11-04..*", [4, 5]),
        ("*..2026-11-01", [1]),
    ],
)
def test_created_filter_follows_githubs_date_syntax(
    dated: FakeGitHub, created: str, days: list[int]
) -> None:
    with client(dated) as http:
        answer = http.get(RUNS, params={"created": created})
    assert answer.status_code == 200
    found = sorted(
        datetime.fromisoformat(r["created_at"]).day for r in answer.json()["workflow_runs"]
    )
    assert found == days


def test_other_run_filters(dated: FakeGitHub) -> None:
    def days(http: httpx.Client, **params: str) -> list[int]:
        runs = http.get(RUNS, params=params).json()["workflow_runs"]
        return sorted(datetime.fromisoformat(r["created_at"]).day for r in runs)

    with client(dated) as http:
        assert days(http, branch="dev") == [2, 4]
        assert days(http, status="failure") == [2]  # a conclusion...
        assert days(http, status="completed") == [1, 2, 3, 4, 5]  # ...or a status
        assert days(http, event="pull_request") == [5]
        assert days(http, head_sha=f"{2:040d}") == [3]
        assert days(http, actor="octocat") == [1, 2, 3, 4, 5]
        assert http.get(RUNS, params={"created": "last week"}).status_code == 422


def test_created_filter_rejects_what_it_cannot_read() -> None:
    with pytest.raises(ValueError):
        created_filter(">=yesterday")
    assert created_filter("2026-11-01T00:00:00+01:00")(datetime(2026, 10, 31, 23, tzinfo=UTC))


def test_pull_requests_are_listed_unless_excluded(dated: FakeGitHub) -> None:
    with client(dated) as http:
        pr_run = http.get(RUNS, params={"event": "pull_request"}).json()["workflow_runs"][0]
        excluded = http.get(
            RUNS, params={"event": "pull_request", "exclude_pull_requests": "true"}
        ).json()["workflow_runs"][0]
    assert pr_run["pull_requests"][0]["head"]["ref"] == "main"
    assert excluded["pull_requests"] == []


# --------------------------------------------------------------------------------------------
# attempts and jobs


@pytest.fixture
def rerun_scenario() -> Scenario:
    """One run: attempt 1 has build (success) and test (failure); "Re-run failed jobs" makes
    attempt 2, where test passes."""
    scenario = Scenario(now=NOW)
    wf = scenario.add_workflow(scenario.add_repo(REPO), "CI")
    run = scenario.add_run(wf, jobs=[("build", "success"), ("test", "failure")])
    scenario.rerun(run.id, failed_only=True)
    scenario.complete_run(run.id, "success")
    return scenario


def test_jobs_filter_latest_and_all(rerun_scenario: Scenario) -> None:
    run = next(iter(rerun_scenario.runs.values()))
    base = f"{RUNS}/{run.id}"
    with FakeGitHub(rerun_scenario) as gh, client(gh) as http:
        latest = http.get(f"{base}/jobs").json()
        explicit_latest = http.get(f"{base}/jobs", params={"filter": "latest"}).json()
        every = http.get(f"{base}/jobs", params={"filter": "all"}).json()
        first = http.get(f"{base}/attempts/1/jobs").json()
        second = http.get(f"{base}/attempts/2/jobs").json()
        assert http.get(f"{base}/jobs", params={"filter": "newest"}).status_code == 422

    def summary(body: dict[str, Any]) -> list[tuple[str, int, str]]:
        return [(j["name"], j["run_attempt"], j["conclusion"]) for j in body["jobs"]]

    assert latest == explicit_latest
    assert summary(latest) == [("build", 1, "success"), ("test", 2, "success")]
    assert latest["total_count"] == 2
    assert summary(every) == [
        ("build", 1, "success"),
        ("test", 1, "failure"),
        ("test", 2, "success"),
    ]
    assert every["total_count"] == 3
    assert summary(first) == [("build", 1, "success"), ("test", 1, "failure")]
    assert summary(second) == [("test", 2, "success")]  # only what ran again
    assert len({job["id"] for job in every["jobs"]}) == 3


def test_run_and_its_attempts(rerun_scenario: Scenario) -> None:
    run = next(iter(rerun_scenario.runs.values()))
    base = f"{RUNS}/{run.id}"
    with FakeGitHub(rerun_scenario) as gh, client(gh) as http:
        latest = http.get(base).json()
        first = http.get(f"{base}/attempts/1").json()
        missing = http.get(f"{base}/attempts/3")
    assert (latest["run_attempt"], latest["conclusion"]) == (2, "success")
    assert latest["previous_attempt_url"] == f"{gh.api_url}{base}/attempts/1"
    assert (first["run_attempt"], first["conclusion"], first["previous_attempt_url"]) == (
        1,
        "failure",
        None,
    )
    assert first["created_at"] == latest["created_at"]
    assert first["run_started_at"] < latest["run_started_at"]
    assert missing.status_code == 404


def test_rerun_of_all_jobs_creates_every_job_again() -> None:
    scenario = Scenario(now=NOW)
    wf = scenario.add_workflow(scenario.add_repo(REPO), "CI")
    run = scenario.add_run(wf, jobs=[("build", "success"), ("test", "failure")])
    attempt = scenario.rerun(run.id, failed_only=False)
    assert [job.name for job in attempt.jobs] == ["build", "test"]
    assert run.status == "queued" and run.run_attempt == 2
    scenario.start_run(run.id)
    assert {job.status for job in attempt.jobs} == {"in_progress"}
    scenario.complete_run(run.id, "failure", job_conclusions={"build": "success"})
    assert [(j.name, j.conclusion) for j in run.latest_jobs()] == [
        ("build", "success"),
        ("test", "failure"),
    ]
    assert all(step.status == "completed" for job in attempt.jobs for step in job.steps)
    with pytest.raises(ValueError, match="completed"):
        scenario.complete_run(run.id, "success")
    green = scenario.add_run(wf, jobs=["build"])
    with pytest.raises(ValueError, match="no failed job"):
        scenario.rerun(green.id)


def test_a_run_moves_queued_in_progress_completed_while_served() -> None:
    scenario = Scenario(now=NOW)
    wf = scenario.add_workflow(scenario.add_repo(REPO), "CI")
    run = scenario.add_run(wf, jobs=["build", "test"], status="queued")
    url = f"{RUNS}/{run.id}"
    with FakeGitHub(scenario) as gh, client(gh) as http:
        queued = http.get(url).json()
        queued_jobs = http.get(f"{url}/jobs").json()["jobs"]
        scenario.start_run(run.id)
        running = http.get(url).json()
        scenario.complete_run(run.id, "success")
        done = http.get(url).json()
        done_jobs = http.get(f"{url}/jobs").json()["jobs"]
    assert [queued["status"], running["status"], done["status"]] == [
        "queued",
        "in_progress",
        "completed",
    ]
    assert queued["updated_at"] < running["updated_at"] < done["updated_at"]
    assert {(j["status"], j["runner_name"], len(j["steps"])) for j in queued_jobs} == {
        ("queued", None, 0)
    }
    assert {j["conclusion"] for j in done_jobs} == {"success"}
    assert all(3 <= len(j["steps"]) <= 6 for j in done_jobs)


# --------------------------------------------------------------------------------------------
# ETag, headers, rate limits, auth


def test_every_api_answer_has_githubs_headers(gh: FakeGitHub) -> None:
    with client(gh) as http:
        answers = [http.get(RUNS), http.get(f"{RUNS}/1"), http.get("/rate_limit")]
    for answer in answers:
        assert answer.headers["content-type"] == "application/json; charset=utf-8"
        assert answer.headers["x-github-api-version-selected"] == "2022-11-28"
        assert answer.headers["x-ratelimit-resource"] == "core"
        for name in ("limit", "remaining", "used", "reset"):
            assert answer.headers[f"x-ratelimit-{name}"].isdigit()
    assert re.fullmatch(r'W/"[0-9a-f]{64}"', answers[0].headers["etag"])
    assert answers[1].json()["message"] == "Not Found"


def test_etag_answers_304_without_costing_a_point() -> None:
    scenario = Scenario.generate(3, runs=20, now=NOW)
    running = next(run for run in scenario.runs.values() if run.status == "in_progress")
    with FakeGitHub(scenario) as gh, client(gh) as http:
        first = http.get(RUNS)
        etag = first.headers["etag"]
        again = http.get(RUNS, headers={"If-None-Match": etag})
        strong = http.get(RUNS, headers={"If-None-Match": etag.removeprefix("W/")})
        assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", etag)
        assert strong.status_code == 304
        assert again.headers["x-ratelimit-remaining"] == first.headers["x-ratelimit-remaining"]
        assert (gh.stats.points, gh.stats.not_modified) == (1, 2)
        scenario.complete_run(running.id, "success")
        changed = http.get(RUNS, headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    assert (
        int(changed.headers["x-ratelimit-remaining"])
        == int(first.headers["x-ratelimit-remaining"]) - 1
    )


def test_primary_limit_exhausts_and_refills(gh: FakeGitHub) -> None:
    with client(gh) as http:
        gh.set_rate_limit(2, reset_in_seconds=1)
        ok = [http.get(RUNS) for _ in range(2)]
        blocked = http.get(RUNS)
        free = http.get("/rate_limit")
        assert [a.headers["x-ratelimit-remaining"] for a in ok] == ["1", "0"]
        assert blocked.status_code == 403
        assert blocked.headers["x-ratelimit-remaining"] == "0"
        assert blocked.json()["message"].startswith("API rate limit exceeded for user ID 1.")
        assert free.status_code == 200 and free.json()["rate"]["remaining"] == 0
        reset = int(blocked.headers["x-ratelimit-reset"])
        time.sleep(max(0.0, reset - time.time()) + 0.05)
        after = http.get(RUNS)
    assert after.status_code == 200
    assert after.headers["x-ratelimit-remaining"] == "4999"
    assert int(after.headers["x-ratelimit-reset"]) > reset


def test_rate_limit_endpoint_is_free(gh: FakeGitHub) -> None:
    with client(gh) as http:
        bodies = [http.get("/rate_limit").json() for _ in range(3)]
    assert [b["resources"]["core"]["remaining"] for b in bodies] == [5000] * 3
    assert gh.stats.points == 0 and gh.rate_limit_remaining == 5000


def test_authentication(gh: FakeGitHub) -> None:
    with client(gh, token="ghp_wrong") as wrong:
        refused = wrong.get(RUNS)
    with httpx.Client(base_url=gh.api_url, headers={"Authorization": f"token {gh.token}"}) as http:
        old_style = http.get(RUNS)
    anonymous = httpx.get(f"{gh.api_url}{RUNS}")
    assert refused.status_code == 401
    assert refused.json()["message"] == "Bad credentials"
    assert "documentation_url" in refused.json()
    assert old_style.status_code == 200 and old_style.headers["x-ratelimit-limit"] == "5000"
    assert anonymous.status_code == 200  # allowed, on the separate limit of 60 an hour
    assert anonymous.headers["x-ratelimit-limit"] == "60"
    assert anonymous.headers["x-ratelimit-remaining"] == "59"
    assert (gh.stats.auth_failures, gh.stats.points, gh.stats.unauthenticated_points) == (1, 1, 1)


def test_unknown_things_are_404() -> None:
    scenario = Scenario(now=NOW)
    scenario.add_run(scenario.add_workflow(scenario.add_repo(REPO), "CI"), jobs=["build"])
    foreign = scenario.add_run(
        scenario.add_workflow(scenario.add_repo("someone/else"), "CI"), jobs=["build"]
    )
    with FakeGitHub(scenario) as gh, client(gh) as http:
        for path in [
            "/repos/octo-org/nope",
            "/repositories/1",
            f"{RUNS}/1",
            f"{RUNS}/{foreign.id}",  # a run of another repository
            f"/repos/{REPO}/actions/jobs/1",
            f"/repos/{REPO}/actions/artifacts/1",
            f"/repos/{REPO}/actions/workflows/nope.yml/runs",
            "/nothing/here",
        ]:
            answer = http.get(path)
            assert answer.status_code == 404, path
            assert answer.json()["message"] == "Not Found"
        assert http.get(f"/repos/someone/else/actions/runs/{foreign.id}").status_code == 200
    assert gh.stats.by_route["unknown"] == 1


def test_repository_is_served_by_name_and_by_id(gh: FakeGitHub, history: Scenario) -> None:
    repo = history.repo_named(REPO)
    assert repo is not None
    with client(gh) as http:
        by_name = http.get("/repos/Octo-Org/Hello-World").json()  # names are case-insensitive
        by_id = http.get(f"/repositories/{repo.id}").json()
    assert by_name == by_id
    assert (by_name["id"], by_name["full_name"], by_name["default_branch"]) == (
        repo.id,
        REPO,
        "main",
    )


# --------------------------------------------------------------------------------------------
# logs, artifacts and the download host


def test_job_log_redirects_to_the_download_host_and_needs_no_auth(
    gh: FakeGitHub, history: Scenario
) -> None:
    job = next(j for j in history.jobs.values() if j.conclusion == "failure")
    with client(gh) as http:
        redirect = http.get(f"/repos/{REPO}/actions/jobs/{job.id}/logs")
        followed = http.get(f"/repos/{REPO}/actions/jobs/{job.id}/logs", follow_redirects=True)
        with_token = http.get(redirect.headers["location"])  # a client that keeps its token
    location = httpx.URL(redirect.headers["location"])
    assert redirect.status_code == 302 and redirect.content == b""
    assert f"{location.scheme}://{location.host}:{location.port}" == gh.download_url != gh.api_url
    assert {"sig", "expires"} <= set(location.params)
    assert followed.status_code == 200
    assert followed.headers["content-type"] == "text/plain; charset=utf-8"
    text = followed.text
    assert text.startswith("\ufeff")
    assert all(LOG_LINE.match(line) for line in text.removeprefix("\ufeff").splitlines())
    assert "##[error]Process completed with exit code 1." in text
    assert with_token.status_code == 400
    downloads = [entry for entry in gh.stats.log if entry.host == "download"]
    assert [(e.status, e.authorization) for e in downloads] == [(200, False), (400, True)]
    assert gh.stats.by_route["download/job-logs"] == 2


def test_download_urls_are_signed(gh: FakeGitHub, history: Scenario) -> None:
    job = next(j for j in history.jobs.values() if j.status == "completed")
    running = next(j for j in history.jobs.values() if j.status == "in_progress")
    with client(gh) as http:
        location = httpx.URL(
            http.get(f"/repos/{REPO}/actions/jobs/{job.id}/logs").headers["location"]
        )
        tampered = httpx.get(location.copy_set_param("sig", "0" * 64))
        other_job = httpx.get(str(location).replace(str(job.id), str(running.id)))
        not_yet = http.get(f"/repos/{REPO}/actions/jobs/{running.id}/logs")
    assert tampered.status_code == 403
    assert other_job.status_code == 403
    assert not_yet.status_code == 404  # a running job has no archived log yet


def test_signed_urls_expire(history: Scenario) -> None:
    job = next(j for j in history.jobs.values() if j.status == "completed")
    with FakeGitHub(history, signed_url_ttl=-1) as gh, client(gh) as http:
        stale = http.get(f"/repos/{REPO}/actions/jobs/{job.id}/logs", follow_redirects=True)
    assert stale.status_code == 403


def test_artifacts_list_download_and_expire() -> None:
    scenario = Scenario(now=NOW)
    wf = scenario.add_workflow(scenario.add_repo(REPO), "CI")
    run = scenario.add_run(wf, jobs=["build"])
    report = scenario.add_artifact(run.id, "report ünï")
    scenario.add_artifact(run.id, "coverage")
    with FakeGitHub(scenario) as gh, client(gh) as http:
        listing = http.get(f"{RUNS}/{run.id}/artifacts").json()
        named = http.get(f"{RUNS}/{run.id}/artifacts", params={"name": "coverage"}).json()
        single = http.get(f"/repos/{REPO}/actions/artifacts/{report.id}").json()
        repo_wide = http.get(f"/repos/{REPO}/actions/artifacts").json()
        download = http.get(
            f"/repos/{REPO}/actions/artifacts/{report.id}/zip", follow_redirects=True
        )
        gh.expire_artifact(report.id)
        gone = http.get(f"/repos/{REPO}/actions/artifacts/{report.id}/zip")
        listed_expired = http.get(f"/repos/{REPO}/actions/artifacts/{report.id}").json()
    assert [a["name"] for a in listing["artifacts"]] == ["report ünï", "coverage"]
    assert [a["name"] for a in named["artifacts"]] == ["coverage"]
    assert (
        single["archive_download_url"]
        == f"{gh.api_url}/repos/{REPO}/actions/artifacts/{report.id}/zip"
    )
    assert repo_wide["total_count"] == 2
    assert download.status_code == 200 and download.headers["content-type"] == "application/zip"
    assert download.content == report.zip_bytes
    assert zipfile.ZipFile(io.BytesIO(download.content)).namelist() == ["report ünï.txt"]
    assert gone.status_code == 410 and gone.json()["message"] == "Artifact has expired"
    assert listed_expired["expired"] is True


# --------------------------------------------------------------------------------------------
# faults and latency


def test_fail_next_answers_canned_failures(gh: FakeGitHub, history: Scenario) -> None:
    run = next(r for r in history.runs.values() if r.status == "completed" and r.all_jobs())
    gh.fail_next(503, count=2, path_contains="/jobs")
    gh.fail_next(502, body="<html>Unicorn!</html>")
    gh.secondary_limit_next(retry_after=1)
    gh.fail_next(429, headers={"retry-after": "1"})
    gh.fail_next(500, host="download")
    with client(gh) as http:
        jobs = [http.get(f"{RUNS}/{run.id}/jobs") for _ in range(2)]
        bad_gateway = http.get(RUNS)
        secondary = http.get(RUNS)
        too_many = http.get(RUNS)
        recovered = [http.get(RUNS), http.get(f"{RUNS}/{run.id}/jobs")]
        job_id = recovered[1].json()["jobs"][0]["id"]
        log_fault = http.get(f"/repos/{REPO}/actions/jobs/{job_id}/logs", follow_redirects=True)
    assert [j.status_code for j in jobs] == [503, 503]
    assert jobs[0].json()["message"] == "Service Unavailable"
    assert bad_gateway.status_code == 502 and bad_gateway.text == "<html>Unicorn!</html>"
    assert secondary.status_code == 403 and secondary.headers["retry-after"] == "1"
    assert "secondary rate limit" in secondary.json()["message"]
    assert secondary.headers["x-ratelimit-remaining"] != "0"
    assert too_many.status_code == 429 and "secondary rate limit" in too_many.json()["message"]
    assert [r.status_code for r in recovered] == [200, 200]
    assert log_fault.status_code == 500
    assert gh.stats.points == 3  # the two that recovered and the log redirect; faults are free


def test_latency_overlaps_concurrent_requests(history: Scenario) -> None:
    async def fetch_all(gh: FakeGitHub) -> float:
        headers = {"Authorization": f"Bearer {gh.token}"}
        async with httpx.AsyncClient(base_url=gh.api_url, headers=headers) as http:
            started = time.perf_counter()
            answers = await asyncio.gather(*(http.get("/rate_limit") for _ in range(8)))
            assert all(a.status_code == 200 for a in answers)
            return time.perf_counter() - started

    with FakeGitHub(history, latency_ms=200) as gh:
        elapsed = asyncio.run(fetch_all(gh))
    assert 0.2 <= elapsed < 0.2 * 8 / 2


def test_reset_stats(gh: FakeGitHub) -> None:
    with client(gh) as http:
        http.get(RUNS)
    assert gh.stats.requests == 1 and gh.stats.by_route == {
        "actions/list-workflow-runs-for-repo": 1
    }
    gh.reset_stats()
    assert (gh.stats.requests, gh.stats.points, gh.stats.log) == (0, 0, [])


def test_mutating_the_scenario_while_serving_is_safe() -> None:
    scenario = Scenario(now=NOW)
    wf = scenario.add_workflow(scenario.add_repo(REPO), "CI")

    async def hammer(gh: FakeGitHub) -> list[int]:
        headers = {"Authorization": f"Bearer {gh.token}"}
        async with httpx.AsyncClient(base_url=gh.api_url, headers=headers) as http:
            answers = await asyncio.gather(
                *(http.get(RUNS, params={"per_page": 100}) for _ in range(30))
            )
        return [a.status_code for a in answers]

    with FakeGitHub(scenario) as gh:
        writer = threading.Thread(
            target=lambda: [scenario.add_run(wf, jobs=["a", "b"]) for _ in range(200)]
        )
        writer.start()
        statuses = asyncio.run(hammer(gh))
        writer.join()
    assert set(statuses) == {200}
    assert gh.errors == []


# --------------------------------------------------------------------------------------------
# the generated history and the reference counts


def test_generate_is_deterministic_and_varied() -> None:
    one = Scenario.generate(11, runs=150, now=NOW)
    same = Scenario.generate(11, runs=150, now=NOW)
    other = Scenario.generate(12, runs=150, now=NOW)

    def fingerprint(s: Scenario) -> list[Any]:
        return [
            (
                r.id,
                r.head_sha,
                r.status,
                r.conclusion,
                [(j.id, j.name, j.conclusion) for j in r.all_jobs()],
            )
            for r in s.runs.values()
        ]

    assert fingerprint(one) == fingerprint(same)
    assert fingerprint(one) != fingerprint(other)
    runs = list(one.runs.values())
    jobs = list(one.jobs.values())
    assert len(runs) == 150
    assert {len(r.attempts) for r in runs} >= {1, 2}
    assert {r.conclusion for r in runs} >= {"success", "failure"}
    assert {j.conclusion for j in jobs} >= {"success", "failure", "skipped"}
    assert {"Тесты 🚀", "ビルド", "test (ubuntu-latest, 3.12)", "build / compile"} <= {
        j.name for j in jobs
    }
    assert {j.runner_group_name for j in jobs} >= {"GitHub Actions", "Default"}
    assert all(
        3 <= len(j.steps) <= 6
        for j in jobs
        if j.status == "completed" and j.conclusion != "skipped"
    )
    assert min(j.id for j in jobs) > 2**32 and min(r.id for r in runs) > 2**31
    newest = one.runs_of(runs[0].repo_id)[:3]
    assert [r.status for r in newest] == ["queued", "in_progress", "in_progress"]
    assert all(r.created_at >= NOW - timedelta(days=30) for r in runs)
    assert max(r.updated_at for r in runs) <= NOW
    flaky = [r for r in runs if len(r.attempts) > 1 and r.conclusion == "success"]
    assert flaky and all(r.attempts[0].conclusion in ("failure", "cancelled") for r in flaky)
    no_unicode = Scenario.generate(11, runs=150, now=NOW, unicode=False)
    assert all(name.isascii() for name in {j.name for j in no_unicode.jobs.values()})


def test_expected_job_stats_on_a_hand_counted_scenario() -> None:
    scenario = Scenario(now=NOW)
    wf = scenario.add_workflow(scenario.add_repo(REPO), "CI")
    day = timedelta(days=1)
    # main, 1 day ago: build ok, test failed, lint cancelled; re-run: test and lint pass
    first = scenario.add_run(
        wf,
        jobs=[("build", "success"), ("test", "failure"), ("lint", "cancelled")],
        created_at=NOW - day,
    )
    scenario.rerun(first.id)
    scenario.complete_run(first.id, "success")
    # dev, 2 days ago: build failed, test timed out
    scenario.add_run(
        wf,
        jobs=[("build", "failure"), ("test", "timed_out")],
        head_branch="dev",
        created_at=NOW - 2 * day,
    )
    # main, 3 days ago: build neutral, test skipped, lint needs approval, deploy failed to start
    scenario.add_run(
        wf,
        jobs=[
            ("build", "neutral"),
            ("test", "skipped"),
            ("lint", "action_required"),
            ("deploy", "startup_failure"),
        ],
        created_at=NOW - 3 * day,
    )
    # main, running now: build still running (not counted), test already passed (counted)
    scenario.add_run(
        wf, jobs=[("build", None), ("test", "success")], status="in_progress", created_at=NOW
    )
    # main, 10 days ago: test stale (not counted), build passed
    scenario.add_run(wf, jobs=[("build", "success"), ("test", "stale")], created_at=NOW - 10 * day)

    def stats(total: int, failures: int) -> dict[str, int]:
        return {"totalRuns": total, "failures": failures, "successes": total - failures}

    assert expected_job_stats(scenario, REPO) == {
        "build": stats(4, 1),  # success, failure, neutral, success (10 days ago)
        "test": stats(4, 2),  # failure + success (two attempts), timed_out, success (running run)
        "lint": stats(1, 0),  # cancelled and action_required are not counted; the re-run passed
        "deploy": stats(1, 1),  # startup_failure
    }
    assert expected_job_stats(scenario, REPO, branch="main") == {
        "build": stats(3, 0),
        "test": stats(3, 1),
        "lint": stats(1, 0),
        "deploy": stats(1, 1),
    }
    assert expected_job_stats(scenario, REPO, branch="main", since=NOW - 2 * day) == {
        "build": stats(1, 0),
        "test": stats(3, 1),
        "lint": stats(1, 0),
    }
    assert expected_job_stats(scenario, "octo-org/HELLO-world", branch="nope") == {}


# --------------------------------------------------------------------------------------------
# schema: what the fake sends, and what GitHub really sent


def test_generated_answers_validate_strictly_against_the_openapi_description(
    gh: FakeGitHub, history: Scenario
) -> None:
    repo = history.repo_named(REPO)
    assert repo is not None
    runs = history.runs_of(repo.id)
    interesting = [
        next(r for r in runs if r.status == "queued"),
        next(r for r in runs if r.status == "in_progress"),
        next(r for r in runs if len(r.attempts) > 1),
        next(r for r in runs if r.event == "pull_request"),
        next(r for r in runs if r.conclusion in ("startup_failure", "action_required")),
        next(r for r in runs if any(j.conclusion == "skipped" for j in r.all_jobs())),
    ]
    with_artifacts = next(r for r in runs if history.artifacts_of(r.id))
    checks: list[tuple[str, dict[str, Any]]] = []
    with client(gh) as http:

        def check(url: str, operation: str) -> dict[str, Any]:
            answer = http.get(url)
            assert answer.status_code == 200, url
            body: dict[str, Any] = answer.json()
            checks.append((operation, body))
            return body

        for page in walk(http, f"{RUNS}?per_page=100", "workflow_runs"):
            checks.append(("/repos/{owner}/{repo}/actions/runs", page.json()))
        for run in interesting:
            check(f"{RUNS}/{run.id}", "/repos/{owner}/{repo}/actions/runs/{run_id}")
            check(
                f"{RUNS}/{run.id}/attempts/1",
                "/repos/{owner}/{repo}/actions/runs/{run_id}/attempts/{attempt_number}",
            )
            jobs = check(
                f"{RUNS}/{run.id}/jobs?filter=all",
                "/repos/{owner}/{repo}/actions/runs/{run_id}/jobs",
            )
            check(
                f"{RUNS}/{run.id}/attempts/1/jobs",
                "/repos/{owner}/{repo}/actions/runs/{run_id}/attempts/{attempt_number}/jobs",
            )
            for job in jobs["jobs"][:2]:
                check(
                    f"/repos/{REPO}/actions/jobs/{job['id']}",
                    "/repos/{owner}/{repo}/actions/jobs/{job_id}",
                )
        check(f"/repos/{REPO}/actions/workflows", "/repos/{owner}/{repo}/actions/workflows")
        check(
            f"{RUNS}/{with_artifacts.id}/artifacts",
            "/repos/{owner}/{repo}/actions/runs/{run_id}/artifacts",
        )
        check("/rate_limit", "/rate_limit")
        repository = http.get(f"/repos/{REPO}").json()
    failures = {op: openapi.errors(body, path=op) for op, body in checks}
    assert {op: errs for op, errs in failures.items() if errs} == {}
    # No repository operation is in the subset; the installation list's item schema is the closest.
    assert openapi.errors(repository, component="repository") == []


@pytest.mark.parametrize("name", sorted(openapi.RECORDED_BODIES))
def test_recorded_bodies_pass_the_relaxed_check(name: str) -> None:
    where, needed = openapi.RECORDED_BODIES[name]
    body = json.loads((REST_FIXTURES / name).read_text())
    assert openapi.errors(body, relaxed=True, **where) == []
    assert openapi.relaxations_needed(body, **where) == needed
    assert bool(openapi.errors(body, **where)) == bool(needed)


def test_every_recorded_body_is_accounted_for() -> None:
    on_disk = {
        str(path.relative_to(REST_FIXTURES))
        for folder in ("octokit-rb-decoded", "openapi-examples", "pytorch-test-infra")
        for path in (REST_FIXTURES / folder).glob("*.json")
        if not path.name.endswith(".meta.json") and path.name != "_index.json"
    }
    assert on_disk == set(openapi.RECORDED_BODIES) | openapi.HAND_TRIMMED_BODIES
    every_needed = set().union(*(needed for _, needed in openapi.RECORDED_BODIES.values()))
    assert every_needed == set(openapi.RECORDED_DATA_RELAXATIONS)  # no unused relaxation


def test_the_check_is_not_vacuous() -> None:
    job = json.loads((REST_FIXTURES / "openapi-examples/job.json").read_text())
    job |= {"created_at": "2020-01-20T17:42:40Z"}
    assert openapi.errors(job, **openapi.JOB) == []
    assert openapi.errors({**job, "completed_at": None}, **openapi.JOB) == []  # nullable
    stale = {**job, "conclusion": "stale"}  # a check-run conclusion, not a job's
    assert openapi.errors(stale, relaxed=True, **openapi.JOB)
    assert openapi.errors({**job, "started_at": "yesterday"}, relaxed=True, **openapi.JOB)
    assert openapi.errors({**job, "id": "1"}, relaxed=True, **openapi.JOB)
    del job["name"]
    assert openapi.errors(job, relaxed=True, **openapi.JOB) == [
        "<root>: 'name' is a required property"
    ]
