"""The live view of GitHub runs: what is running now, as design B's pipeline updates."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from cipulse.activity import repository
from cipulse.activity.schemas import JobOut, PipelineUpdate, RunInProgress, StepOut
from cipulse.models import WorkflowRun

IN_PROGRESS_HORIZON = timedelta(days=2)  # older "in progress" runs were abandoned on GitHub


def _runs_with_jobs(session: Session, runs: list[WorkflowRun]) -> list[RunInProgress]:
    jobs = repository.jobs_of(session, [r.id for r in runs])
    steps = repository.steps_of(session, [j.id for j in jobs])
    names = repository.repo_names(session, list({r.repository_id for r in runs}))
    steps_by_job: dict[int, list[StepOut]] = {}
    for step in steps:
        steps_by_job.setdefault(step.job_id, []).append(
            StepOut(
                number=step.number, name=step.name, status=step.status, conclusion=step.conclusion
            )
        )
    jobs_by_run: dict[int, list[JobOut]] = {}
    for job in jobs:
        jobs_by_run.setdefault(job.run_id, []).append(
            JobOut(
                id=job.github_id,
                name=job.name,
                status=job.status,
                conclusion=job.conclusion,
                started_at=job.started_at,
                completed_at=job.completed_at,
                html_url=job.html_url,
                steps=steps_by_job.get(job.id, []),
            )
        )
    return [
        RunInProgress(
            id=run.github_id,
            attempt=run.run_attempt,
            repo=names.get(run.repository_id, "?"),
            name=run.name,
            branch=run.head_branch,
            status=run.status,
            html_url=run.html_url,
            created_at=run.created_at,
            jobs=jobs_by_run.get(run.id, []),
        )
        for run in runs
    ]


def in_progress(session: Session, *, now: datetime, limit: int = 20) -> list[RunInProgress]:
    runs = repository.runs_in_progress(session, since=now - IN_PROGRESS_HORIZON, limit=limit)
    return _runs_with_jobs(session, list(runs))


def pipeline_update(
    session: Session, *, run_id: int, attempt: int, now: datetime
) -> PipelineUpdate | None:
    run = repository.run_attempt(session, run_id, attempt)
    if run is None:
        return None
    view = _runs_with_jobs(session, [run])[0]
    done = [j.name for j in view.jobs if j.status == "completed"]
    active = [j.name for j in view.jobs if j.status == "in_progress"]
    total = len(view.jobs)
    start = run.run_started_at or run.created_at
    end = run.updated_at if run.status == "completed" and run.updated_at else now
    return PipelineUpdate(
        id=view.id,
        attempt=view.attempt,
        repo=view.repo,
        name=view.name,
        branch=view.branch,
        html_url=view.html_url,
        status=run.status if run.status != "completed" else (run.conclusion or "completed"),
        currentStage=active[0] if active else None,
        completedStages=done,
        progress=round(100.0 * len(done) / total, 1) if total else 0.0,
        startTime=start,
        duration=round((end - start).total_seconds(), 1) if start else None,
        activeNodes=active,
        activeConnections=[f"{a}->{b}" for a, b in zip(done[-1:], active[:1], strict=False)],
        jobs=view.jobs,
    )
