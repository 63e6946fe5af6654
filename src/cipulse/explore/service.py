"""Design C's navigation: Organizations → Repositories → Workflows → Runs → Job.

Reads only; every number is computed from the stored rows of the one thing a page shows (a
window of runs of a repository or a workflow, the attempts of one run, one job's history), so
each page stays a few indexed queries however long the history grows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from cipulse.explore import parse
from cipulse.explore import repository as repo_q
from cipulse.explore.schemas import (
    AttemptCell,
    AttemptOut,
    AttemptRow,
    BranchSummary,
    DayPoint,
    Execution,
    Health,
    JobNode,
    JobOut,
    Org,
    OrgOut,
    OrgsOut,
    RepoHealth,
    RepoOut,
    RunOut,
    RunPage,
    RunRef,
    StepOut,
    WorkflowOut,
    WorkflowSummary,
)
from cipulse.models import Job, Repository, Workflow, WorkflowRun

PASSED = frozenset({"success", "neutral"})
FAILED = frozenset({"failure", "timed_out", "startup_failure"})
NOT_COUNTED = frozenset({"cancelled", "skipped", "action_required", "stale"})
BRANCHES_SHOWN = 12
PREVIOUS_EXECUTIONS = 20


@dataclass(frozen=True)
class Filters:
    """The run filters a page and its API share (all optional)."""

    branch: str | None = None
    status: str | None = None
    event: str | None = None


def seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None or end < start:
        return None
    return (end - start).total_seconds()


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100): always a duration that really happened."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n * q / 100), at least 1
    return ordered[int(rank) - 1]


def health(runs: Iterable[Any]) -> Health:
    """Counts of final outcomes (latest attempts); the rate leaves cancelled and skipped out."""
    return health_of_counts((run.status, run.conclusion, 1) for run in runs)


def health_of_counts(counts: Iterable[tuple[str, str | None, int]]) -> Health:
    passed = failed = cancelled = running = total = 0
    for status, conclusion, n in counts:
        total += n
        if status != "completed":
            running += n
        elif conclusion in PASSED:
            passed += n
        elif conclusion in FAILED:
            failed += n
        else:
            cancelled += n
    counted = passed + failed
    return Health(
        runs=total,
        passed=passed,
        failed=failed,
        cancelled=cancelled,
        in_progress=running,
        failure_rate=failed / counted if counted else None,
    )


def run_ref(run: WorkflowRun, workflows: dict[int, Workflow]) -> RunRef:
    wf = workflows.get(run.workflow_id) if run.workflow_id is not None else None
    done = run.status == "completed"
    return RunRef(
        id=run.github_id,
        attempt=run.run_attempt,
        run_number=run.run_number,
        name=run.name,
        workflow_id=wf.github_id if wf is not None else None,
        branch=run.head_branch,
        sha=run.head_sha,
        event=run.event,
        actor=run.actor_login,
        status=run.status,
        conclusion=run.conclusion,
        created_at=run.created_at,
        started_at=run.run_started_at,
        updated_at=run.updated_at,
        duration_seconds=seconds(run.run_started_at, run.updated_at) if done else None,
        html_url=run.html_url,
    )


def _refs(session: Session, runs: Sequence[WorkflowRun]) -> list[RunRef]:
    ids = [r.workflow_id for r in runs if r.workflow_id is not None]
    workflows = repo_q.workflows_by_id(session, ids)
    return [run_ref(run, workflows) for run in runs]


# -- organisations ---------------------------------------------------------------------------


def _one_repo_health(session: Session, repo: Repository, counts: Sequence[Any]) -> RepoHealth:
    last = None
    if repo.default_branch:
        newest = repo_q.newest_run(session, repo_id=repo.id, branch=repo.default_branch)
        last = _refs(session, [newest])[0] if newest is not None else None
    return RepoHealth(
        full_name=repo.full_name,
        owner=repo.owner,
        name=repo.name,
        html_url=repo.html_url,
        default_branch=repo.default_branch,
        tracked=repo.tracked,
        health=health_of_counts((r.status, r.conclusion, r[3]) for r in counts),
        last_default_branch_run=last,
    )


def _repo_health(
    session: Session, repos: Sequence[Repository], *, since: datetime
) -> list[RepoHealth]:
    out = []
    for repo in repos:
        counts = repo_q.state_counts(session, repo_q.RunFilter(repo_id=repo.id, since=since))
        out.append(_one_repo_health(session, repo, counts))
    return out


def _merge(parts: Iterable[Health]) -> Health:
    total = Health(runs=0, passed=0, failed=0, cancelled=0, in_progress=0, failure_rate=None)
    for h in parts:
        total.runs += h.runs
        total.passed += h.passed
        total.failed += h.failed
        total.cancelled += h.cancelled
        total.in_progress += h.in_progress
    counted = total.passed + total.failed
    total.failure_rate = total.failed / counted if counted else None
    return total


def _orgs(session: Session, *, since: datetime, owner: str | None) -> list[Org]:
    """Installations first (as GitHub App mode stores them), then owners of other repositories.

    A repository belongs to its installation's account; one without an installation (token
    mode) to its owner. Installations without repositories still show, so an admin sees that
    the App is installed but nothing is synced yet.
    """
    repos = repo_q.repositories(session, owner)
    healths = {h.full_name: h for h in _repo_health(session, repos, since=since)}
    orgs: dict[str, Org] = {}
    by_installation: dict[int, str] = {}
    for inst in repo_q.installations(session):
        login = inst.account_login or f"installation {inst.github_id}"
        if owner is not None and login.lower() != owner.lower():
            continue
        by_installation[inst.github_id] = login.lower()
        orgs[login.lower()] = Org(
            login=login,
            kind=inst.account_type or "Organization",
            installation_id=inst.github_id,
            suspended=inst.suspended_at is not None,
            suspended_at=inst.suspended_at,
            uninstalled=inst.deleted_at is not None,
            repositories=[],
            health=_merge([]),
        )
    for repo in repos:
        key = by_installation.get(repo.installation_id or -1, repo.owner.lower())
        org = orgs.get(key)
        if org is None:
            org = orgs[key] = Org(
                login=repo.owner,
                kind="owner",
                installation_id=None,
                suspended=False,
                suspended_at=None,
                uninstalled=False,
                repositories=[],
                health=_merge([]),
            )
        org.repositories.append(healths[repo.full_name])
    for org in orgs.values():
        org.health = _merge(r.health for r in org.repositories)
    return sorted(orgs.values(), key=lambda o: (o.uninstalled, o.login.lower()))


def orgs(session: Session, *, days: int, now: datetime, app_mode: bool) -> OrgsOut:
    found = _orgs(session, since=now - timedelta(days=days), owner=None)
    return OrgsOut(days=days, generated_at=now, app_mode=app_mode, orgs=found)


def org(session: Session, *, owner: str, days: int, now: datetime) -> OrgOut | None:
    found = _orgs(session, since=now - timedelta(days=days), owner=owner)
    return OrgOut(days=days, generated_at=now, org=found[0]) if found else None


# -- a repository and its workflows ------------------------------------------------------------


def _run_filter(
    repo_id: int, filters: Filters, *, since: datetime | None, workflow_id: int | None = None
) -> repo_q.RunFilter:
    return repo_q.RunFilter(
        repo_id=repo_id,
        workflow_id=workflow_id,
        branch=filters.branch,
        event=filters.event,
        status=filters.status,
        since=since,
    )


def _page(
    session: Session, f: repo_q.RunFilter, *, page: int, per_page: int
) -> tuple[RunPage, Sequence[WorkflowRun]]:
    total, rows = repo_q.run_page(session, f, offset=(page - 1) * per_page, limit=per_page)
    return RunPage(total=total, page=page, per_page=per_page, runs=_refs(session, rows)), rows


def _workflow_summary(session: Session, wf: Workflow, h: Health, repo_id: int) -> WorkflowSummary:
    newest = repo_q.newest_run(session, repo_id=repo_id, workflow_id=wf.id)
    return WorkflowSummary(
        id=wf.github_id,
        name=wf.name,
        path=wf.path,
        state=wf.state,
        html_url=wf.html_url,
        health=h,
        success_rate=None if h.failure_rate is None else 1 - h.failure_rate,
        latest_run=run_ref(newest, {wf.id: wf}) if newest is not None else None,
    )


def repo_overview(
    session: Session,
    *,
    full_name: str,
    days: int,
    now: datetime,
    filters: Filters,
    page: int,
    per_page: int,
) -> RepoOut | None:
    repo = repo_q.repository(session, full_name)
    if repo is None:
        return None
    since = now - timedelta(days=days)
    counts = repo_q.state_counts(session, repo_q.RunFilter(repo_id=repo.id, since=since))
    by_workflow: dict[int | None, list[tuple[str, str | None, int]]] = defaultdict(list)
    for row in counts:
        by_workflow[row.workflow_id].append((row.status, row.conclusion, row[3]))
    workflows = [
        _workflow_summary(session, wf, health_of_counts(by_workflow.get(wf.id, [])), repo.id)
        for wf in repo_q.workflows(session, repo.id)
    ]
    branches = []
    for name, count in repo_q.active_branches(
        session, repo_id=repo.id, since=since, limit=BRANCHES_SHOWN
    ):
        newest = repo_q.newest_run(session, repo_id=repo.id, branch=name)
        if newest is not None:
            branches.append(
                BranchSummary(name=name, runs=count, latest_run=_refs(session, [newest])[0])
            )
    recent, _rows = _page(
        session, _run_filter(repo.id, filters, since=since), page=page, per_page=per_page
    )
    return RepoOut(
        repo=_one_repo_health(session, repo, counts),
        days=days,
        workflows=workflows,
        branches=branches,
        recent_runs=recent,
    )


def daily_trend(runs: Iterable[Any], *, since: datetime, now: datetime) -> list[DayPoint]:
    """Per UTC day of creation: runs, pass/fail counts, success rate and p50/p95 duration of the
    completed ones (``updated_at - run_started_at`` of the final attempt). Every day of the
    window is present, so a chart shows the gaps."""
    buckets: dict[str, list[Any]] = defaultdict(list)
    for run in runs:
        buckets[run.created_at.date().isoformat()].append(run)
    points = []
    day = since.date()
    while day <= now.date():
        key = day.isoformat()
        todays = buckets.get(key, [])
        h = health(todays)
        durations = [
            d
            for r in todays
            if r.status == "completed"
            and (d := seconds(r.run_started_at, r.updated_at)) is not None
        ]
        points.append(
            DayPoint(
                day=key,
                runs=h.runs,
                passed=h.passed,
                failed=h.failed,
                success_rate=None if h.failure_rate is None else 1 - h.failure_rate,
                p50_seconds=percentile(durations, 50),
                p95_seconds=percentile(durations, 95),
            )
        )
        day += timedelta(days=1)
    return points


def workflow_detail(
    session: Session,
    *,
    full_name: str,
    workflow_id: int,
    days: int,
    now: datetime,
    filters: Filters,
    page: int,
    per_page: int,
) -> WorkflowOut | None:
    repo = repo_q.repository(session, full_name)
    wf = repo_q.workflow(session, repo.id, workflow_id) if repo is not None else None
    if repo is None or wf is None:
        return None
    since = now - timedelta(days=days)
    # The trend follows the branch/event/status filters too, so the chart matches the table.
    window = repo_q.window_runs(
        session, _run_filter(repo.id, filters, since=since, workflow_id=wf.id)
    )
    runs, _rows = _page(
        session,
        _run_filter(repo.id, filters, since=since, workflow_id=wf.id),
        page=page,
        per_page=per_page,
    )
    durations = [
        d
        for r in window
        if r.status == "completed" and (d := seconds(r.run_started_at, r.updated_at)) is not None
    ]
    return WorkflowOut(
        repo=repo.full_name,
        workflow=_workflow_summary(session, wf, health(window), repo.id),
        days=days,
        daily=daily_trend(window, since=since, now=now),
        p50_seconds=percentile(durations, 50),
        p95_seconds=percentile(durations, 95),
        runs=runs,
    )


# -- a run -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSource:
    """Where a run's workflow file is: what the page needs before asking GitHub for it."""

    repo_id: int
    full_name: str
    path: str | None
    sha: str | None


def run_source(session: Session, *, full_name: str, run_id: int) -> RunSource | None:
    repo = repo_q.repository(session, full_name)
    if repo is None:
        return None
    rows = repo_q.attempts(session, repo_id=repo.id, run_github_id=run_id)
    if not rows:
        return None
    latest = rows[-1]
    wfs = repo_q.workflows_by_id(session, [latest.workflow_id] if latest.workflow_id else [])
    wf = wfs.get(latest.workflow_id) if latest.workflow_id is not None else None
    return RunSource(repo.id, repo.full_name, wf.path if wf is not None else None, latest.head_sha)


def _executions_for(jobs: Sequence[Job], attempt: int) -> list[Job]:
    """What the run looked like at ``attempt``: each job's newest execution up to it (a job
    not re-run keeps its earlier result, as GitHub shows it)."""
    newest: dict[str, int] = {}
    for job in jobs:
        if job.run_attempt <= attempt:
            newest[job.name] = max(newest.get(job.name, 0), job.run_attempt)
    return [j for j in jobs if j.run_attempt <= attempt and newest[j.name] == j.run_attempt]


def _node(job: Job, attempt: int) -> JobNode:
    return JobNode(
        id=job.github_id,
        name=job.name,
        key=None,
        stage=0,
        needs=[],
        attempt=job.run_attempt,
        carried_over=job.run_attempt != attempt,
        status=job.status,
        conclusion=job.conclusion,
        started_at=job.started_at,
        completed_at=job.completed_at,
        duration_seconds=seconds(job.started_at, job.completed_at),
        html_url=job.html_url,
    )


def job_graph(
    executions: Sequence[Job], attempt: int, workflow_text: str | None
) -> tuple[list[JobNode], str, str]:
    """The jobs as stages ordered by ``needs`` from the workflow file when it can be read and
    names its jobs; otherwise by waves of start times. Returns nodes, order, and a note."""
    nodes = [_node(job, attempt) for job in executions]
    spec = parse.parse_workflow(workflow_text) if workflow_text else None
    matched = parse.match_jobs([n.name for n in nodes], spec) if spec is not None else {}
    if spec is not None and matched:
        depth = parse.depths(spec)
        position = {job.key: i for i, job in enumerate(spec.jobs)}
        last = max(depth.values(), default=0)
        ids_by_key: dict[str, list[int]] = defaultdict(list)
        for node in nodes:
            node.key = matched.get(node.name)
            if node.key is not None:
                ids_by_key[node.key].append(node.id)
        jobs_by_key = spec.by_key()
        for node in nodes:
            if node.key is None:
                node.stage = last + 1
                continue
            node.stage = depth[node.key]
            node.needs = [i for need in jobs_by_key[node.key].needs for i in ids_by_key[need]]
        nodes.sort(key=lambda n: (n.stage, position.get(n.key or "", len(position)), n.name))
        unmatched = sum(1 for n in nodes if n.key is None)
        note = "Ordered by needs in the workflow file at this commit"
        if unmatched:
            note += f"; {unmatched} job{'s' if unmatched != 1 else ''} not found in it come last"
        return nodes, "needs", note
    stages = parse.waves_by_time(nodes)
    for node, stage in zip(nodes, stages, strict=True):
        node.stage = stage
    never = datetime.max.replace(tzinfo=UTC)
    nodes.sort(key=lambda n: (n.stage, n.started_at or never, n.name))
    why = (
        "the workflow file names none of these jobs"
        if spec is not None
        else "the workflow file at this commit is not available"
    )
    return nodes, "start-time", f"Ordered by start time ({why})"


def _attempt_rows(jobs: Sequence[Job], numbers: Sequence[int]) -> list[AttemptRow]:
    rows: dict[str, AttemptRow] = {}
    for job in jobs:
        row = rows.setdefault(job.name, AttemptRow(name=job.name, cells=dict.fromkeys(numbers)))
        row.cells[job.run_attempt] = AttemptCell(
            job_id=job.github_id,
            status=job.status,
            conclusion=job.conclusion,
            duration_seconds=seconds(job.started_at, job.completed_at),
        )
    return list(rows.values())


def run_detail(
    session: Session,
    *,
    full_name: str,
    run_id: int,
    attempt: int | None,
    workflow_text: str | None,
) -> RunOut | None:
    repo = repo_q.repository(session, full_name)
    if repo is None:
        return None
    rows = repo_q.attempts(session, repo_id=repo.id, run_github_id=run_id)
    if not rows:
        return None
    numbers = [r.run_attempt for r in rows]
    shown = attempt if attempt in numbers else numbers[-1]
    jobs = repo_q.jobs_of(session, [r.id for r in rows])
    nodes, order, note = job_graph(_executions_for(jobs, shown), shown, workflow_text)
    latest = rows[-1]
    wfs = repo_q.workflows_by_id(session, [latest.workflow_id] if latest.workflow_id else [])
    wf = wfs.get(latest.workflow_id) if latest.workflow_id is not None else None
    return RunOut(
        repo=repo.full_name,
        run=run_ref(latest, wfs),
        shown_attempt=shown,
        workflow_name=wf.name if wf is not None else latest.name,
        workflow_path=wf.path if wf is not None else None,
        order=order,
        order_note=note,
        jobs=nodes,
        attempts=[
            AttemptOut(
                number=r.run_attempt,
                status=r.status,
                conclusion=r.conclusion,
                started_at=r.run_started_at,
                updated_at=r.updated_at,
                duration_seconds=(
                    seconds(r.run_started_at, r.updated_at) if r.status == "completed" else None
                ),
                html_url=r.html_url,
            )
            for r in rows
        ],
        attempt_rows=_attempt_rows(jobs, numbers),
    )


# -- a job -------------------------------------------------------------------------------------


def job_detail(
    session: Session, *, full_name: str, job_id: int, previous: int = PREVIOUS_EXECUTIONS
) -> JobOut | None:
    repo = repo_q.repository(session, full_name)
    found = repo_q.job(session, job_id) if repo is not None else None
    if repo is None or found is None or found[1].repository_id != repo.id:
        return None
    job, run = found
    wfs = repo_q.workflows_by_id(session, [run.workflow_id] if run.workflow_id else [])
    wf = wfs.get(run.workflow_id) if run.workflow_id is not None else None
    earlier = repo_q.previous_executions(
        session,
        workflow_id=run.workflow_id,
        repo_id=repo.id,
        name=job.name,
        job_id=job.id,
        limit=previous,
    )
    return JobOut(
        repo=repo.full_name,
        id=job.github_id,
        name=job.name,
        run=run_ref(run, wfs),
        attempt=job.run_attempt,
        workflow_id=wf.github_id if wf is not None else None,
        workflow_name=wf.name if wf is not None else job.workflow_name,
        status=job.status,
        conclusion=job.conclusion,
        created_at=job.created_at,
        started_at=job.started_at,
        completed_at=job.completed_at,
        queue_seconds=seconds(job.created_at, job.started_at),
        duration_seconds=seconds(job.started_at, job.completed_at),
        runner_name=job.runner_name,
        runner_group=job.runner_group_name,
        labels=[str(label) for label in job.labels or []],
        html_url=job.html_url,
        steps=[
            StepOut(
                number=s.number,
                name=s.name,
                status=s.status,
                conclusion=s.conclusion,
                started_at=s.started_at,
                completed_at=s.completed_at,
                duration_seconds=seconds(s.started_at, s.completed_at),
            )
            for s in repo_q.steps(session, job.id)
        ],
        previous=[
            Execution(
                job_id=j.github_id,
                run_id=r.github_id,
                run_number=r.run_number,
                attempt=j.run_attempt,
                branch=r.head_branch,
                sha=r.head_sha,
                status=j.status,
                conclusion=j.conclusion,
                started_at=j.started_at,
                duration_seconds=seconds(j.started_at, j.completed_at),
                html_url=j.html_url,
            )
            for j, r in earlier
        ],
    )
