"""The rules on data that does not come from GitHub runs: pushed pipelines (design E) and
flaky tests in the JUnit reports.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from cipulse.alerts import rules
from cipulse.alerts.messages import span, when
from cipulse.alerts.passes import Pass, iso, set_detail
from cipulse.models import (
    AlertRule,
    PipelineRun,
)

log = logging.getLogger(__name__)

CHECKED = "*checked*"  # a rule-level state row: when flaky tests were last looked at
FLAKY_TEST_EVERY = timedelta(minutes=5)

# --- pushed pipelines (design E) ------------------------------------------------------------


def pipeline(ctx: Pass, rule: AlertRule, run: PipelineRun, quiet: bool) -> None:
    p = rule.params
    name = run.pipeline.name
    result = rules.pipeline_outcome(run.status)
    if result is None or not rules.name_matches(p.get("pipelines", []), name):
        return
    if p.get("branches") and not rules.branch_matches(p["branches"], run.branch, []):
        return
    subject = f"{name}@{run.branch}" if run.branch else name
    at = run.finished_at or run.started_at
    state = ctx.state(rule, subject, at)
    detail = dict(state.detail or {})
    info = {
        "workflow": name,
        "run_id": run.id,
        "commit": run.commit_sha,
        "author": run.triggered_by,
        "at": iso(at),
        "duration_sec": run.duration_sec,
    }
    order = [iso(run.started_at), run.id, 1]
    if not rules.remember_latest(detail, "pipeline", order, result, info):
        return
    change = rules.change(state.status, result == "bad")
    on = f" on {run.branch}" if run.branch else ""
    sha = f" ({run.commit_sha[:8]})" if run.commit_sha else ""
    facts = [
        ["Branch", run.branch or "-"],
        ["Commit", run.commit_sha or "-"],
        ["Triggered by", run.triggered_by or "-"],
        ["Started", when(iso(run.started_at))],
        ["Finished", when(iso(run.finished_at))],
        ["Duration", span(run.duration_sec) if run.duration_sec is not None else "unknown"],
    ]
    links = [["Dashboard", f"{ctx.settings.base_url}/"]]
    if change == "broken":
        state.status, state.since = "bad", at
        context = {
            "tone": "bad",
            "headline": f"{name} failed{on}",
            "summary": f"The pipeline {name!r} failed{on}"
            f"{' at commit ' + run.commit_sha[:8] if run.commit_sha else ''}"
            f"{' (triggered by ' + run.triggered_by + ')' if run.triggered_by else ''}.",
            "since": iso(at),
            "branch": run.branch,
            "commit": run.commit_sha,
            "author": run.triggered_by,
            "facts": facts,
            "links": links,
        }
        detail["context"] = context
        set_detail(state, detail)
        if not quiet:
            state.last_alert_at = ctx.now
            ctx.emit(
                rule=rule,
                kind="broken",
                subject=subject,
                title=f"[cipulse] {name} failed{on}{sha}",
                context=context,
                key=f"pipeline{run.id}",
            )
        return
    if change == "fixed":
        broken_for = (at - state.since).total_seconds()
        since = iso(state.since)
        state.status, state.since = "ok", at
        detail.pop("context", None)
        set_detail(state, detail)
        if quiet:
            return
        state.last_alert_at = ctx.now
        ctx.emit(
            rule=rule,
            kind="fixed",
            subject=subject,
            title=f"[cipulse] {name} is fixed{on} after {span(broken_for)}",
            context={
                "tone": "good",
                "headline": f"{name} is fixed{on}",
                "summary": f"The pipeline {name!r} passed again{on} after {span(broken_for)}.",
                "since": since,
                "broken_for": broken_for,
                "branch": run.branch,
                "commit": run.commit_sha,
                "author": run.triggered_by,
                "facts": [["Broken for", span(broken_for)], *facts],
                "links": links,
            },
            key=f"pipeline{run.id}",
        )
        return
    set_detail(state, detail)


# --- flaky tests (JUnit reports) -------------------------------------------------------------


def flaky_tests(ctx: Pass, rule: AlertRule, horizon: datetime) -> None:
    """Tests newly flaky in the stored JUnit reports; looked at every few minutes, not every
    pass, since reports arrive on their own (pushed or from artifacts), not with runs."""
    from cipulse.testreports import service as testreports

    marker = ctx.state(rule, CHECKED, ctx.now)
    checked = (marker.detail or {}).get("checked_at")
    if checked and datetime.fromisoformat(checked) > ctx.now - FLAKY_TEST_EVERY:
        return
    set_detail(marker, {"checked_at": iso(ctx.now)})
    quiet_days = float(rule.params.get("quiet_days", 14))
    projects = rule.params.get("projects") or [None]
    for project in projects:
        found = testreports.flaky_tests(
            ctx.session, since=ctx.now - timedelta(days=quiet_days), project=project
        )
        for test in found:
            name = ".".join(p for p in (test.classname or test.suite, test.name) if p)
            subject = f"{test.project or 'tests'} · {name}"
            state = ctx.state(rule, subject, test.last_flaky_at)
            last = (state.detail or {}).get("last_flaky_at")
            if last is not None and datetime.fromisoformat(last) >= test.last_flaky_at:
                continue  # nothing newer than what was seen
            new = last is None or datetime.fromisoformat(last) < test.last_flaky_at - timedelta(
                days=quiet_days
            )
            set_detail(state, {"last_flaky_at": iso(test.last_flaky_at)})
            if not new or test.last_flaky_at < horizon:
                continue
            state.since = state.last_alert_at = test.last_flaky_at
            url = test.url if test.url.startswith("http") else ctx.settings.base_url + test.url
            evidence = []
            if test.retry_passes:
                evidence.append(f"passed after a failing retry in {test.retry_passes} report(s)")
            if test.flaky_commits:
                evidence.append(f"failed and passed on {test.flaky_commits} commit(s)")
            ctx.emit(
                rule=rule,
                kind="flaky",
                subject=subject,
                title=f"[cipulse] new flaky test: {name}",
                context={
                    "tone": "info",
                    "headline": f"New flaky test: {test.name}",
                    "summary": f"The test {name} is flaky: {' and '.join(evidence) or 'flaky'}"
                    f", and was not in the {quiet_days:g} days before.",
                    "since": iso(test.last_flaky_at),
                    "facts": [
                        ["Project", test.project or "-"],
                        ["Test", name],
                        ["File", test.file or "-"],
                        ["Last flaky", when(iso(test.last_flaky_at))],
                    ],
                    "links": [["Test history", url]],
                },
                key=f"at{iso(test.last_flaky_at)}",
            )
