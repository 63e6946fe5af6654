"""`cipulse demo`'s GitHub history: every GitHub page has data, and seeding twice changes nothing.

The seeding runs into the test database (SQLite and PostgreSQL), then the pages are read through
the app as a visitor would: each answers 200 and shows demo data, not its empty state.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from cipulse import migrate
from cipulse.app import create_app
from cipulse.context import AppContext
from cipulse.models import (
    Artifact,
    ArtifactFile,
    ArtifactScan,
    Base,
    Job,
    JobLog,
    Repository,
    Step,
    Workflow,
    WorkflowRun,
)
from cipulse.settings import Settings
from cipulse.simulator import github_demo

RUNS = 600  # smaller than the demo's, enough for every page (and quick on PostgreSQL)


@dataclass(frozen=True)
class Ids:
    workflow: int
    run: int
    job: int
    logged_job: int
    artifact_run: int
    files: dict[str, int]


def table_counts(ctx: AppContext) -> dict[str, int]:
    with ctx.db.read() as session:
        return {
            t.name: int(session.scalar(select(func.count()).select_from(t)) or 0)
            for t in Base.metadata.sorted_tables
        }


def stored_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.fixture
def seeded(settings: Settings) -> Iterator[tuple[AppContext, github_demo.Seeded]]:
    ctx = AppContext.build(settings)
    migrate.upgrade(ctx.db.engine)
    try:
        result = github_demo.seed(ctx, runs=RUNS)
        assert result is not None
        yield ctx, result
    finally:
        ctx.db.dispose()


def ids_of(ctx: AppContext) -> Ids:
    with ctx.db.read() as session:
        api = session.scalar(select(Repository.id).where(Repository.full_name == "northwind/api"))
        workflow = session.scalar(
            select(Workflow.github_id).where(Workflow.repository_id == api, Workflow.name == "CI")
        )
        job_row = session.execute(
            select(Job.github_id, WorkflowRun.github_id)
            .join(WorkflowRun, WorkflowRun.id == Job.run_id)
            .where(
                WorkflowRun.repository_id == api,
                WorkflowRun.status == "completed",
                Job.id.in_(select(Step.job_id)),
            )
            .order_by(WorkflowRun.created_at.desc())
            .limit(1)
        ).one()
        logged = session.scalar(
            select(Job.github_id)
            .join(JobLog, JobLog.job_id == Job.id)
            .join(WorkflowRun, WorkflowRun.id == Job.run_id)
            .where(WorkflowRun.repository_id == api, JobLog.state == "stored")
            .limit(1)
        )
        files = session.execute(
            select(ArtifactFile.path, ArtifactFile.id, Artifact.run_github_id).join(
                Artifact, Artifact.id == ArtifactFile.artifact_id
            )
        ).all()
    assert workflow is not None and logged is not None and files
    return Ids(
        workflow=workflow,
        run=job_row[1],
        job=job_row[0],
        logged_job=logged,
        artifact_run=files[0][2],
        files={path: file_id for path, file_id, _run in files},
    )


def page(client: TestClient, path: str) -> str:
    answer = client.get(path)
    assert answer.status_code == 200, (path, answer.status_code)
    assert "data-empty-state" not in answer.text, path
    return answer.text


def test_seeding_once_tells_the_story_and_twice_changes_nothing(
    seeded: tuple[AppContext, github_demo.Seeded], settings: Settings
) -> None:
    ctx, result = seeded
    assert result.repositories == 4 and result.runs == RUNS
    assert result.logs > 0 and result.reports > 0 and result.artifact_files == 3
    before, files = table_counts(ctx), stored_files(settings.data_dir)
    assert before["installation"] == 1 and before["step"] > 0 and before["workflow_file"] > 0
    assert before["test_report"] == result.reports and before["run_daily"] > 0
    assert before["rollup_dirty_day"] == 0
    assert github_demo.seed(ctx, runs=RUNS) is None
    assert table_counts(ctx) == before
    assert stored_files(settings.data_dir) == files
    with ctx.db.read() as session:
        rows = session.execute(select(Repository.full_name, Repository.installation_id))
        repos = {name: installation for name, installation in rows}
        assert set(repos) == {"northwind/api", "northwind/web", "lumen-labs/cli", "lumen-labs/docs"}
        assert repos["northwind/api"] == github_demo.INSTALLATION_ID
        assert repos["lumen-labs/cli"] is None
        latest = session.scalars(
            select(WorkflowRun.conclusion)
            .join(Repository, Repository.id == WorkflowRun.repository_id)
            .where(
                Repository.full_name == "northwind/api",
                WorkflowRun.head_branch == "main",
                WorkflowRun.name == "CI",
                WorkflowRun.status == "completed",
            )
            .order_by(WorkflowRun.created_at.desc())
            .limit(3)
        ).all()
        assert latest == ["failure"] * 3  # main is broken now
        running = session.scalar(
            select(func.count()).where(WorkflowRun.status == "in_progress").select_from(WorkflowRun)
        )
        assert running and running >= 3
        pending = session.scalar(
            select(func.count()).where(JobLog.state != "stored").select_from(JobLog)
        )
        assert pending == 0  # the fetcher never has a log to download
        assert session.scalar(select(func.count()).where(Artifact.state != "done")) == 0
        scans = select(func.count()).where(ArtifactScan.state != "done")
        assert session.scalar(scans) == 0  # nor the artifact processor a run to list


def test_every_github_page_shows_demo_data(
    seeded: tuple[AppContext, github_demo.Seeded], settings: Settings
) -> None:
    ctx, _ = seeded
    ids = ids_of(ctx)
    with TestClient(create_app(settings)) as client:
        assert "northwind/api" in page(client, "/overview")
        compare = page(client, "/compare")
        assert "No GitHub repository synced yet" not in compare and "northwind" in compare
        assert "unit (3.12)" in page(client, "/jobs")
        orgs = page(client, "/orgs")
        assert "northwind" in orgs and "lumen-labs" in orgs and "App installed" in orgs
        assert "api" in page(client, "/orgs/northwind")
        repo = page(client, "/repos/northwind/api")
        assert "CI" in repo and "main" in repo
        assert "CI" in page(client, f"/repos/northwind/api/workflows/{ids.workflow}")
        run = page(client, f"/repos/northwind/api/runs/{ids.run}")
        assert "Ordered by needs in the workflow file" in run and "Not listed yet" not in run
        assert "Set up job" in page(client, f"/repos/northwind/api/jobs/{ids.job}")
        log = page(client, f"/repos/northwind/api/jobs/{ids.logged_job}/log")
        assert "Process completed with exit code 1." in log and "FAILED" in log
        artifacts = page(client, f"/repos/northwind/web/runs/{ids.artifact_run}/artifacts")
        for name in ("coverage-report", "coverage-by-package.png", "coverage.json"):
            assert name in artifacts
        assert "<img" in page(client, f"/files/{ids.files['coverage/coverage-by-package.png']}")
        assert "percent_covered" in page(client, f"/files/{ids.files['coverage/coverage.json']}")
        assert "412 passed" in page(client, f"/files/{ids.files['build-summary.txt']}")
        tests = page(client, "/tests")
        assert "test_invoice_total_rounds_half_even" in tests
        flaky = re.search(r"(\d+) flaky", tests)
        assert flaky and int(flaky.group(1)) >= 2
        assert "retriesOn503" in page(client, "/tests?view=flaky")


def test_alerts_page_shows_the_broken_branch(
    seeded: tuple[AppContext, github_demo.Seeded], settings: Settings
) -> None:
    with TestClient(create_app(settings)) as client:
        worker = client.app.state.ctx.alert_worker  # type: ignore[attr-defined]
        worker.evaluate_once()  # what the worker does on its next pass, done now
        alerts = client.get("/alerts")
        assert alerts.status_code == 200
        assert "data-none-broken" not in alerts.text
        assert "northwind/api@main" in alerts.text
