"""Every analytics metric equals a plain Python pass over the raw rows, on both databases.

The history is generated (re-runs, flaky jobs, cancelled and skipped jobs, runs in progress,
several branches and runners); part of it is rolled up and part is left dirty, so both the
stored rollups and the fold-in of days not rolled up yet are checked against the reference.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from cipulse.db import Database
from cipulse.models import Job, Repository, Workflow, WorkflowRun, utcnow
from cipulse.stats import generate, service, tasks
from cipulse.stats import repository as stats_repo
from cipulse.stats.repository import Scope

OK = {"success", "neutral"}
BAD = {"failure", "timed_out", "startup_failure"}


def kind(status: str | None, conclusion: str | None) -> str | None:
    if status != "completed":
        return None
    if conclusion in OK:
        return "success"
    if conclusion in BAD:
        return "failure"
    return conclusion if conclusion in ("cancelled", "skipped") else None


def nearest_rank(values: list[int], p: float) -> int | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p * len(ordered) / 100) - 1)]


def bucket(seconds: int | None) -> int | None:
    """Documented histogram resolution: exact below 128 s, then 64 steps per power of two."""
    if seconds is None or seconds < 128:
        return seconds
    step = 2 ** (seconds.bit_length() - 7)
    return seconds - seconds % step


def pct(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 2) if whole else None


def secs(a: datetime | None, b: datetime | None) -> int | None:
    return None if a is None or b is None else max(0, int((b - a).total_seconds()))


class Raw:
    """Every run attempt and job, as plain dicts, with the run's workflow name and day."""

    def __init__(self, db: Database) -> None:
        with db.read() as s:
            wf = dict(s.execute(select(Workflow.id, Workflow.name)).all())
            self.repos = {r.id: r for r in s.scalars(select(Repository)).all()}
            self.runs = [
                {
                    **{c: getattr(r, c) for c in r.__table__.columns.keys()},  # noqa: SIM118
                    "wf": wf.get(r.workflow_id) or r.name or "",
                    "day": r.created_at.date(),
                }
                for r in s.scalars(select(WorkflowRun)).all()
            ]
            by_id = {r["id"]: r for r in self.runs}
            self.jobs = [
                {
                    **{c: getattr(j, c) for c in j.__table__.columns.keys()},  # noqa: SIM118
                    "run": by_id[j.run_id],
                }
                for j in s.scalars(select(Job)).all()
            ]

    def runs_in(self, first: date, last: date) -> list[dict[str, Any]]:
        return [r for r in self.runs if first <= r["day"] <= last]

    def jobs_in(self, first: date, last: date) -> list[dict[str, Any]]:
        return [j for j in self.jobs if first <= j["run"]["day"] <= last]


def run_totals(runs: list[dict[str, Any]]) -> dict[str, Any]:
    c: dict[str, Any] = defaultdict(int)
    durations = []
    by_gid: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in runs:
        by_gid[r["github_id"]].append(r)
        k = kind(r["status"], r["conclusion"])
        if k:
            c[k] += 1
        if k in ("success", "failure") and secs(r["run_started_at"], r["updated_at"]) is not None:
            durations.append(secs(r["run_started_at"], r["updated_at"]))
    for attempts in by_gid.values():
        attempts.sort(key=lambda r: r["run_attempt"])
        for label, r in (("first", attempts[0]), ("final", attempts[-1])):
            k = kind(r["status"], r["conclusion"])
            if k in ("success", "failure"):
                c[f"{label}_{k}"] += 1
        for r in attempts[:-1]:
            if r["status"] == "completed":
                c["retried"] += 1
                c["retried_seconds"] += secs(r["run_started_at"], r["updated_at"]) or 0
    c["runs"] = len(by_gid)
    c["exact_p95"] = nearest_rank(durations, 95)
    c["p50"], c["p95"] = bucket(nearest_rank(durations, 50)), bucket(c["exact_p95"])
    c["n_durations"] = len(durations)
    c["durations"] = durations
    return c


@pytest.fixture
def history(db_url: str):  # type: ignore[no-untyped-def]
    db = Database(db_url)
    now = utcnow()
    generate.generate(db.engine, runs=700, days=16, now=now, repositories=2, seed=3)
    with db.write() as uow:
        stats_repo.mark_all_dirty(uow.session)
    tasks.rollup_pending(db)
    # Leave some days to the fold-in: marked dirty again, as a sync would.
    today = now.date()
    with db.write() as uow:
        for rid in (1, 2):
            for back in (0, 3, 9):
                stats_repo.mark_dirty(
                    uow.session, rid, [stats_repo.day_start(today) - timedelta(days=back)]
                )
    yield db, now
    db.dispose()


def test_overview_kpis_and_daily_equal_the_reference(history) -> None:  # type: ignore[no-untyped-def]
    db, now = history
    raw = Raw(db)
    window = service.last_days(7, now)
    with db.read() as s:
        assert stats_repo.dirty_count(s) == 6
        ov = service.overview(s, scope=Scope(), window=window)
    ref = run_totals(raw.runs_in(window.first, window.last))
    k = ov.kpis
    assert ov.pending_days == 4  # today and 3 days ago for two repositories
    assert (k.runs, k.success, k.failure, k.cancelled) == (
        ref["runs"],
        ref["success"],
        ref["failure"],
        ref["cancelled"],
    )
    assert k.failure_rate == pct(ref["failure"], ref["success"] + ref["failure"])
    assert k.first_failure_rate == pct(
        ref["first_failure"], ref["first_success"] + ref["first_failure"]
    )
    assert k.final_failure_rate == pct(
        ref["final_failure"], ref["final_success"] + ref["final_failure"]
    )
    assert k.first_failure > k.final_failure, "re-runs that passed leave the final rate"
    assert (k.duration_p50, k.duration_p95) == (ref["p50"], ref["p95"])
    assert 0 <= ref["exact_p95"] - k.duration_p95 <= ref["exact_p95"] / 64  # the documented bound
    assert k.retried_attempts == ref["retried"] > 0
    assert k.minutes_lost_to_retries == round(ref["retried_seconds"] / 60, 2)
    assert k.runs_per_day == round(ref["runs"] / 7, 2)
    # Trend: the previous 7 days, duration baseline from its daily p50s / p95s.
    prev = window.previous()
    before = run_totals(raw.runs_in(prev.first, prev.last))
    t = k.trends["failure_rate"]
    assert t.baseline == pct(before["failure"], before["success"] + before["failure"])
    assert t.samples == ref["success"] + ref["failure"]
    daily = [run_totals(raw.runs_in(d, d)) for d in prev.all_days()]
    daily = [d for d in daily if d["n_durations"]]
    assert k.trends["duration_p50"].baseline == statistics.median(d["p50"] for d in daily)
    assert k.trends["duration_p95"].baseline == max(d["p95"] for d in daily)
    for point in ov.daily:
        day = run_totals(raw.runs_in(point.day, point.day))
        assert (point.runs, point.success, point.failure, point.cancelled) == (
            day["runs"],
            day["success"],
            day["failure"],
            day["cancelled"],
        ), point.day
        assert (point.duration_p50, point.duration_p95) == (day["p50"], day["p95"])


def test_rates_per_repository_workflow_branch(history) -> None:  # type: ignore[no-untyped-def]
    db, now = history
    raw = Raw(db)
    window = service.last_days(14, now)
    runs = raw.runs_in(window.first, window.last)
    names = {rid: r.full_name for rid, r in raw.repos.items()}
    for by, key in (
        ("repository", lambda r: names[r["repository_id"]]),
        ("workflow", lambda r: r["wf"]),
        ("branch", lambda r: r["head_branch"]),
    ):
        with db.read() as s:
            got = {
                row.key: row
                for row in service.breakdown(s, scope=Scope(), window=window, by=by).rows
            }
        groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in runs:
            groups[key(r)].append(r)
        assert set(got) == set(groups)
        for name, rows in groups.items():
            ref = run_totals(rows)
            row = got[name]
            assert (row.runs, row.success, row.failure, row.cancelled) == (
                ref["runs"],
                ref["success"],
                ref["failure"],
                ref["cancelled"],
            ), (by, name)
            assert row.final_failure_rate == pct(
                ref["final_failure"], ref["final_success"] + ref["final_failure"]
            )
    # A filter narrows every number the same way.
    with db.read() as s:
        main = service.overview(s, scope=Scope(branch="main", workflow="CI"), window=window)
    ref = run_totals([r for r in runs if r["head_branch"] == "main" and r["wf"] == "CI"])
    assert (main.kpis.runs, main.kpis.failure, main.kpis.duration_p95) == (
        ref["runs"],
        ref["failure"],
        ref["p95"],
    )
    # A branch alone (every workflow of it): the stored rows summing every branch do not apply.
    with db.read() as s:
        main = service.overview(s, scope=Scope(branch="main"), window=window)
    ref = run_totals([r for r in runs if r["head_branch"] == "main"])
    assert (main.kpis.runs, main.kpis.failure, main.kpis.duration_p95) == (
        ref["runs"],
        ref["failure"],
        ref["p95"],
    )
    assert sum(d.runs for d in main.daily) == ref["runs"]


def test_job_rates_durations_and_queue_times(history) -> None:  # type: ignore[no-untyped-def]
    db, now = history
    raw = Raw(db)
    window = service.last_days(10, now)
    with db.read() as s:
        got = service.job_rates(s, scope=Scope(), window=window, durations=True)
        queues = service.queue_times(s, scope=Scope(), window=window)
        durs = service.durations(s, scope=Scope(), window=window)
    jobs = raw.jobs_in(window.first, window.last)
    per: dict[tuple[str, str], dict[str, Any]] = defaultdict(lambda: defaultdict(int))
    execs: dict[tuple[str, str, int], list[dict[str, Any]]] = defaultdict(list)
    durations: dict[tuple[str, str], list[int]] = defaultdict(list)
    daily_fail: dict[tuple[str, str, date], int] = defaultdict(int)
    for j in jobs:
        key = (j["run"]["wf"], j["name"])
        execs[(*key, j["run"]["github_id"])].append(j)
        k = kind(j["status"], j["conclusion"])
        if k:
            per[key][k] += 1
        if k == "failure":
            daily_fail[(*key, j["run"]["day"])] += 1
        if k in ("success", "failure") and j["started_at"] and j["completed_at"]:
            durations[key].append(secs(j["started_at"], j["completed_at"]))
    for (wf, name, _gid), rows in execs.items():
        rows.sort(key=lambda j: j["run_attempt"])
        kinds = [kind(j["status"], j["conclusion"]) for j in rows]
        for label, k in (("first", kinds[0]), ("final", kinds[-1])):
            if k in ("success", "failure"):
                per[(wf, name)][f"{label}_{k}"] += 1
        if any(a == "failure" and "success" in kinds[i + 1 :] for i, a in enumerate(kinds)):
            per[(wf, name)]["flaky"] += 1
    by_key = {(j.workflow, j.job): j for j in got.jobs}
    assert set(by_key) == set(per)
    flaky_seen = 0
    for key, ref in per.items():
        row = by_key[key]
        assert (row.success, row.failure, row.cancelled, row.skipped) == (
            ref["success"],
            ref["failure"],
            ref["cancelled"],
            ref["skipped"],
        ), key
        assert row.first_failure_rate == pct(
            ref["first_failure"], ref["first_success"] + ref["first_failure"]
        )
        assert row.final_failure_rate == pct(
            ref["final_failure"], ref["final_success"] + ref["final_failure"]
        )
        assert row.flaky_runs == ref["flaky"]
        flaky_seen += ref["flaky"]
        assert (row.duration_p50, row.duration_p95) == (
            bucket(nearest_rank(durations[key], 50)),
            bucket(nearest_rank(durations[key], 95)),
        )
        assert row.daily_failures == [daily_fail[(*key, d)] for d in window.all_days()]
        dur_row = next(d for d in durs.jobs if (d.workflow, d.job) == key)
        assert (dur_row.p50, dur_row.p95) == (row.duration_p50, row.duration_p95)
    assert flaky_seen > 0
    waits: dict[tuple[str, str], list[int]] = defaultdict(list)
    for j in jobs:
        if j["conclusion"] == "skipped" or not j["created_at"] or not j["started_at"]:
            continue
        w = secs(j["created_at"], j["started_at"])
        for label in dict.fromkeys(j["labels"] or []):
            waits[("label", label)].append(w)
        if j["runner_group_name"]:
            waits[("group", j["runner_group_name"])].append(w)
    got_q = {(q.kind, q.value): q for q in queues.rows}
    assert set(got_q) == set(waits)
    for key, values in waits.items():
        assert (got_q[key].jobs, got_q[key].p50, got_q[key].p95) == (
            len(values),
            bucket(nearest_rank(values, 50)),
            bucket(nearest_rank(values, 95)),
        )


def test_mttr_time_to_green_flaky_and_broken_branches(history) -> None:  # type: ignore[no-untyped-def]
    db, now = history
    raw = Raw(db)
    window = service.last_days(14, now)
    with db.read() as s:
        rec = service.recovery(s, scope=Scope(), window=window)
        flaky = service.flaky(s, scope=Scope(), window=window)
    runs = raw.runs_in(window.first, window.last)
    names = {rid: r.full_name for rid, r in raw.repos.items()}
    streams: dict[tuple[str, str, str], list[tuple[datetime, str]]] = defaultdict(list)
    for r in runs:
        k = kind(r["status"], r["conclusion"])
        if k in ("success", "failure"):
            streams[(names[r["repository_id"]], r["wf"], r["head_branch"])].append(
                (r["updated_at"], k)
            )
    expected = {}
    for key, events in streams.items():
        events.sort()
        start, incidents, recovered, failed = None, 0, 0, 0
        for at, k in events:
            if k == "failure" and start is None:
                start, incidents = at, incidents + 1
            if k == "success" and start is not None:
                failed, recovered, start = failed + secs(start, at), recovered + 1, None
        if incidents:
            expected[key] = (
                incidents,
                recovered,
                failed,
                failed // recovered if recovered else None,
                start,
            )
    got = {
        (m.repository, m.workflow, m.branch): (
            m.incidents,
            m.recovered,
            m.failed_seconds,
            m.mttr_seconds,
            m.open_since,
        )
        for m in rec.mttr
    }
    assert got == expected and expected

    commits: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in runs:
        commits[(names[r["repository_id"]], r["wf"], r["head_sha"])].append(r)
    ttg: dict[tuple[str, str], list[int | None]] = defaultdict(list)
    for (repo, wf, _sha), rows in commits.items():
        first = min(r["run_started_at"] or r["created_at"] for r in rows)
        greens = [r["updated_at"] for r in rows if kind(r["status"], r["conclusion"]) == "success"]
        ttg[(repo, wf)].append(secs(first, min(greens)) if greens else None)
    got_ttg = {
        (g.repository, g.workflow): (g.commits, g.green, g.p50, g.p95) for g in rec.time_to_green
    }
    for key, values in ttg.items():
        done = [v for v in values if v is not None]
        assert got_ttg[key] == (
            len(values),
            len(done),
            nearest_rank(done, 50),
            nearest_rank(done, 95),
        )

    per_commit: dict[tuple[str, str, str], list[tuple[datetime, int, str]]] = defaultdict(list)
    for j in raw.jobs_in(window.first, window.last):
        k = kind(j["status"], j["conclusion"])
        if k in ("success", "failure"):
            per_commit[(j["run"]["wf"], j["name"], j["run"]["head_sha"])].append(
                (j["run"]["created_at"], j["run_attempt"], k)
            )
    flaky_ref: dict[tuple[str, str], int] = defaultdict(int)
    for (wf, name, _sha), rows in per_commit.items():
        if len({k for *_, k in rows}) > 1:
            flaky_ref[(wf, name)] += 1
    got_flaky = {(f.workflow, f.job): f for f in flaky.jobs}
    assert {k: v.flaky_commits for k, v in got_flaky.items() if v.flaky_commits} == dict(flaky_ref)
    for f in flaky.jobs:
        assert sum(f.daily) == f.flaky_commits
        assert f.flaky_runs <= f.flaky_commits  # a flip inside one run is a flip on its commit

    for health in rec.branches:
        repo = next(r for r in raw.repos.values() if r.full_name == health.repository)
        history_ = sorted(
            (
                r
                for r in raw.runs
                if r["repository_id"] == repo.id and r["head_branch"] == health.branch
            ),
            key=lambda r: (-r["created_at"].timestamp(), r["github_id"], -r["run_attempt"]),
        )
        broken: dict[str, list[dict[str, Any]]] = {}
        settled: set[str] = set()
        for r in history_:
            k = kind(r["status"], r["conclusion"])
            if r["wf"] in settled or k not in ("success", "failure"):
                continue
            if k == "success":
                settled.add(r["wf"])
            else:
                broken.setdefault(r["wf"], []).append(r)
        assert {w.workflow: (w.failures, w.since) for w in health.workflows} == {
            wf: (len(rows), rows[-1]["updated_at"]) for wf, rows in broken.items()
        }
        assert health.broken == bool(broken)
