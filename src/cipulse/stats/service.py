"""The analytics over synced GitHub runs (docs/metrics.md), read from the daily rollups.

A window is a run of whole UTC days. Counts and histograms of clean slices come from the rollup
tables; hours (or whole days) marked dirty since their rollup are recomputed from raw rows on
the fly with the same function the rollup task uses, so every number is exact whatever the
task's progress. Today and yesterday are stored per hour, so a read right after a webhook
recomputes one hour, not the day.
Metrics that depend on order across days (MTTR, broken since, time to green, flaky commits)
read the raw rows of the window.
"""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from cipulse.models import JobDaily, QueueDaily, RunDaily
from cipulse.models.rollup import WHOLE_DAY
from cipulse.stats import compute
from cipulse.stats import repository as repo
from cipulse.stats.repository import Scope
from cipulse.stats.schemas import (
    BranchHealth,
    Breakdown,
    BreakdownRow,
    BrokenWorkflow,
    Compare,
    CompareRow,
    DayPoint,
    DurationRow,
    Durations,
    Flaky,
    FlakyJob,
    JobFailure,
    JobRate,
    JobRates,
    Kpis,
    MttrRow,
    Overview,
    Period,
    QueueRow,
    QueueTimes,
    Rates,
    Recovery,
    RunItem,
    TimeToGreenRow,
    TrendOut,
)

RECENT = 20
BRANCH_SCAN = 400  # newest runs of a branch read at most to find each workflow's last success
BRANCH_PAGE = 50


@dataclass(frozen=True)
class Window:
    first: date
    last: date

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def previous(self) -> Window:
        return Window(self.first - timedelta(days=self.days), self.first - timedelta(days=1))

    def period(self) -> Period:
        return Period(first_day=self.first, last_day=self.last, days=self.days)

    def all_days(self) -> list[date]:
        return compute.days_between(self.first, self.last)


def last_days(days: int, now: datetime) -> Window:
    today = repo.utc_day(now)
    return Window(today - timedelta(days=days - 1), today)


# -- rollups, stored plus folded ------------------------------------------------------------


# Slices folded in from raw rows, keyed by their dirty marks' times: a write to the slice moves
# its mark, so a hit is never stale, and successive reads of an hour being written to share one
# recomputation instead of paying for it each time.
_FOLDED: OrderedDict[tuple[Any, ...], compute.DayRollup] = OrderedDict()
FOLDED_KEEP = 256
_FOLDED_LOCK = threading.Lock()


def _remember(key: tuple[Any, ...], rollup: compute.DayRollup) -> None:
    with _FOLDED_LOCK:
        _FOLDED[key] = rollup
        while len(_FOLDED) > FOLDED_KEEP:
            _FOLDED.popitem(last=False)


class Rollups:
    """Reads rollup rows of a scope; dirty days are computed from raw rows once per request."""

    def __init__(self, session: Session, scope: Scope) -> None:
        self.session = session
        self.scope = scope
        self._url = str(session.get_bind().engine.url)

    def _folded(
        self, window: Window, *, jobs: bool = True, queues: bool = False, lean: bool = False
    ) -> list[tuple[int, date, compute.DayRollup]]:
        """Dirty slices of the window computed from raw rows (runs only unless ``jobs``).

        A dirty hour of a day stored per hour is one slice; a day stored whole (or marked
        whole) is recomputed entirely, versioned by all of its marks.
        """
        marks: dict[tuple[int, date], dict[int, datetime]] = defaultdict(dict)
        for repo_id, day, hour, marked_at in repo.dirty_marks(
            self.session, self.scope, window.first, window.last
        ):
            marks[(repo_id, day)][hour] = marked_at
        whole = repo.whole_days(self.session, marks)
        out = []
        for (repo_id, day), hours in marks.items():
            slices: list[tuple[int, Any]]
            if WHOLE_DAY in hours or (repo_id, day) in whole:
                slices = [(WHOLE_DAY, tuple(sorted(hours.items())))]
            else:
                slices = sorted(hours.items())
            for hour, version in slices:
                key = (self._url, repo_id, day, hour, version, jobs, queues, lean)
                rollup = _FOLDED.get(key)
                if rollup is None:
                    raw = repo.raw_day(self.session, repo_id, day, hour=hour, jobs=jobs, lean=lean)
                    rollup = compute.rollup_day(*raw, queues=queues)
                    _remember(key, rollup)
                out.append((repo_id, day, rollup))
        return out

    def _wanted(self, workflow: str, branch: str) -> bool:
        s = self.scope
        return (s.branch is None or s.branch == branch) and (
            s.workflow is None or s.workflow == workflow
        )

    def runs(
        self, window: Window, group: Sequence[str], *, hist: bool = False
    ) -> dict[tuple[Any, ...], compute.RunAgg]:
        """RunAgg per ``group`` (of repository_id, day, workflow_name, branch)."""
        out: dict[tuple[Any, ...], compute.RunAgg] = defaultdict(compute.RunAgg)
        args: dict[str, Any] = {"scope": self.scope, "first": window.first, "last": window.last}
        for row in repo.summed(
            self.session, RunDaily, group=group, counts=compute.COUNT_FIELDS_RUN, **args
        ):
            agg = out[tuple(row[g] for g in group)]
            for name in compute.COUNT_FIELDS_RUN:
                setattr(agg, name, getattr(agg, name) + int(row[name] or 0))
        if hist:
            for row in repo.hist_rows(
                self.session, RunDaily, group=group, column="durations", **args
            ):
                compute.merge_hist(out[tuple(row[g] for g in group)].durations, row["durations"])
        for repo_id, day, rollup in self._folded(window, jobs=False):
            for (wf, br), agg in rollup.runs.items():
                if self._wanted(wf, br):
                    values = {"repository_id": repo_id, "day": day, "workflow_name": wf}
                    values["branch"] = br
                    out[tuple(values[g] for g in group)].add(agg)
        return dict(out)

    def jobs(
        self, window: Window, group: Sequence[str], *, hist: bool = False
    ) -> dict[tuple[Any, ...], compute.JobAgg]:
        out: dict[tuple[Any, ...], compute.JobAgg] = defaultdict(compute.JobAgg)
        args: dict[str, Any] = {"scope": self.scope, "first": window.first, "last": window.last}
        for row in repo.summed(
            self.session, JobDaily, group=group, counts=compute.COUNT_FIELDS_JOB, **args
        ):
            agg = out[tuple(row[g] for g in group)]
            for name in compute.COUNT_FIELDS_JOB:
                setattr(agg, name, getattr(agg, name) + int(row[name] or 0))
        if hist:
            for row in repo.hist_rows(
                self.session, JobDaily, group=group, column="durations", **args
            ):
                compute.merge_hist(out[tuple(row[g] for g in group)].durations, row["durations"])
        for repo_id, day, rollup in self._folded(window, lean=not hist):
            for (wf, job, br), agg in rollup.jobs.items():
                if self._wanted(wf, br):
                    values = {"repository_id": repo_id, "day": day, "workflow_name": wf}
                    values.update(job_name=job, branch=br)
                    out[tuple(values[g] for g in group)].add(agg)
        return dict(out)

    def queues(self, window: Window) -> dict[tuple[str, str], compute.QueueAgg]:
        out: dict[tuple[str, str], compute.QueueAgg] = defaultdict(compute.QueueAgg)
        scope = Scope(repo_ids=self.scope.repo_ids)
        for row in repo.hist_rows(
            self.session,
            QueueDaily,
            group=("kind", "value", "jobs"),
            column="waits",
            scope=scope,
            first=window.first,
            last=window.last,
        ):
            agg = out[(row["kind"], row["value"])]
            agg.jobs += int(row["jobs"])
            compute.merge_hist(agg.waits, row["waits"])
        for _repo_id, _day, rollup in self._folded(window, queues=True):
            for key, q in rollup.queues.items():
                out[key].add(q)
        return dict(out)

    def pending(self, window: Window) -> int:
        marks = repo.dirty_marks(self.session, self.scope, window.first, window.last)
        return len({(repo_id, day) for repo_id, day, _hour, _at in marks})


def rates(agg: compute.RunAgg | compute.JobAgg) -> dict[str, Any]:
    first_counted = agg.first_success + agg.first_failure
    final_counted = agg.final_success + agg.final_failure
    return {
        "success": agg.success,
        "failure": agg.failure,
        "cancelled": agg.cancelled,
        "skipped": agg.skipped,
        "failure_rate": compute.rate(agg.failure, agg.success + agg.failure),
        "first_success": agg.first_success,
        "first_failure": agg.first_failure,
        "first_failure_rate": compute.rate(agg.first_failure, first_counted),
        "final_success": agg.final_success,
        "final_failure": agg.final_failure,
        "final_failure_rate": compute.rate(agg.final_failure, final_counted),
    }


def _trend_out(t: compute.Trend) -> TrendOut:
    return TrendOut(**t.__dict__)


# -- overview -------------------------------------------------------------------------------


def span_daily(rollups: Rollups, window: Window) -> dict[tuple[Any, ...], compute.RunAgg]:
    """Per day, the window and the previous one: what the KPIs and the daily chart read."""
    return rollups.runs(Window(window.previous().first, window.last), ("day",), hist=True)


def kpis(
    rollups: Rollups, window: Window, daily: dict[tuple[Any, ...], compute.RunAgg] | None = None
) -> Kpis:
    """Totals of a window with trends against the previous equal window."""
    prev = window.previous()
    if daily is None:
        daily = span_daily(rollups, window)
    now_agg, prev_agg = compute.RunAgg(), compute.RunAgg()
    for (day,), agg in daily.items():
        (now_agg if day >= window.first else prev_agg).add(agg)
    prev_days = [daily[(d,)].durations for d in prev.all_days() if (d,) in daily]
    base_p50, base_p95 = compute.duration_baselines(prev_days)
    counted = now_agg.success + now_agg.failure
    values = rates(now_agg)
    p50 = compute.percentile(now_agg.durations, 50)
    p95 = compute.percentile(now_agg.durations, 95)
    n_dur, prev_n_dur = sum(now_agg.durations.values()), sum(prev_agg.durations.values())

    def rate_trend(name: str, part: str, whole: tuple[str, str]) -> compute.Trend:
        cur_whole = sum(getattr(now_agg, w) for w in whole)
        prev_whole = sum(getattr(prev_agg, w) for w in whole)
        return compute.trend(
            compute.rate(getattr(now_agg, part), cur_whole),
            compute.rate(getattr(prev_agg, part), prev_whole),
            samples=cur_whole,
            baseline_samples=prev_whole,
            higher_is_better=False,
            relative=False,
        )

    trends = {
        "failure_rate": rate_trend("failure_rate", "failure", ("success", "failure")),
        "first_failure_rate": rate_trend(
            "first_failure_rate", "first_failure", ("first_success", "first_failure")
        ),
        "final_failure_rate": rate_trend(
            "final_failure_rate", "final_failure", ("final_success", "final_failure")
        ),
        "runs_per_day": compute.trend(
            now_agg.runs / window.days,
            prev_agg.runs / prev.days,
            samples=now_agg.runs,
            baseline_samples=prev_agg.runs,
            higher_is_better=None,
            relative=True,
        ),
        "duration_p50": compute.trend(
            p50,
            base_p50,
            samples=n_dur,
            baseline_samples=prev_n_dur,
            higher_is_better=False,
            relative=True,
        ),
        "duration_p95": compute.trend(
            p95,
            base_p95,
            samples=n_dur,
            baseline_samples=prev_n_dur,
            higher_is_better=False,
            relative=True,
        ),
        "minutes_lost_to_retries": compute.trend(
            now_agg.retried_seconds / 60,
            prev_agg.retried_seconds / 60,
            samples=now_agg.runs,
            baseline_samples=prev_agg.runs,
            higher_is_better=False,
            relative=True,
        ),
    }
    return Kpis(
        **values,
        runs=now_agg.runs,
        runs_per_day=round(now_agg.runs / window.days, 2),
        success_rate=compute.rate(now_agg.success, counted),
        duration_p50=p50,
        duration_p95=p95,
        retried_attempts=now_agg.retried,
        minutes_lost_to_retries=round(now_agg.retried_seconds / 60, 2),
        trends={k: _trend_out(v) for k, v in trends.items()},
    )


def daily_points(
    rollups: Rollups, window: Window, per_day: dict[tuple[Any, ...], compute.RunAgg] | None = None
) -> list[DayPoint]:
    if per_day is None:
        per_day = rollups.runs(window, ("day",), hist=True)
    out = []
    for day in window.all_days():
        agg = per_day.get((day,), compute.RunAgg())
        out.append(
            DayPoint(
                day=day,
                runs=agg.runs,
                success=agg.success,
                failure=agg.failure,
                cancelled=agg.cancelled,
                skipped=agg.skipped,
                failure_rate=compute.rate(agg.failure, agg.success + agg.failure),
                duration_p50=compute.percentile(agg.durations, 50),
                duration_p95=compute.percentile(agg.durations, 95),
            )
        )
    return out


def _run_item(row: Any) -> RunItem:
    took = (
        compute.seconds(row.run_started_at, row.updated_at) if row.status == "completed" else None
    )
    return RunItem(
        repository=row.repository,
        workflow=row.workflow_name or "",
        branch=row.head_branch,
        run_id=row.github_id,
        run_number=row.run_number,
        attempt=row.run_attempt,
        status=row.status,
        conclusion=row.conclusion,
        head_sha=row.head_sha,
        created_at=row.created_at,
        duration_sec=took,
        url=row.html_url,
    )


def overview(session: Session, *, scope: Scope, window: Window) -> Overview:
    rollups = Rollups(session, scope)
    per_day = span_daily(rollups, window)
    return Overview(
        period=window.period(),
        previous=window.previous().period(),
        kpis=kpis(rollups, window, per_day),
        daily=daily_points(rollups, window, per_day),
        branches=branch_health(session, scope=scope),
        in_progress=[_run_item(r) for r in repo.in_progress(session, scope, limit=RECENT)],
        recent=[_run_item(r) for r in repo.recent_runs(session, scope, limit=RECENT)],
        pending_days=rollups.pending(window),
    )


# -- breakdowns, jobs, durations, queues ----------------------------------------------------

BREAKDOWNS = ("repository", "workflow", "branch")


def breakdown(session: Session, *, scope: Scope, window: Window, by: str) -> Breakdown:
    column = {"repository": "repository_id", "workflow": "workflow_name", "branch": "branch"}[by]
    aggs = Rollups(session, scope).runs(window, (column,))
    names = repo.repo_names(session) if by == "repository" else {}
    rows = [
        BreakdownRow(key=str(names.get(key, key)), runs=agg.runs, **rates(agg))
        for (key,), agg in aggs.items()
    ]
    rows.sort(key=lambda r: (-(r.failure_rate or 0), r.key))
    return Breakdown(period=window.period(), by=by, rows=rows)


def job_rates(
    session: Session, *, scope: Scope, window: Window, durations: bool = False
) -> JobRates:
    """Failure rate per (workflow, job) with its daily history and in-run flaky count."""
    rollups = Rollups(session, scope)
    per_day = rollups.jobs(window, ("workflow_name", "job_name", "day"))
    if durations:
        totals = rollups.jobs(window, ("workflow_name", "job_name"), hist=True)
    else:
        totals = defaultdict(compute.JobAgg)
        for (wf, name, _day), agg in per_day.items():
            totals[(wf, name)].add(agg)
    days = window.all_days()
    jobs = []
    for (wf, name), agg in totals.items():
        if agg.success + agg.failure == 0 and agg.executions == 0:
            continue
        daily = [per_day.get((wf, name, d)) for d in days]
        jobs.append(
            JobRate(
                workflow=wf,
                job=name,
                executions=agg.executions,
                flaky_runs=agg.flaky_runs,
                duration_p50=compute.percentile(agg.durations, 50) if durations else None,
                duration_p95=compute.percentile(agg.durations, 95) if durations else None,
                daily_failure_rate=[
                    compute.rate(a.failure, a.success + a.failure) if a else None for a in daily
                ],
                daily_failures=[a.failure if a else 0 for a in daily],
                **rates(agg),
            )
        )
    jobs.sort(key=lambda j: (-(j.failure_rate or 0), j.workflow, j.job))
    failures = [
        JobFailure(
            repository=r.repository,
            workflow=r.workflow_name or "",
            job=r.name,
            conclusion=r.conclusion,
            branch=r.head_branch,
            run_number=r.run_number,
            attempt=r.run_attempt,
            created_at=r.created_at,
            run_url=r.run_url,
            job_url=r.job_url,
        )
        for r in recent_failures(session, scope=scope, window=window)
    ]
    return JobRates(period=window.period(), days=days, jobs=jobs, recent_failures=failures)


def recent_failures(session: Session, *, scope: Scope, window: Window) -> list[Any]:
    """The newest failed jobs of the window's last 7 days, one day at a time (newest first)."""
    rows: list[Any] = []
    day = window.last
    while len(rows) < RECENT and day >= max(window.first, window.last - timedelta(days=6)):
        rows += repo.recent_job_failures(session, scope, day, day, limit=RECENT - len(rows))
        day -= timedelta(days=1)
    return rows


def durations(session: Session, *, scope: Scope, window: Window) -> Durations:
    """p50/p95 per workflow and job, against the previous window's daily baselines."""
    rollups = Rollups(session, scope)
    span = Window(window.previous().first, window.last)
    runs = rollups.runs(span, ("workflow_name", "day"), hist=True)
    jobs = rollups.jobs(span, ("workflow_name", "job_name", "day"), hist=True)

    def rows(per_day: dict[tuple[Any, ...], Any], width: int) -> list[DurationRow]:
        grouped: dict[tuple[Any, ...], dict[date, compute.Hist]] = defaultdict(dict)
        for key, agg in per_day.items():
            grouped[key[:width]][key[width]] = agg.durations
        out = []
        for key, by_day in grouped.items():
            now: compute.Hist = Counter()
            before: compute.Hist = Counter()
            prev_days = []
            for day, hist in by_day.items():
                if day >= window.first:
                    now.update(hist)
                else:
                    before.update(hist)
                    prev_days.append(hist)
            n, prev_n = sum(now.values()), sum(before.values())
            if not n and not prev_n:
                continue
            base_p50, base_p95 = compute.duration_baselines(prev_days)
            p50, p95 = compute.percentile(now, 50), compute.percentile(now, 95)
            common: dict[str, Any] = {"samples": n, "baseline_samples": prev_n}
            common["higher_is_better"] = False
            out.append(
                DurationRow(
                    workflow=key[0],
                    job=key[1] if width == 2 else None,
                    samples=n,
                    p50=p50,
                    p95=p95,
                    p50_trend=_trend_out(compute.trend(p50, base_p50, relative=True, **common)),
                    p95_trend=_trend_out(compute.trend(p95, base_p95, relative=True, **common)),
                )
            )
        out.sort(key=lambda r: (-(r.p95 or 0), r.workflow, r.job or ""))
        return out

    return Durations(period=window.period(), workflows=rows(runs, 1), jobs=rows(jobs, 2))


def queue_times(session: Session, *, scope: Scope, window: Window) -> QueueTimes:
    aggs = Rollups(session, scope).queues(window)
    rows = [
        QueueRow(
            kind=kind,
            value=value,
            jobs=agg.jobs,
            p50=compute.percentile(agg.waits, 50),
            p95=compute.percentile(agg.waits, 95),
        )
        for (kind, value), agg in aggs.items()
    ]
    rows.sort(key=lambda r: (r.kind, -(r.p95 or 0), r.value))
    return QueueTimes(period=window.period(), rows=rows)


# -- order-dependent metrics from raw rows ---------------------------------------------------


def _counted(row: Any) -> str | None:
    kind = compute.outcome(row.status, row.conclusion)
    return kind if kind in ("success", "failure") else None


def recovery(session: Session, *, scope: Scope, window: Window) -> Recovery:
    """MTTR per workflow and branch, time to green per commit, branches broken now."""
    rows = repo.window_runs(session, scope, window.first, window.last)
    names = repo.repo_names(session)
    streams: dict[tuple[int, str, str | None], list[tuple[datetime, str]]] = defaultdict(list)
    commits: dict[tuple[int, str, str], list[Any]] = defaultdict(list)
    for r in rows:
        kind = _counted(r)
        if kind is not None and r.updated_at is not None:
            streams[(r.repository_id, r.workflow_name or "", r.head_branch)].append(
                (r.updated_at, kind)
            )
        if r.head_sha:
            commits[(r.repository_id, r.workflow_name or "", r.head_sha)].append(r)
    mttr = []
    for (repo_id, wf, branch), events in streams.items():
        events.sort()
        incidents = recovered = failed = 0
        start: datetime | None = None
        for at, kind in events:
            if kind == "failure" and start is None:
                start, incidents = at, incidents + 1
            elif kind == "success" and start is not None:
                failed += compute.seconds(start, at) or 0
                recovered += 1
                start = None
        if incidents:
            mttr.append(
                MttrRow(
                    repository=names.get(repo_id, ""),
                    workflow=wf,
                    branch=branch,
                    incidents=incidents,
                    recovered=recovered,
                    failed_seconds=failed,
                    mttr_seconds=failed // recovered if recovered else None,
                    open_since=start,
                )
            )
    mttr.sort(key=lambda m: (-(m.mttr_seconds or 0), m.repository, m.workflow, m.branch or ""))
    ttg: dict[tuple[int, str], list[int | None]] = defaultdict(list)
    for (repo_id, wf, _sha), attempts in commits.items():
        first = min(a.run_started_at or a.created_at for a in attempts)
        greens = [a.updated_at for a in attempts if _counted(a) == "success" and a.updated_at]
        ttg[(repo_id, wf)].append(compute.seconds(first, min(greens)) if greens else None)
    green_rows = []
    for (repo_id, wf), values in ttg.items():
        done = [v for v in values if v is not None]
        green_rows.append(
            TimeToGreenRow(
                repository=names.get(repo_id, ""),
                workflow=wf,
                commits=len(values),
                green=len(done),
                p50=compute.percentile_of(done, 50),
                p95=compute.percentile_of(done, 95),
            )
        )
    green_rows.sort(key=lambda g: (-(g.p95 or 0), g.repository, g.workflow))
    return Recovery(
        period=window.period(),
        mttr=mttr,
        time_to_green=green_rows,
        branches=branch_health(session, scope=scope),
    )


def _branch_runs(
    session: Session, repo_id: int, branch: str, known: set[str], settled: set[str], seen: list[Any]
) -> Any:
    """Newest runs of a branch, a page at a time, until every known workflow has passed."""
    while len(seen) < BRANCH_SCAN:
        page = repo.branch_history(
            session,
            repo_id,
            branch,
            offset=len(seen),
            limit=min(BRANCH_PAGE, BRANCH_SCAN - len(seen)),
        )
        seen += page
        yield from page
        if len(page) < BRANCH_PAGE or (known and known <= settled):
            return


def branch_health(session: Session, *, scope: Scope) -> list[BranchHealth]:
    """Each tracked branch (or default branch) and, per workflow, the failure streak it is in.

    Newest runs first: a workflow is broken when its newest counted attempt failed; it has
    been since the completion of the oldest failure of that unbroken streak.
    """
    out = []
    for repository in repo.repositories(session):
        if scope.repo_ids is not None and repository.id not in scope.repo_ids:
            continue
        if scope.repo_ids is None and not repository.tracked:
            continue
        branches = list(repository.branches or []) or [b for b in [repository.default_branch] if b]
        if scope.branch is not None:
            branches = [scope.branch]
        known = (
            {scope.workflow}
            if scope.workflow is not None
            else set(repo.repo_workflow_names(session, repository.id))
        )
        for branch in branches:
            state: dict[str, BrokenWorkflow] = {}
            settled: set[str] = set()
            rows: list[Any] = []
            for r in _branch_runs(session, repository.id, branch, known, settled, rows):
                wf = r.workflow_name or ""
                if scope.workflow is not None and wf != scope.workflow:
                    continue
                kind = _counted(r)
                if wf in settled or kind is None:
                    continue
                if kind == "success":
                    settled.add(wf)
                    continue
                item = state.setdefault(
                    wf, BrokenWorkflow(workflow=wf, since=None, failures=0, last_url=r.html_url)
                )
                item.failures += 1
                item.since = r.updated_at
            broken = sorted(state.values(), key=lambda w: w.workflow)
            since = [w.since for w in broken if w.since is not None]
            out.append(
                BranchHealth(
                    repository=repository.full_name,
                    branch=branch,
                    broken=bool(broken),
                    since=min(since) if since else None,
                    checked_runs=len(rows),
                    workflows=broken,
                )
            )
    out.sort(key=lambda b: (not b.broken, b.since.timestamp() if b.since else 0, b.repository))
    return out


def flaky(session: Session, *, scope: Scope, window: Window) -> Flaky:
    """Jobs with two conclusions on one commit; in-run flips counted beside."""
    days = window.all_days()
    index = {d: i for i, d in enumerate(days)}
    runs_flaky = Rollups(session, scope).jobs(window, ("workflow_name", "job_name"))
    by_commit: dict[tuple[str, str, str], list[tuple[datetime, int, str]]] = defaultdict(list)
    for r in repo.window_jobs(session, scope, window.first, window.last):
        kind = compute.outcome(r.status, r.conclusion)
        if kind in ("success", "failure") and r.head_sha:
            by_commit[(r.workflow_name or "", r.name, r.head_sha)].append(
                (r.created_at, r.run_attempt, kind)
            )
    stats: dict[tuple[str, str], FlakyJob] = {}
    for (wf, job, _sha), execs in by_commit.items():
        item = stats.setdefault(
            (wf, job),
            FlakyJob(
                workflow=wf,
                job=job,
                flaky_commits=0,
                flaky_runs=runs_flaky.get((wf, job), compute.JobAgg()).flaky_runs,
                commits=0,
                daily=[0] * len(days),
            ),
        )
        item.commits += 1
        execs.sort()
        first_kind = execs[0][2]
        flip = next((e for e in execs if e[2] != first_kind), None)
        if flip is not None:
            item.flaky_commits += 1
            item.daily[index[repo.utc_day(flip[0])]] += 1
    jobs = [j for j in stats.values() if j.flaky_commits or j.flaky_runs]
    jobs.sort(key=lambda j: (-j.flaky_commits, -j.flaky_runs, j.workflow, j.job))
    return Flaky(period=window.period(), days=days, jobs=jobs)


# -- compare ---------------------------------------------------------------------------------


def compare(session: Session, *, scope: Scope, a: Window, b: Window) -> Compare:
    rollups = Rollups(session, scope)

    def side_by_side(
        left: dict[tuple[Any, ...], Any], right: dict[tuple[Any, ...], Any]
    ) -> list[CompareRow]:
        rows = []
        for key in sorted(set(left) | set(right)):
            la = left.get(key, compute.RunAgg())
            rb = right.get(key, compute.RunAgg())
            ra, rr = Rates(**rates(la)), Rates(**rates(rb))
            change = (
                round(rr.failure_rate - ra.failure_rate, 2)
                if ra.failure_rate is not None and rr.failure_rate is not None
                else None
            )
            rows.append(
                CompareRow(
                    key=" / ".join(str(k) for k in key),
                    a=ra,
                    b=rr,
                    a_runs=getattr(la, "runs", getattr(la, "executions", 0)),
                    b_runs=getattr(rb, "runs", getattr(rb, "executions", 0)),
                    change=change,
                )
            )
        rows.sort(key=lambda r: (-abs(r.change or 0), r.key))
        return rows

    return Compare(
        a=a.period(),
        b=b.period(),
        a_kpis=kpis(rollups, a),
        b_kpis=kpis(rollups, b),
        workflows=side_by_side(
            rollups.runs(a, ("workflow_name",)), rollups.runs(b, ("workflow_name",))
        ),
        jobs=side_by_side(
            rollups.jobs(a, ("workflow_name", "job_name")),
            rollups.jobs(b, ("workflow_name", "job_name")),
        ),
    )
