"""The rules on GitHub runs: a tracked branch goes red or green, a job's failure rate, a new
flaky job, a workflow's duration regression. Each takes one newly finished run.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from cipulse.alerts import rules
from cipulse.alerts.messages import span, when
from cipulse.alerts.passes import Pass, iso, set_detail
from cipulse.models import (
    AlertRule,
    Job,
    Repository,
    Step,
    Workflow,
    WorkflowRun,
)
from cipulse.settings import Settings

log = logging.getLogger(__name__)

MAX_JOBS = 20
WINDOW_KINDS = ("failure_rate", "flaky_job", "duration")

# --- GitHub helpers --------------------------------------------------------------------------


def _default_branches(repo: Repository) -> list[str]:
    if repo.default_branch:
        return [repo.default_branch]
    return list(repo.branches or []) or ["main"]


def _applies(rule: AlertRule, run: WorkflowRun, repo: Repository, workflow: str) -> bool:
    p = rule.params
    return (
        rules.name_matches(p.get("repos", []), repo.full_name)
        and rules.branch_matches(p.get("branches", []), run.head_branch, _default_branches(repo))
        and rules.name_matches(p.get("workflows", []), workflow)
    )


def _workflow_name(session: Session, run: WorkflowRun) -> str:
    if run.workflow_id is not None:
        wf = session.get(Workflow, run.workflow_id)
        if wf is not None:
            return wf.name
    return run.name or "workflow"


def _finished(run: WorkflowRun) -> datetime:
    return run.updated_at or run.run_started_at or run.created_at


def _run_info(run: WorkflowRun, repo: Repository, workflow: str) -> dict[str, Any]:
    return {
        "workflow": workflow,
        "run_id": run.id,
        "run_number": run.run_number,
        "attempt": run.run_attempt,
        "run_url": run.html_url,
        "commit": run.head_sha,
        "commit_url": f"{repo.html_url}/commit/{run.head_sha}"
        if repo.html_url and run.head_sha
        else None,
        "author": run.actor_login,
        "at": iso(_finished(run)),
        "conclusion": run.conclusion,
    }


def first_error_line(session: Session, job_id: int) -> str | None:
    """The job log's first error line, when the logs package offers it (optional hook)."""
    try:
        logs = importlib.import_module("cipulse.logs.service")
    except ImportError:
        return None
    lookup: Callable[..., str | None] | None = getattr(logs, "first_error_line", None)
    if lookup is None:
        return None
    try:
        return lookup(session, job_id=job_id)
    except Exception:
        log.debug("first error line of job %s not available", job_id, exc_info=True)
        return None


def failing_jobs(session: Session, run_ids: Iterable[int]) -> list[dict[str, Any]]:
    """The bad jobs of these runs, each with its failed step and first error line."""
    ids = list(run_ids)
    if not ids:
        return []
    jobs = session.scalars(
        select(Job)
        .where(Job.run_id.in_(ids), Job.conclusion.in_(rules.BAD))
        .order_by(Job.run_id, Job.started_at, Job.id)
        .limit(MAX_JOBS)
    ).all()
    out = []
    for job in jobs:
        step = session.scalar(
            select(Step.name)
            .where(Step.job_id == job.id, Step.conclusion.in_(rules.BAD))
            .order_by(Step.number)
            .limit(1)
        )
        out.append(
            {
                "job_id": job.id,
                "name": job.name,
                "workflow": job.workflow_name,
                "url": job.html_url,
                "conclusion": job.conclusion,
                "step": step,
                "error_line": first_error_line(session, job.id),
            }
        )
    return out


def _run_label(info: dict[str, Any]) -> str:
    label = str(info.get("workflow") or "run")
    if info.get("run_number"):
        label += f" #{info['run_number']}"
    if (info.get("attempt") or 1) > 1:
        label += f" (attempt {info['attempt']})"
    return label


def _commit_facts(info: dict[str, Any]) -> list[list[str]]:
    facts = []
    if info.get("commit"):
        facts.append(["Commit", str(info["commit"])[:12]])
    if info.get("author"):
        facts.append(["Author", str(info["author"])])
    return facts


def _links(info: dict[str, Any], *extra: list[str]) -> list[list[str]]:
    links = []
    if info.get("run_url"):
        links.append([f"Run {_run_label(info)}", info["run_url"]])
    if info.get("commit_url"):
        links.append(["Commit", info["commit_url"]])
    return links + [list(e) for e in extra]


def _jobs_link(settings: Settings, repo: str, branch: str | None) -> list[str]:
    query = urlencode({"repo": repo, **({"branch": branch} if branch else {})})
    return ["Jobs in cipulse", f"{settings.base_url}/jobs?{query}"]


# --- rules on GitHub runs -----------------------------------------------------------------


def _branch(ctx: Pass, rule: AlertRule, run: WorkflowRun, repo: Repository, quiet: bool) -> None:
    workflow = _workflow_name(ctx.session, run)
    result = rules.outcome(run.conclusion)
    if result is None or not _applies(rule, run, repo, workflow):
        return
    subject = f"{repo.full_name}@{run.head_branch}"
    at = _finished(run)
    state = ctx.state(rule, subject, at)
    detail = dict(state.detail or {})
    info = _run_info(run, repo, workflow)
    order = [iso(run.created_at), run.github_id, run.run_attempt]
    if not rules.remember_latest(detail, str(run.workflow_id or workflow), order, result, info):
        return
    bad_now = rules.failing(detail)
    change = rules.change(state.status, bool(bad_now))
    branch = run.head_branch
    jobs_link = _jobs_link(ctx.settings, repo.full_name, branch)
    if change == "broken":
        state.status, state.since = "bad", at
        failing = [] if quiet else failing_jobs(ctx.session, [e["run_id"] for e in bad_now])
        names = ", ".join(sorted({e["workflow"] for e in bad_now}))
        who = f" by {info['author']}" if info.get("author") else ""
        context = {
            "tone": "bad",
            "headline": f"{repo.full_name}: {branch} is broken",
            "summary": f"{names} failed on {branch} at commit "
            f"{str(run.head_sha or '?')[:8]}{who}. It was green before.",
            "since": info["at"],
            "repo": repo.full_name,
            "branch": branch,
            "commit": run.head_sha,
            "author": run.actor_login,
            "facts": [
                ["Broken since", when(info["at"])],
                ["Run", _run_label(info)],
                *_commit_facts(info),
            ],
            "failing": failing,
            "links": _links(info, jobs_link),
        }
        detail["context"] = context
        set_detail(state, detail)
        if not quiet:
            state.last_alert_at = ctx.now
            ctx.emit(
                rule=rule,
                kind="broken",
                subject=subject,
                title=f"[cipulse] {repo.full_name}: {branch} is broken ({names} failed)",
                context=context,
                key=f"run{run.id}",
            )
        return
    if change == "fixed":
        broken_for = (at - state.since).total_seconds()
        since = iso(state.since)
        state.status, state.since = "ok", at
        first = (detail.get("context") or {}).get("facts", [])
        detail.pop("context", None)
        set_detail(state, detail)
        if quiet:
            return
        state.last_alert_at = ctx.now
        context = {
            "tone": "good",
            "headline": f"{repo.full_name}: {branch} is fixed",
            "summary": f"{branch} is green again after {span(broken_for)}: "
            f"{_run_label(info)} passed.",
            "since": since,
            "broken_for": broken_for,
            "repo": repo.full_name,
            "branch": branch,
            "commit": run.head_sha,
            "author": run.actor_login,
            "facts": [
                ["Broken for", span(broken_for)],
                ["Broken since", when(since)],
                *_commit_facts(info),
                *[["Broken by", f[1]] for f in first if f[0] == "Commit"][:1],
            ],
            "links": _links(info, jobs_link),
        }
        ctx.emit(
            rule=rule,
            kind="fixed",
            subject=subject,
            title=f"[cipulse] {repo.full_name}: {branch} is fixed after {span(broken_for)}",
            context=context,
            key=f"run{run.id}",
        )
        return
    set_detail(state, detail)


def _job_results(
    session: Session, repo: Repository, branch: str | None, name: str, before: datetime, n: int
) -> list[rules.Outcome]:
    rows = session.scalars(
        select(Job.conclusion)
        .join(WorkflowRun, WorkflowRun.id == Job.run_id)
        .where(
            WorkflowRun.repository_id == repo.id,
            WorkflowRun.head_branch == branch,
            WorkflowRun.created_at <= before,
            Job.name == name,
            Job.conclusion.in_(rules.BAD | rules.GOOD),
        )
        .order_by(WorkflowRun.created_at.desc(), Job.id.desc())
        .limit(n)
    ).all()
    return [r for r in (rules.outcome(c) for c in rows) if r is not None]


def _failure_rate(
    ctx: Pass, rule: AlertRule, run: WorkflowRun, repo: Repository, quiet: bool
) -> None:
    workflow = _workflow_name(ctx.session, run)
    if rules.outcome(run.conclusion) is None or not _applies(rule, run, repo, workflow):
        return
    p = rule.params
    names = ctx.session.scalars(
        select(Job.name).where(Job.run_id == run.id, Job.conclusion.in_(rules.BAD | rules.GOOD))
    ).all()
    info = _run_info(run, repo, workflow)
    for name in sorted(set(names)):
        results = _job_results(
            ctx.session, repo, run.head_branch, name, run.created_at, int(p.get("last_runs", 20))
        )
        if len(results) < int(p.get("min_runs", 5)):
            continue
        rate = rules.failure_rate(results)
        threshold = float(p.get("threshold_pct", 30))
        subject = f"{repo.full_name}@{run.head_branch} · {name}"
        at = _finished(run)
        state = ctx.state(rule, subject, at)
        change = rules.change(state.status, rate >= threshold)
        if change is None:
            continue
        state.status, state.since = ("bad" if change == "broken" else "ok"), at
        if quiet:
            continue
        state.last_alert_at = ctx.now
        verb = "reached" if change == "broken" else "is back under"
        context = {
            "tone": "bad" if change == "broken" else "good",
            "headline": f"{name}: failure rate {verb} {threshold:g} %",
            "summary": f"The job {name} on {repo.full_name}@{run.head_branch} failed "
            f"{rate:.0f} % of its last {len(results)} runs (threshold {threshold:g} %).",
            "since": iso(at),
            "repo": repo.full_name,
            "branch": run.head_branch,
            "facts": [
                ["Failure rate", f"{rate:.1f} % over {len(results)} runs"],
                ["Threshold", f"{threshold:g} %"],
                ["Latest run", _run_label(info)],
                *_commit_facts(info),
            ],
            "failing": failing_jobs(ctx.session, [run.id]) if change == "broken" else [],
            "links": _links(info, _jobs_link(ctx.settings, repo.full_name, run.head_branch)),
        }
        if change == "broken":
            set_detail(state, {"context": context})
        ctx.emit(
            rule=rule,
            kind=change,
            subject=subject,
            title=f"[cipulse] {name} on {repo.full_name}: failure rate {rate:.0f} %",
            context=context,
            key=f"run{run.id}",
        )


def _flaky_job(ctx: Pass, rule: AlertRule, run: WorkflowRun, repo: Repository, quiet: bool) -> None:
    if run.run_attempt <= 1:
        return
    workflow = _workflow_name(ctx.session, run)
    if not _applies(rule, run, repo, workflow):
        return
    earlier = select(WorkflowRun.id).where(
        WorkflowRun.github_id == run.github_id, WorkflowRun.run_attempt < run.run_attempt
    )
    failed_before = set(
        ctx.session.scalars(
            select(Job.name).where(Job.run_id.in_(earlier), Job.conclusion.in_(rules.BAD))
        )
    )
    passed_now = ctx.session.scalars(
        select(Job).where(Job.run_id == run.id, Job.conclusion.in_(rules.GOOD))
    ).all()
    quiet_days = float(rule.params.get("quiet_days", 14))
    at = _finished(run)
    info = _run_info(run, repo, workflow)
    for job in passed_now:
        if job.name not in failed_before:
            continue
        subject = f"{repo.full_name} · {workflow} / {job.name}"
        state = ctx.state(rule, subject, at)
        last = (state.detail or {}).get("last_flaky_at")
        new = last is None or datetime.fromisoformat(last) < at - timedelta(days=quiet_days)
        set_detail(state, {"last_flaky_at": iso(at)})
        state.since = at if new else state.since
        if not new or quiet:
            continue
        state.last_alert_at = ctx.now
        ctx.emit(
            rule=rule,
            kind="flaky",
            subject=subject,
            title=f"[cipulse] new flaky job: {job.name} ({repo.full_name})",
            context={
                "tone": "info",
                "headline": f"New flaky job: {job.name}",
                "summary": f"{job.name} in {workflow} failed, then passed when re-run "
                f"(attempt {run.run_attempt}) on the same commit"
                f"{' on ' + run.head_branch if run.head_branch else ''}.",
                "since": iso(at),
                "repo": repo.full_name,
                "branch": run.head_branch,
                "facts": [
                    ["Run", _run_label(info)],
                    ["Not flaky in", f"{quiet_days:g} days"],
                    *_commit_facts(info),
                ],
                "links": _links(info)
                + ([[f"Job {job.name}", job.html_url]] if job.html_url else []),
            },
            key=f"run{run.id}",
        )


def _duration(ctx: Pass, rule: AlertRule, run: WorkflowRun, repo: Repository, quiet: bool) -> None:
    workflow = _workflow_name(ctx.session, run)
    if rules.outcome(run.conclusion) != "good" or not _applies(rule, run, repo, workflow):
        return
    p = rule.params
    period = timedelta(days=float(p.get("period_days", 7)))
    end = _finished(run)
    same_workflow = (
        WorkflowRun.workflow_id == run.workflow_id
        if run.workflow_id is not None
        else WorkflowRun.name == run.name
    )
    rows = ctx.session.execute(
        select(WorkflowRun.run_started_at, WorkflowRun.created_at, WorkflowRun.updated_at).where(
            WorkflowRun.repository_id == repo.id,
            WorkflowRun.head_branch == run.head_branch,
            same_workflow,
            WorkflowRun.conclusion.in_(rules.GOOD),
            and_(WorkflowRun.updated_at > end - 2 * period, WorkflowRun.updated_at <= end),
        )
    ).all()
    previous: list[float] = []
    current: list[float] = []
    for started, created, finished in rows:
        if finished is None:
            continue
        seconds = (finished - (started or created)).total_seconds()
        (current if finished > end - period else previous).append(seconds)
    q = float(p.get("percentile", 95))
    found = rules.regression(previous, current, q=q, min_runs=int(p.get("min_runs", 5)))
    if found is None:
        return
    before, now_p, pct = found
    threshold = float(p.get("threshold_pct", 20))
    subject = f"{repo.full_name}@{run.head_branch} · {workflow}"
    state = ctx.state(rule, subject, end)
    # Back to normal only under half the threshold, so a value near it does not flap.
    bad = pct > threshold if state.status != "bad" else pct > threshold / 2
    change = rules.change(state.status, bad)
    if change is None:
        return
    state.status, state.since = ("bad" if change == "broken" else "ok"), end
    if quiet:
        return
    state.last_alert_at = ctx.now
    days = f"{float(p.get('period_days', 7)):g}"
    info = _run_info(run, repo, workflow)
    word = "slower" if change == "broken" else "back to normal"
    context = {
        "tone": "bad" if change == "broken" else "good",
        "headline": f"{workflow} on {repo.full_name}: p{q:g} duration {word}",
        "summary": f"The p{q:g} duration of {workflow} on {run.head_branch} over the last "
        f"{days} days is {span(now_p)}, {pct:+.0f} % against the {days} days before "
        f"({span(before)}); the threshold is {threshold:g} %.",
        "since": iso(end),
        "repo": repo.full_name,
        "branch": run.head_branch,
        "facts": [
            [f"p{q:g} now", span(now_p)],
            [f"p{q:g} before", span(before)],
            ["Change", f"{pct:+.1f} %"],
            ["Runs compared", f"{len(current)} and {len(previous)}"],
        ],
        "links": _links(info),
    }
    if change == "broken":
        set_detail(state, {"context": context})
    ctx.emit(
        rule=rule,
        kind=change,
        subject=subject,
        title=f"[cipulse] {workflow} ({repo.full_name}) p{q:g} duration {pct:+.0f} %",
        context=context,
        key=f"run{run.id}",
    )


HANDLERS: dict[str, Callable[[Pass, AlertRule, WorkflowRun, Repository, bool], None]] = {
    "branch": _branch,
    "failure_rate": _failure_rate,
    "flaky_job": _flaky_job,
    "duration": _duration,
}
