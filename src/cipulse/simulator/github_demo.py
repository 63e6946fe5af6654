"""Demo mode's GitHub side: a month of Actions history for two owners, made without any network.

``cipulse demo`` calls :func:`seed` once; it writes only into a database that has no GitHub
repository yet, so a restart (or a second call) changes nothing. The history itself comes from
``stats.generate`` (bulk inserts, re-run attempts, flaky jobs, runner labels); this module then
gives it a story and fills every stage a real sync would have fed:

- owners ``northwind`` (a GitHub App installation) and ``lumen-labs`` (plain, as in token mode);
- ``northwind/api`` has ``main`` broken by its latest CI runs; a few runs are in progress;
- steps for the jobs of the last days (the job page's timeline), workflow files at each commit
  (the run page's graph) so no page asks GitHub for them;
- job logs of recent failed jobs written through the logs package's storage and index, their
  rows ``stored`` so the fetcher never wants them;
- JUnit reports through ``testreports.service.store_report``: failures, a test that fails and
  then passes on a re-run of the same commit, a Surefire report with a flaky rerun;
- every completed run's artifacts listed (none, but for one run whose PNG, JSON and text file are
  extracted through the artifacts package), so the processor never lists or downloads any;
- the rollups computed, so ``/overview`` is fast from the first view.

Background workers reach GitHub only with a token or an App, and ``cipulse demo`` drops both.
"""

from __future__ import annotations

import io
import random
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from cipulse.artifacts import repository as artifacts_repo
from cipulse.artifacts import service as artifacts
from cipulse.context import AppContext
from cipulse.logs import service as logs
from cipulse.models import (
    ArtifactScan,
    Installation,
    Job,
    JobLog,
    Repository,
    Step,
    SyncState,
    WorkflowFile,
    WorkflowRun,
    utcnow,
)
from cipulse.settings import Settings
from cipulse.simulator import demo_content as content
from cipulse.stats import generate
from cipulse.stats import repository as stats_repo
from cipulse.stats import tasks as stats_tasks
from cipulse.storage import Storage
from cipulse.testreports import service as testreports

RUNS = 2000
DAYS = 30
SEED = 11
STEP_DAYS = 3  # jobs of runs this recent get steps (and can get logs)
MAX_LOGS = 60
REPORT_RUNS = 40
INSTALLATION_ID = 51_000_001
# Generated repositories in order -> (owner, name); the first owner is an App installation.
NAMES = [("northwind", "api"), ("northwind", "web"), ("lumen-labs", "cli"), ("lumen-labs", "docs")]
APP_OWNER = "northwind"
BROKEN = ("northwind/api", "main", "CI")
BROKEN_JOB = "unit (3.12)"
BROKEN_TEST = content.BROKEN_TEST
FLAKY_TEST = content.FLAKY_TEST


@dataclass
class Seeded:
    repositories: int = 0
    runs: int = 0
    jobs: int = 0
    steps: int = 0
    logs: int = 0
    reports: int = 0
    artifact_files: int = 0


def has_github_data(session: Session) -> bool:
    return session.scalar(select(func.count(Repository.id))) != 0


def seed(ctx: AppContext, *, now: datetime | None = None, runs: int = RUNS) -> Seeded | None:
    """Fill a database without GitHub data with the demo history; None when it has some."""
    now = (now or utcnow()).replace(microsecond=0)
    with ctx.db.read() as session:
        if has_github_data(session):
            return None
    made = generate.generate(
        ctx.db.engine, runs=runs, days=DAYS, now=now, repositories=len(NAMES), seed=SEED
    )
    out = Seeded(repositories=made.repositories, runs=made.runs, jobs=made.jobs)
    rng = random.Random(SEED)
    with ctx.db.write() as uow:
        repos = _name_repositories(uow.session, now)
        _break_branch(uow.session, repos[BROKEN[0]])
        _start_runs(uow.session, rng, list(repos.values())[:3], now)
        out.steps = _add_steps(uow.session, rng, now)
        _add_workflow_files(uow.session, now)
        for repo_id in repos.values():
            stats_repo.mark_all_dirty(uow.session, repo_id)
    with ctx.db.write() as uow:
        out.logs = _add_logs(uow.session, ctx.storage, rng, now)
    with ctx.db.write() as uow:
        out.reports = _add_reports(uow.session, rng, now)
    with ctx.db.write() as uow:
        _add_scans(uow.session, now)
        out.artifact_files = _add_artifacts(uow.session, ctx.storage, ctx.settings, now)
    stats_tasks.rollup_pending(ctx.db, now=now)
    return out


# -- shaping the generated history --------------------------------------------------------------


def _name_repositories(session: Session, now: datetime) -> dict[str, int]:
    """Give the generated repositories their demo names, owners and sync state."""
    rows = session.scalars(select(Repository).order_by(Repository.id)).all()
    session.add(
        Installation(
            github_id=INSTALLATION_ID,
            account_login=APP_OWNER,
            account_type="Organization",
            app_id=901_234,
            repository_selection="selected",
            permissions={"actions": "read", "contents": "read", "metadata": "read"},
            created_at=now - timedelta(days=DAYS + 5),
        )
    )
    found: dict[str, int] = {}
    for row, (owner, name) in zip(rows, NAMES, strict=True):
        full = f"{owner}/{name}"
        row.owner, row.name, row.full_name = owner, name, full
        row.html_url = f"https://github.com/{full}"
        row.installation_id = INSTALLATION_ID if owner == APP_OWNER else None
        row.branches = []
        found[full] = row.id
        for model in (WorkflowRun, Job):
            where = (
                WorkflowRun.repository_id == row.id
                if model is WorkflowRun
                else Job.run_id.in_(
                    select(WorkflowRun.id).where(WorkflowRun.repository_id == row.id)
                )
            )
            session.execute(
                update(model)
                .where(where)
                .values(
                    html_url=func.replace(model.html_url, "github.com/x/y/", f"github.com/{full}/")
                )
                .execution_options(synchronize_session=False)
            )
        newest = session.scalar(
            select(func.max(WorkflowRun.created_at)).where(WorkflowRun.repository_id == row.id)
        )
        session.add(
            SyncState(
                repository_id=row.id,
                last_started_at=now,
                last_success_at=now,
                initial_done_at=now - timedelta(days=DAYS),
                newest_run_created_at=newest,
                last_requests=0,
                last_not_modified=0,
                last_points=0,
                total_requests=0,
            )
        )
    session.flush()
    return found


def _latest_attempt_ids(session: Session, where: Sequence[object], limit: int) -> list[int]:
    """GitHub ids of the newest runs matching ``where``."""
    return list(
        session.scalars(
            select(WorkflowRun.github_id)
            .where(*where)  # type: ignore[arg-type]
            .group_by(WorkflowRun.github_id)
            .order_by(func.max(WorkflowRun.created_at).desc())
            .limit(limit)
        )
    )


def _break_branch(session: Session, repo_id: int) -> None:
    """The newest completed CI runs of the broken branch fail, every attempt, in one job."""
    _full, branch, workflow = BROKEN
    ids = _latest_attempt_ids(
        session,
        [
            WorkflowRun.repository_id == repo_id,
            WorkflowRun.head_branch == branch,
            WorkflowRun.name == workflow,
            WorkflowRun.status == "completed",
        ],
        4,
    )
    run_ids = select(WorkflowRun.id).where(WorkflowRun.github_id.in_(ids))
    session.execute(
        update(WorkflowRun)
        .where(WorkflowRun.github_id.in_(ids))
        .values(conclusion="failure")
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(Job)
        .where(Job.run_id.in_(run_ids), Job.name == BROKEN_JOB, Job.status == "completed")
        .values(conclusion="failure")
        .execution_options(synchronize_session=False)
    )


def _start_runs(session: Session, rng: random.Random, repo_ids: list[int], now: datetime) -> None:
    """The newest single-attempt run of each repository becomes one started minutes ago."""
    for index, repo_id in enumerate(repo_ids):
        run = session.scalars(
            select(WorkflowRun)
            .where(
                WorkflowRun.repository_id == repo_id,
                WorkflowRun.run_attempt == 1,
                ~WorkflowRun.github_id.in_(
                    select(WorkflowRun.github_id).where(WorkflowRun.run_attempt > 1)
                ),
            )
            .order_by(WorkflowRun.created_at.desc())
            .limit(1)
        ).first()
        if run is None:
            continue
        created = now - timedelta(minutes=3 + 4 * index)
        run.created_at, run.run_started_at, run.updated_at = (
            created,
            created + timedelta(seconds=15),
            now,
        )
        run.status, run.conclusion = "in_progress", None
        jobs = session.scalars(select(Job).where(Job.run_id == run.id).order_by(Job.id)).all()
        for position, job in enumerate(jobs):
            job.created_at = run.run_started_at
            job.started_at = run.run_started_at + timedelta(seconds=rng.randint(2, 20))
            share = position / max(1, len(jobs))
            if share < 0.4:
                job.status, job.conclusion = "completed", "success"
                job.completed_at = min(now, job.started_at + timedelta(seconds=rng.randint(40, 90)))
            elif share < 0.75:
                job.status, job.conclusion, job.completed_at = "in_progress", None, None
            else:
                job.status, job.conclusion = "queued", None
                job.started_at = job.completed_at = None
    session.flush()


def _step_plan(job_name: str) -> list[tuple[str, float]]:
    """Step names and their share of the job's time; the main command is the fourth step."""
    command = content.COMMANDS.get(job_name, "pytest tests/unit -q")
    tool = "Set up Node 20" if job_name == "e2e" else "Set up Python 3.12"
    return [
        ("Set up job", 0.03),
        ("Run actions/checkout@v4", 0.05),
        (tool, 0.1),
        (f"Run {command}", 0.77),
        ("Post Run actions/checkout@v4", 0.02),
        ("Complete job", 0.03),
    ]


def _add_steps(session: Session, rng: random.Random, now: datetime) -> int:
    """Steps for the jobs of recent runs, consistent with each job's times and outcome."""
    since = now - timedelta(days=STEP_DAYS)
    jobs = session.execute(
        select(Job.id, Job.name, Job.status, Job.conclusion, Job.started_at, Job.completed_at)
        .join(WorkflowRun, WorkflowRun.id == Job.run_id)
        .where(WorkflowRun.created_at >= since, Job.started_at.is_not(None))
    ).all()
    rows: list[dict[str, object]] = []
    for job_id, name, status, conclusion, started, completed in jobs:
        plan = _step_plan(name)
        at: datetime = started  # type: ignore[assignment]  # filtered: started_at is set
        total = max(((completed or now) - at).total_seconds(), float(len(plan)))
        running = status != "completed"
        failed = conclusion in ("failure", "timed_out", "cancelled")
        for number, (step, share) in enumerate(plan, start=1):
            took = timedelta(seconds=total * share)
            row: dict[str, object] = {"job_id": job_id, "number": number, "name": step}
            if running and number == 4:
                row.update(status="in_progress", conclusion=None, started_at=at, completed_at=None)
            elif running and number > 4:
                row.update(status="queued", conclusion=None, started_at=None, completed_at=None)
            elif conclusion == "skipped":
                row.update(status="completed", conclusion="skipped", started_at=at, completed_at=at)
            else:
                outcome = "success"
                if number == 4 and failed:
                    outcome = "cancelled" if conclusion == "cancelled" else "failure"
                row.update(
                    status="completed", conclusion=outcome, started_at=at, completed_at=at + took
                )
            rows.append(row)
            at += took
    if rows:
        session.execute(insert(Step), rows)
    return len(rows)


def _add_workflow_files(session: Session, now: datetime) -> None:
    """Each workflow's file at each commit it ran on, as the contents API would answer."""
    found = session.execute(
        select(WorkflowRun.repository_id, WorkflowRun.name, WorkflowRun.head_sha).distinct()
    ).all()
    rows = [
        {
            "repository_id": repo_id,
            "path": f".github/workflows/{name.lower()}.yml",
            "ref": sha,
            "found": True,
            "content": content.WORKFLOW_FILES[name],
            "size": len(content.WORKFLOW_FILES[name]),
            "fetched_at": now,
        }
        for repo_id, name, sha in found
        if name in content.WORKFLOW_FILES and sha
    ]
    if rows:
        session.execute(insert(WorkflowFile), rows)


# -- logs -----------------------------------------------------------------------------------------


def _add_logs(session: Session, storage: Storage, rng: random.Random, now: datetime) -> int:
    """Logs for the newest failed jobs that have steps, stored as the fetcher would store them."""
    broken_repo = session.scalar(select(Repository.id).where(Repository.full_name == BROKEN[0]))
    jobs = session.execute(
        select(Job, WorkflowRun.repository_id)
        .join(WorkflowRun, WorkflowRun.id == Job.run_id)
        .where(
            Job.conclusion == "failure",
            WorkflowRun.created_at >= now - timedelta(days=STEP_DAYS),
            Job.id.in_(select(Step.job_id)),
        )
        .order_by(Job.completed_at.desc())
        .limit(MAX_LOGS)
    ).all()
    for job, repo_id in jobs:
        steps = session.scalars(
            select(Step).where(Step.job_id == job.id).order_by(Step.number)
        ).all()
        broken = repo_id == broken_repo and job.name == BROKEN_JOB and job.head_branch == BROKEN[1]
        text = content.log_text(rng, job=job, steps=steps, labels=job.labels or [], broken=broken)
        prefix = logs.storage_prefix(repository_id=repo_id, job_github_id=job.github_id)
        index = logs.store(storage, prefix=prefix, source=io.BytesIO(text.encode()))
        row = JobLog(
            job_id=job.id, state="pending", attempts=1, next_attempt_at=now,
            error_count=0, warning_count=0, created_at=now,
        )  # fmt: skip
        session.add(row)
        logs.record_stored(row, prefix=prefix, index=index, now=now)
    session.flush()
    return len(jobs)


# -- test reports ---------------------------------------------------------------------------------


def _add_reports(session: Session, rng: random.Random, now: datetime) -> int:
    """Reports on the unit job of the newest CI runs; a re-run commit makes a flaky test."""
    broken_repo = session.scalar(select(Repository.id).where(Repository.full_name == BROKEN[0]))
    rows = session.execute(
        select(
            WorkflowRun.id,
            WorkflowRun.repository_id,
            WorkflowRun.head_branch,
            Job.id,
            Job.conclusion,
        )
        .join(Job, (Job.run_id == WorkflowRun.id) & (Job.name == BROKEN_JOB))
        .where(
            WorkflowRun.name == "CI", WorkflowRun.status == "completed", Job.status == "completed"
        )
        .order_by(WorkflowRun.created_at.desc())
        .limit(REPORT_RUNS)
    ).all()
    stored = 0
    for run_id, repo_id, branch, job_id, conclusion in rows:
        failing = []
        if conclusion == "failure":
            failing = (
                [BROKEN_TEST] if repo_id == broken_repo and branch == BROKEN[1] else [FLAKY_TEST]
            )
        testreports.store_report(
            session, data=content.junit_xml(rng, failing=failing), repository_id=None,
            workflow_run_id=run_id, job_id=job_id, source="demo", name="junit/unit.xml", now=now,
        )  # fmt: skip
        stored += 1
    # A commit whose first attempt failed the flaky test and whose re-run passed it.
    pair = session.execute(
        select(WorkflowRun.github_id)
        .where(
            WorkflowRun.name == "CI",
            WorkflowRun.run_attempt == 2,
            WorkflowRun.status == "completed",
        )
        .order_by(WorkflowRun.created_at.desc())
        .limit(1)
    ).scalar()
    if pair is not None:
        attempts = session.scalars(
            select(WorkflowRun)
            .where(WorkflowRun.github_id == pair)
            .order_by(WorkflowRun.run_attempt)
        ).all()
        for attempt in attempts[:2]:
            failing = [FLAKY_TEST] if attempt.run_attempt == 1 else []
            testreports.store_report(
                session, data=content.junit_xml(rng, failing=failing), repository_id=None,
                workflow_run_id=attempt.id, job_id=None, source="demo", name="junit/unit.xml",
                now=now,
            )  # fmt: skip
            stored += 1
    # Surefire (Maven) reports of the integration job, with a test that passed on its rerun.
    for index, (run_id, *_rest) in enumerate(rows[:6]):
        testreports.store_report(
            session, data=content.surefire_xml(rng, flaky=index == 1), repository_id=None,
            workflow_run_id=run_id, job_id=None, source="demo",
            name="target/surefire-reports/TEST-com.example.billing.BillingSuite.xml", now=now,
        )  # fmt: skip
        stored += 1
    return stored


# -- artifacts ------------------------------------------------------------------------------------


def _add_scans(session: Session, now: datetime) -> None:
    """Every completed run's artifacts count as listed (most uploaded none), as after a sync
    with a token; without one the processor never lists them, and the run page says so."""
    found = session.execute(
        select(
            WorkflowRun.github_id,
            func.min(WorkflowRun.repository_id),
            func.max(WorkflowRun.run_attempt),
        )
        .where(WorkflowRun.status == "completed")
        .group_by(WorkflowRun.github_id)
    ).all()
    rows = [
        {
            "repository_id": repo_id,
            "run_github_id": github_id,
            "run_attempt": attempt,
            "state": "done",
            "attempts": 1,
            "next_attempt_at": now,
            "scanned_at": now,
        }
        for github_id, repo_id, attempt in found
    ]
    if rows:
        session.execute(insert(ArtifactScan), rows)


def _add_artifacts(session: Session, storage: Storage, settings: Settings, now: datetime) -> int:
    """One recent green CI run of ``northwind/web`` gets an extracted ``coverage`` artifact."""
    found = session.execute(
        select(WorkflowRun.github_id, WorkflowRun.repository_id)
        .join(Repository, Repository.id == WorkflowRun.repository_id)
        .where(
            Repository.full_name == "northwind/web",
            WorkflowRun.name == "CI",
            WorkflowRun.conclusion == "success",
        )
        .order_by(WorkflowRun.created_at.desc())
        .limit(1)
    ).first()
    if found is None:
        return 0
    run_github_id, repo_id = found
    artifact_id = 61_000_000 + run_github_id % 1_000_000
    with tempfile.TemporaryDirectory(prefix="cipulse-demo-") as folder:
        zip_path = Path(folder) / "coverage.zip"
        content.artifact_zip(zip_path, now)
        size = zip_path.stat().st_size
        artifacts_repo.upsert_artifacts(
            session,
            repo_id=repo_id,
            run_github_id=run_github_id,
            items=[
                {
                    "id": artifact_id,
                    "name": "coverage-report",
                    "size_in_bytes": size,
                    "created_at": now - timedelta(hours=1),
                    "expires_at": now + timedelta(days=89),
                }
            ],
            now=now,
        )
        files = artifacts.extract_to_storage(
            store=storage,
            zip_path=zip_path,
            folder=artifacts.prefix(
                repo_id=repo_id, run_github_id=run_github_id, artifact_github_id=artifact_id
            ),
            limits=artifacts.limits(settings),
        )
    row = artifacts_repo.artifacts_of_run(session, run_github_id)[0]
    return artifacts.record_files(session, artifact=row, files=files, store=storage, now=now)
