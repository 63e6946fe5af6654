"""Design C's navigation (orgs → repository → workflow → run → job) on SQLite and PostgreSQL,
with data synced from the fake GitHub over real HTTP and workflow files served by its contents
API from real workflow files (shared/fixtures/real/workflows)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from cipulse.app import create_app
from cipulse.db import Database
from cipulse.explore import parse
from cipulse.models import Installation, Repository, utcnow
from tests.fakegithub import FakeGitHub, Scenario
from tests.fakegithub.contents import real_workflow
from tests.test_sync import github_settings, run_sync

REPO = "octo-org/hello-world"
NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
REMIX_JOBS = ["⬣ ESLint", "ʦ TypeScript", "⚡ Vitest", "⚫️ Cypress"]
CICD_JOBS = [
    ("Deploy to GitHub", "success"),
    ("Configure Deployment", "success"),
    ("Publish / Publish Test Results", "success"),
    ("Check python/requirements.txt", "success"),
    ("Test Ubuntu / Test (python-3.12, ubuntu-latest)", "success"),
    ("Test Windows / Test (python-3.11, windows-latest)", "failure"),
]


@dataclass
class World:
    scenario: Scenario
    gh: FakeGitHub
    client: TestClient
    deploy_wf: int
    cicd_wf: int
    deploy_run: int  # its file is served: ordered by needs
    nofile_run: int  # same workflow, a commit whose file GitHub does not have
    rerun_run: int  # ci-cd: failed, re-run, passed
    db_url: str


def _scenario() -> Scenario:
    s = Scenario(now=NOW - timedelta(days=2))
    repo = s.add_repo(REPO)
    s.add_repo("octo-org/other")
    deploy = s.add_workflow(repo, "🚀 Deploy", path=".github/workflows/deploy.yml")
    cicd = s.add_workflow(repo, "CI/CD", path=".github/workflows/ci-cd.yml")
    # Deploy is listed (so created and started) first: start times alone put it first.
    jobs = ["🚀 Deploy", *REMIX_JOBS]
    s.add_run(deploy, jobs=jobs, head_sha="a" * 40)
    for n in range(6):
        s.add_run(deploy, jobs=jobs, head_sha=f"{n:040x}", head_branch="main" if n % 2 else "dev")
    s.add_run(deploy, jobs=[*REMIX_JOBS, ("🚀 Deploy", "failure")], head_sha="b" * 40)
    run = s.add_run(cicd, jobs=CICD_JOBS, head_sha="c" * 40)
    s.rerun(run.id)
    s.start_run(run.id)
    s.complete_run(run.id, "success")
    s.add_installation("octo-org", repos=[REPO], id=4242)
    return s


@pytest.fixture
def world(make_settings, db_url: str) -> Iterator[World]:  # type: ignore[no-untyped-def]
    scenario = _scenario()
    with FakeGitHub(scenario) as gh:
        gh.files.put(
            REPO,
            ".github/workflows/deploy.yml",
            real_workflow("remix-indie-stack.deploy.yml"),
            ref="a" * 40,
        )
        for n in range(6):
            gh.files.put(
                REPO,
                ".github/workflows/deploy.yml",
                real_workflow("remix-indie-stack.deploy.yml"),
                ref=f"{n:040x}",
            )
        gh.files.put(
            REPO,
            ".github/workflows/ci-cd.yml",
            real_workflow("enricomi-publish-unit-test-result.ci-cd.yml"),
        )
        settings = github_settings(make_settings, gh)
        assert run_sync(settings).error is None
        db = Database(db_url)
        with db.write() as uow:  # the App installation the webhook would have stored
            uow.session.add(
                Installation(github_id=4242, account_login="octo-org", account_type="Organization")
            )
            repo = uow.session.scalar(select(Repository).where(Repository.full_name == REPO))
            assert repo is not None
            repo.installation_id = 4242
        db.dispose()
        runs = {(r.workflow_id, r.head_sha): r.id for r in scenario.runs.values()}
        wfs = {w.name: w.id for w in scenario.workflows.values()}
        with TestClient(create_app(settings)) as client:
            yield World(
                scenario=scenario,
                gh=gh,
                client=client,
                deploy_wf=wfs["🚀 Deploy"],
                cicd_wf=wfs["CI/CD"],
                deploy_run=runs[(wfs["🚀 Deploy"], "a" * 40)],
                nofile_run=runs[(wfs["🚀 Deploy"], "b" * 40)],
                rerun_run=runs[(wfs["CI/CD"], "c" * 40)],
                db_url=db_url,
            )


def test_parse_real_workflow_files() -> None:
    spec = parse.parse_workflow(real_workflow("enricomi-publish-unit-test-result.ci-cd.yml"))
    assert spec is not None
    depth = parse.depths(spec)
    assert depth["deploy"] == 2 and depth["publish"] == 1 and depth["test-lnx"] == 0
    names = [name for name, _ in CICD_JOBS]
    matched = parse.match_jobs(names, spec)
    assert matched["Test Ubuntu / Test (python-3.12, ubuntu-latest)"] == "test-lnx"
    assert matched["Publish / Publish Test Results"] == "publish"
    assert matched["Deploy to GitHub"] == "deploy"
    called = parse.parse_workflow(real_workflow("enricomi-publish-unit-test-result.test-os.yml"))
    assert called is not None
    assert parse.match_jobs(["Test (python-3.8, macos-latest)"], called) == {
        "Test (python-3.8, macos-latest)": "test"
    }
    assert parse.parse_workflow("jobs: [unclosed") is None
    assert parse.parse_workflow("just text") is None


@dataclass
class Timed:
    started_at: datetime | None
    completed_at: datetime | None


def test_waves_by_start_time_and_pytorch_names() -> None:
    t = NOW
    jobs = [
        Timed(t, t + timedelta(seconds=10)),  # A
        Timed(t + timedelta(seconds=2), t + timedelta(seconds=12)),  # B, beside A
        Timed(t + timedelta(seconds=15), None),  # C, after A finished: next wave, running
        Timed(t + timedelta(seconds=16), t + timedelta(seconds=20)),  # D, beside C
        Timed(None, None),  # never started: last
    ]
    assert parse.waves_by_time(jobs) == [0, 0, 1, 1, 2]
    spec = parse.parse_workflow(real_workflow("pytorch-test-infra.test_linux_job.yml"))
    assert spec is not None
    names = [
        "test-gpu (linux.g5.4xlarge.nvidia.gpu, 12.1) / linux-job",
        "test-download-artifact / linux-job",
        "test-upload-artifact / linux-job",
    ]
    matched = parse.match_jobs(names, spec)
    assert matched[names[0]] == "test-gpu"
    assert matched[names[1]] == "test-download-artifact"  # not swallowed by a shorter key
    assert parse.depths(spec)[matched[names[1]]] == 1


@settings(max_examples=60, derandomize=True, database=None)
@given(st.text(max_size=300))
def test_any_text_parses_or_is_refused(text: str) -> None:
    spec = parse.parse_workflow("jobs:\n  a:\n    needs: [b]\n  b: {}\n" + text)
    if spec is not None:
        depth = parse.depths(spec)
        for job in spec.jobs:
            assert all(depth[job.key] > depth[n] for n in job.needs if n in depth and n != job.key)


def test_orgs_show_installations_with_repo_health(world: World) -> None:
    data = world.client.get("/api/orgs?days=30").json()
    by_login = {o["login"]: o for o in data["orgs"]}
    org = by_login["octo-org"]
    assert org["installation_id"] == 4242 and org["kind"] == "Organization"
    repos = {r["full_name"]: r for r in org["repositories"]}
    health = repos[REPO]["health"]
    runs = [r for r in world.scenario.runs.values()]
    assert health["runs"] == len(runs)
    assert health["failed"] == 1  # the deploy that failed; the re-run ci-cd passed finally
    assert health["failure_rate"] == pytest.approx(1 / len(runs))
    assert repos[REPO]["last_default_branch_run"]["branch"] == "main"

    db = Database(world.db_url)
    with db.write() as uow:
        inst = uow.session.scalar(select(Installation))
        assert inst is not None
        inst.suspended_at = utcnow()
    db.dispose()
    page = world.client.get("/orgs")
    assert page.status_code == 200
    assert "suspended" in page.text and REPO.split("/")[1] in page.text
    assert 'href="/orgs/octo-org"' in page.text
    one = world.client.get("/api/orgs/octo-org").json()
    assert one["org"]["suspended"] is True
    assert world.client.get("/api/orgs/nobody").status_code == 404
    assert world.client.get("/orgs/nobody").status_code == 404


def test_repo_page_workflows_branches_and_filters(world: World) -> None:
    data = world.client.get(f"/api/repos/{REPO}?days=30").json()
    names = {w["name"]: w for w in data["workflows"]}
    assert names["🚀 Deploy"]["health"]["runs"] == 8
    assert names["🚀 Deploy"]["success_rate"] == pytest.approx(7 / 8)
    assert names["CI/CD"]["latest_run"]["attempt"] == 2
    assert {b["name"] for b in data["branches"]} == {"main", "dev"}
    # Each run once (its latest attempt), newest first.
    assert data["recent_runs"]["total"] == 9
    dev = world.client.get(f"/api/repos/{REPO}?days=30&branch=dev").json()
    assert dev["recent_runs"]["total"] == 3
    assert {r["branch"] for r in dev["recent_runs"]["runs"]} == {"dev"}
    failed = world.client.get(f"/api/repos/{REPO}?days=30&status=failure").json()
    assert [r["id"] for r in failed["recent_runs"]["runs"]] == [world.nofile_run]

    page = world.client.get(f"/repos/{REPO}?days=30&branch=dev")
    assert page.status_code == 200
    crumbs = re.findall(r'<nav class="crumbs".*?</nav>', page.text, re.S)[0]
    assert "Organizations" in crumbs and "octo-org" in crumbs and "hello-world" in crumbs
    assert page.text.count('data-run="') == 3
    fragment = world.client.get(
        f"/repos/{REPO}?days=30&branch=dev", headers={"HX-Request": "true", "HX-Target": "runs"}
    )
    assert fragment.text.lstrip().startswith('<section class="panel" id="runs"')
    csv = world.client.get(f"/api/repos/{REPO}?days=30&format=csv")
    assert csv.headers["content-type"].startswith("text/csv")
    assert len(csv.text.strip().splitlines()) == 1 + 9
    assert world.client.get("/api/repos/octo-org/missing").status_code == 404
    assert world.client.get("/repos/octo-org/missing").status_code == 404


def test_workflow_trend_and_history(world: World) -> None:
    url = f"/api/repos/{REPO}/workflows/{world.deploy_wf}?days=7&per_page=5"
    data = world.client.get(url).json()
    assert data["runs"]["total"] == 8 and len(data["runs"]["runs"]) == 5
    assert sum(d["runs"] for d in data["daily"]) == 8
    assert len(data["daily"]) == 8  # every day of the window, gaps included
    busy = [d for d in data["daily"] if d["runs"]]
    assert all(d["p50_seconds"] is not None and d["p95_seconds"] >= d["p50_seconds"] for d in busy)
    page2 = world.client.get(
        f"/api/repos/{REPO}/workflows/{world.deploy_wf}/runs?days=7&per_page=5&page=2"
    ).json()
    assert len(page2["runs"]) == 3
    html = world.client.get(f"/repos/{REPO}/workflows/{world.deploy_wf}")
    assert html.status_code == 200 and 'id="duration-chart"' in html.text
    assert world.client.get(f"/repos/{REPO}/workflows/1").status_code == 404


def test_run_graph_follows_needs_from_the_workflow_file(world: World) -> None:
    data = world.client.get(f"/api/repos/{REPO}/runs/{world.deploy_run}").json()
    assert data["order"] == "needs"
    stage = {j["name"]: j["stage"] for j in data["jobs"]}
    assert stage == {**dict.fromkeys(REMIX_JOBS, 0), "🚀 Deploy": 1}
    assert [j["name"] for j in data["jobs"]][-1] == "🚀 Deploy"
    ids = {j["name"]: j["id"] for j in data["jobs"]}
    deploy = next(j for j in data["jobs"] if j["name"] == "🚀 Deploy")
    assert sorted(deploy["needs"]) == sorted(ids[n] for n in REMIX_JOBS)
    # Read once from GitHub, then from the database.
    fetched = world.gh.stats.by_route.get("repos/get-content", 0)
    assert fetched >= 1
    world.client.get(f"/api/repos/{REPO}/runs/{world.deploy_run}")
    assert world.gh.stats.by_route.get("repos/get-content", 0) == fetched

    page = world.client.get(f"/repos/{REPO}/runs/{world.deploy_run}")
    assert page.status_code == 200
    assert page.text.index("⚫️ Cypress") < page.text.index('data-name="🚀 Deploy"')


def test_run_without_its_file_falls_back_to_start_times(world: World) -> None:
    data = world.client.get(f"/api/repos/{REPO}/runs/{world.nofile_run}").json()
    assert data["order"] == "start-time"
    assert "not available" in data["order_note"]
    starts = [j["started_at"] for j in data["jobs"]]
    assert starts == sorted(starts)
    assert all(j["needs"] == [] for j in data["jobs"])
    before = world.gh.stats.by_route.get("repos/get-content", 0)
    world.client.get(f"/api/repos/{REPO}/runs/{world.nofile_run}")
    assert world.gh.stats.by_route.get("repos/get-content", 0) == before  # the 404 is cached


def test_reusable_workflow_stages_and_attempts_side_by_side(world: World) -> None:
    data = world.client.get(f"/api/repos/{REPO}/runs/{world.rerun_run}").json()
    assert data["order"] == "needs"
    stage = {j["name"]: j["stage"] for j in data["jobs"]}
    assert stage["Deploy to GitHub"] == 2
    assert stage["Publish / Publish Test Results"] == 1
    assert stage["Test Windows / Test (python-3.11, windows-latest)"] == 0
    assert data["shown_attempt"] == 2 and [a["number"] for a in data["attempts"]] == [1, 2]
    rows = {r["name"]: r["cells"] for r in data["attempt_rows"]}
    windows = rows["Test Windows / Test (python-3.11, windows-latest)"]
    assert windows["1"]["conclusion"] == "failure" and windows["2"]["conclusion"] == "success"
    assert rows["Check python/requirements.txt"]["2"] is None  # not re-run: carried over
    carried = {j["name"]: j["carried_over"] for j in data["jobs"]}
    assert carried["Check python/requirements.txt"] is True
    first = world.client.get(f"/api/repos/{REPO}/runs/{world.rerun_run}?attempt=1").json()
    assert first["shown_attempt"] == 1
    assert {j["conclusion"] for j in first["jobs"]} == {"success", "failure"}
    page = world.client.get(f"/repos/{REPO}/runs/{world.rerun_run}")
    assert "Attempts side by side" in page.text
    assert page.text.count('data-job-name="') == len(CICD_JOBS)


def test_job_page_steps_queue_runner_and_previous_executions(world: World) -> None:
    run = world.scenario.runs[world.deploy_run]
    job = next(j for j in run.all_jobs() if j.name == "⚡ Vitest")
    data = world.client.get(f"/api/repos/{REPO}/jobs/{job.id}").json()
    assert data["queue_seconds"] == pytest.approx(5.0)
    assert data["runner_name"] == job.runner_name
    assert [s["name"] for s in data["steps"]] == [s.name for s in job.steps]
    assert data["run"]["id"] == world.deploy_run
    assert len(data["previous"]) == 7  # the seven other deploy runs' Vitest
    assert all(p["job_id"] != job.id for p in data["previous"])
    page = world.client.get(f"/repos/{REPO}/jobs/{job.id}")
    assert page.status_code == 200
    assert f"/repos/{REPO}/jobs/{job.id}/log" in page.text
    assert 'id="steps-chart"' in page.text
    crumbs = re.findall(r'<nav class="crumbs".*?</nav>', page.text, re.S)[0]
    assert "🚀 Deploy" in crumbs and "Run #" in crumbs and "⚡ Vitest" in crumbs
    assert world.client.get(f"/api/repos/octo-org/other/jobs/{job.id}").status_code == 404
    assert world.client.get(f"/api/repos/{REPO}/jobs/99999999999999999999").status_code == 422


def test_token_mode_owners_and_empty_states(make_settings) -> None:  # type: ignore[no-untyped-def]
    with TestClient(create_app(make_settings())) as client:
        empty = client.get("/orgs")
        assert empty.status_code == 200 and "No organisations yet" in empty.text
        assert client.get("/api/orgs").json()["orgs"] == []
    with TestClient(create_app(make_settings(repos=["acme/app", "acme/lib"]))) as client:
        orgs = client.get("/api/orgs").json()["orgs"]
        assert [(o["login"], o["kind"], o["installation_id"]) for o in orgs] == [
            ("acme", "owner", None)
        ]
        assert [r["full_name"] for r in orgs[0]["repositories"]] == ["acme/app", "acme/lib"]
        assert orgs[0]["health"]["runs"] == 0 and orgs[0]["health"]["failure_rate"] is None
        repo = client.get("/repos/acme/app")
        assert repo.status_code == 200 and "No workflow synced yet" in repo.text
        assert "No runs in the last 7 days" in repo.text
        # Bad input is a clear 4xx, never a 500.
        assert client.get("/api/repos/acme/app?status=bogus").status_code == 422
        assert client.get("/api/repos/acme/app?days=0").status_code == 422
        assert client.get("/api/repos/acme/a%20b").status_code == 422
        assert client.get("/repos/acme/app?days=abc&page=-3&status=bogus").status_code == 200
        assert client.get("/repos/acme/app/runs/abc").status_code == 404
