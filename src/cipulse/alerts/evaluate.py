"""The evaluator: takes in newly finished runs and turns state changes into alerts.

It reads what sync, webhooks and ingest stored and never hooks into their writes. A finished run
is claimed by inserting its ``alert_seen_run`` row; in the same transaction the rules update
their per-subject state and write each alert with one delivery per channel (the outbox). One
evaluator runs at a time (a row lock on ``alert_lease``), so transitions keep their order even
with several processes. Runs that finished before the lookback window only update the state:
the first start on a month of history builds the state silently instead of alerting.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cipulse.alerts import checks, checks_pushed
from cipulse.alerts.messages import span
from cipulse.alerts.passes import Pass, Result, iso
from cipulse.models import (
    AlertChannel,
    AlertLease,
    AlertRule,
    AlertSeenRun,
    AlertState,
    PipelineRun,
    Repository,
    WorkflowRun,
)
from cipulse.settings import Settings

log = logging.getLogger(__name__)
__all__ = ["BATCH", "Result", "evaluate"]

LEASE = "evaluator"
BATCH = 500
# A run whose jobs are not stored yet waits this long for them (webhooks may store the run first).
JOBS_GRACE = timedelta(minutes=3)
GITHUB_KINDS = ("branch", "failure_rate", "flaky_job", "duration")
RECENT = timedelta(days=3)


def _lock(session: Session, now: datetime, holder: str) -> datetime:
    """Serialise evaluators (the UPDATE holds the row until this transaction ends) and answer
    from when runs are looked at: ``RECENT`` before the previous pass, or before now at first."""
    lease = update(AlertLease).where(AlertLease.name == LEASE)
    if session.execute(lease.values(claimed_by=holder)).rowcount == 0:  # type: ignore[attr-defined]
        try:
            with session.begin_nested():
                session.execute(insert(AlertLease).values(name=LEASE, claimed_by=holder))
        except IntegrityError:
            session.execute(lease.values(claimed_by=holder))
    previous = session.scalar(select(AlertLease.claimed_until).where(AlertLease.name == LEASE))
    session.execute(lease.values(claimed_until=now))
    return min(previous or now, now) - RECENT


def evaluate(session: Session, *, settings: Settings, now: datetime, holder: str) -> Result:
    """One pass: new GitHub runs, new pushed runs, then reminders. The caller commits."""
    since = _lock(session, now, holder)
    all_rules = list(session.scalars(select(AlertRule).where(AlertRule.enabled.is_(True))))
    channels = list(session.scalars(select(AlertChannel).order_by(AlertChannel.id)))
    ctx = Pass(session=session, settings=settings, now=now, channels=channels)
    horizon = now - timedelta(hours=settings.alert_lookback_hours)

    github_rules = [r for r in all_rules if r.kind in GITHUB_KINDS]
    repos: dict[int, Repository] = {}
    for run in _claim_github_runs(session, now, since):
        ctx.result.runs += 1
        if not github_rules:
            continue
        repo = repos.get(run.repository_id) or session.get_one(Repository, run.repository_id)
        repos[repo.id] = repo
        quiet = (run.updated_at or run.created_at) < horizon
        for rule in github_rules:
            # Window rules (rates, durations, flakiness) are computed afresh from the history
            # when a recent run comes; an old run only has to keep the branch state right.
            if quiet and rule.kind in checks.WINDOW_KINDS:
                continue
            checks.HANDLERS[rule.kind](ctx, rule, run, repo, quiet)

    pipeline_rules = [r for r in all_rules if r.kind == "pipeline"]
    for prun in _claim_pipeline_runs(session, since):
        ctx.result.runs += 1
        quiet = (prun.finished_at or prun.started_at) < horizon
        for rule in pipeline_rules:
            checks_pushed.pipeline(ctx, rule, prun, quiet)

    for rule in all_rules:
        if rule.kind == "flaky_test":
            checks_pushed.flaky_tests(ctx, rule, horizon)
    _reminders(ctx, all_rules)
    return ctx.result


# --- claiming runs -------------------------------------------------------------------------


def _claim_github_runs(session: Session, now: datetime, since: datetime) -> list[WorkflowRun]:
    """Finished runs not taken in yet, updated since ``since``: a pass stays cheap however long
    the history grows. Older runs (a first start on a month of history, a run synced late) are
    never looked at; the newest run of each workflow says enough about a branch's state."""
    seen = exists().where(AlertSeenRun.source == "github", AlertSeenRun.run_id == WorkflowRun.id)
    stmt = select(WorkflowRun).where(
        WorkflowRun.status == "completed",
        func.coalesce(WorkflowRun.updated_at, WorkflowRun.created_at) >= since,
    )
    runs = list(
        session.scalars(
            stmt.where(~seen)
            .where(
                or_(
                    WorkflowRun.jobs_synced_for.is_not(None),
                    WorkflowRun.updated_at < now - JOBS_GRACE,
                    WorkflowRun.updated_at.is_(None),
                )
            )
            .order_by(WorkflowRun.created_at, WorkflowRun.github_id, WorkflowRun.run_attempt)
            .limit(BATCH)
        )
    )
    if runs:
        session.execute(
            insert(AlertSeenRun),
            [{"source": "github", "run_id": r.id, "seen_at": now} for r in runs],
        )
    return runs


def _claim_pipeline_runs(session: Session, since: datetime) -> list[PipelineRun]:
    seen = exists().where(AlertSeenRun.source == "pipeline", AlertSeenRun.run_id == PipelineRun.id)
    recent = or_(  # both columns are indexed: a pass reads only the recent runs
        PipelineRun.finished_at >= since,
        and_(PipelineRun.finished_at.is_(None), PipelineRun.started_at >= since),
    )
    runs = list(
        session.scalars(
            select(PipelineRun)
            .where(PipelineRun.status.in_(("success", "failure")), recent, ~seen)
            .order_by(PipelineRun.started_at, PipelineRun.id)
            .limit(BATCH)
        )
    )
    if runs:
        session.execute(
            insert(AlertSeenRun),
            [{"source": "pipeline", "run_id": r.id} for r in runs],
        )
    return runs


# --- reminders -------------------------------------------------------------------------------


def _reminders(ctx: Pass, active: list[AlertRule]) -> None:
    by_id = {r.id: r for r in active}
    default = ctx.settings.alert_remind_after_minutes
    states = ctx.session.scalars(
        select(AlertState).where(
            AlertState.status == "bad",
            AlertState.last_alert_at.is_not(None),
            AlertState.rule_id.in_(list(by_id)),
        )
    ).all()
    for state in states:
        rule = by_id[state.rule_id]
        minutes = rule.remind_after_minutes if rule.remind_after_minutes is not None else default
        if rule.kind in ("flaky_job", "flaky_test") or minutes <= 0 or state.last_alert_at is None:
            continue
        if state.last_alert_at + timedelta(minutes=minutes) > ctx.now:
            continue
        broken_for = (ctx.now - state.since).total_seconds()
        base = dict((state.detail or {}).get("context") or {})
        headline = base.get("headline", state.subject)
        context = {
            **base,
            "tone": "bad",
            "headline": f"Still: {headline}",
            "summary": f"Still not fixed after {span(broken_for)}. {base.get('summary', '')}",
            "broken_for": broken_for,
            "links": [link for link in base.get("links", []) if link[0] != "Alert history"],
        }
        ctx.emit(
            rule=rule,
            kind="reminder",
            subject=state.subject,
            title=f"[cipulse] still broken after {span(broken_for)}: {headline}",
            context=context,
            key=f"at{iso(state.last_alert_at)}",
        )
        state.last_alert_at = ctx.now
