"""Rollups follow the sync's writes; attempts, flakiness and the trend rules count as documented."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from cipulse.db import Database
from cipulse.github.schemas import JobData, RunData
from cipulse.models import JobDaily, RunDaily, utcnow
from cipulse.stats import compute, service, tasks
from cipulse.stats import repository as stats_repo
from cipulse.stats.repository import Scope
from cipulse.sync import repository as sync_repo


def run_data(gid: int, attempt: int, status: str, conclusion: str | None, at: datetime) -> RunData:
    return RunData(
        github_id=gid,
        run_attempt=attempt,
        repository_github_id=None,
        workflow_github_id=None,
        name="CI",
        run_number=gid,
        event="push",
        status=status,
        conclusion=conclusion,
        head_branch="main",
        head_sha="abc",
        actor_login="dev",
        html_url=f"https://github.com/o/r/actions/runs/{gid}",
        created_at=at,
        run_started_at=at + timedelta(seconds=10),
        updated_at=at + timedelta(minutes=5 * attempt),
    )


def job_data(
    jid: int, gid: int, attempt: int, name: str, conclusion: str | None, at: datetime
) -> JobData:
    return JobData(
        github_id=jid,
        run_github_id=gid,
        run_attempt=attempt,
        name=name,
        status="completed" if conclusion else "in_progress",
        conclusion=conclusion,
        head_sha="abc",
        head_branch="main",
        workflow_name="CI",
        html_url=f"https://github.com/o/r/actions/runs/{gid}/job/{jid}",
        created_at=at,
        started_at=at + timedelta(seconds=30),
        completed_at=at + timedelta(seconds=90) if conclusion else None,
        runner_name="r1",
        runner_group_name="Default",
        labels=["ubuntu-latest"],
    )


def jobs_now(db: Database, now: datetime) -> dict[str, object]:
    with db.read() as s:
        rates = service.job_rates(s, scope=Scope(), window=service.last_days(7, now))
    return {j.job: j for j in rates.jobs}


def stored(db: Database) -> list[tuple[object, ...]]:
    with db.read() as s:
        runs = [
            (r.day, r.workflow_name, r.branch, r.attempts, r.failure, r.final_failure, r.durations)
            for r in s.scalars(select(RunDaily).order_by(RunDaily.id))
        ]
        jobs = [
            (j.job_name, j.success, j.failure, j.first_failure, j.final_failure, j.flaky_runs)
            for j in s.scalars(select(JobDaily).order_by(JobDaily.job_name))
        ]
    return [*runs, *jobs]


def test_rerun_counts_in_first_attempt_not_final_and_rollups_follow_writes(db_url: str) -> None:
    db = Database(db_url)
    now = utcnow()
    at = now.replace(microsecond=0) - timedelta(hours=2)
    with db.write() as uow:
        repo_id = sync_repo.track_repo(uow.session, "o/r", ["main"]).id
        # Webhooks: attempt 1 fails in "test", attempt 2 passes; "lint" is cancelled.
        sync_repo.apply_run_event(
            uow.session, repo_id, run_data(1, 1, "completed", "failure", at), None
        )
        for jid, name, conclusion in (
            (11, "build", "success"),
            (12, "test", "failure"),
            (13, "lint", "cancelled"),
        ):
            sync_repo.apply_job_event(
                uow.session, repo_id, job_data(jid, 1, 1, name, conclusion, at)
            )
        later = at + timedelta(minutes=20)
        sync_repo.apply_run_event(
            uow.session, repo_id, run_data(1, 2, "completed", "success", at), None
        )
        for jid, name in ((21, "build"), (22, "test")):
            sync_repo.apply_job_event(
                uow.session, repo_id, job_data(jid, 1, 2, name, "success", later)
            )
    with db.read() as s:
        assert stats_repo.dirty_count(s) == 1  # the writes marked the run's day
    before_task = jobs_now(db, now)
    test = before_task["test"]
    assert (test.success, test.failure, test.flaky_runs) == (1, 1, 1)
    assert (test.first_failure_rate, test.final_failure_rate) == (100.0, 0.0)
    lint = before_task["lint"]
    assert (lint.cancelled, lint.failure_rate) == (1, None), "cancelled is beside, not in the rate"

    assert tasks.rollup_pending(db) == 1
    with db.read() as s:
        assert stats_repo.dirty_count(s) == 0
        kpis = service.overview(s, scope=Scope(), window=service.last_days(7, now)).kpis
    assert jobs_now(db, now) == before_task
    assert (kpis.runs, kpis.failure, kpis.first_failure, kpis.final_failure) == (1, 1, 1, 0)
    assert kpis.retried_attempts == 1 and kpis.minutes_lost_to_retries == 4.83  # 5 min - 10 s

    # A new run arrives through the polling sync: in progress, then failed.
    fresh = run_data(2, 1, "in_progress", None, at + timedelta(minutes=30))
    with db.write() as uow:
        sync_repo.upsert_runs(uow.session, repo_id, [(fresh, None)])
    tasks.rollup_pending(db)
    done = run_data(2, 1, "completed", "failure", at + timedelta(minutes=30))
    with db.write() as uow:
        sync_repo.upsert_runs(uow.session, repo_id, [(done, None)])
        sync_repo.store_jobs(
            uow.session,
            repo_id=repo_id,
            run=done,
            workflow_id=None,
            jobs=[job_data(31, 2, 1, "test", "failure", at + timedelta(minutes=30))],
        )
    with db.read() as s:
        kpis = service.overview(s, scope=Scope(), window=service.last_days(7, now)).kpis
    assert (kpis.runs, kpis.failure, kpis.final_failure) == (2, 2, 1)  # folded in at once
    assert jobs_now(db, now)["test"].failure == 2
    tasks.rollup_pending(db)
    first = stored(db)
    with db.write() as uow:  # recomputing a day changes nothing
        stats_repo.mark_all_dirty(uow.session)
    tasks.rollup_pending(db)
    assert stored(db) == first
    with db.read() as s:
        kpis2 = service.overview(s, scope=Scope(), window=service.last_days(7, now)).kpis
    assert kpis2 == kpis
    db.dispose()


def test_a_claimed_day_is_not_recomputed_twice_in_one_pass(db_url: str) -> None:
    db = Database(db_url)
    with db.write() as uow:
        repo_id = sync_repo.track_repo(uow.session, "o/r", []).id
        days = [datetime(2026, 11, d, 12, tzinfo=UTC) for d in (1, 2, 3)]
        stats_repo.mark_dirty(uow.session, repo_id, days)
        stats_repo.mark_dirty(uow.session, repo_id, days[:1])  # marked twice: still one day
    assert tasks.rollup_pending(db, batch=2) == 3
    assert tasks.rollup_pending(db) == 0
    db.dispose()


def test_trend_rules() -> None:
    def t(value, base, n, bn, higher=False, relative=False):  # type: ignore[no-untyped-def]
        return compute.trend(
            value, base, samples=n, baseline_samples=bn, higher_is_better=higher, relative=relative
        )

    assert t(None, 10.0, 0, 50).direction == "no_data"
    assert t(10.0, None, 50, 0).direction == "no_baseline"
    few = t(66.67, 0.0, 3, 50)
    assert few.direction == "too_few" and few.change == 66.67  # a change on 3 runs
    assert t(10.0, 11.0, 50, 50).direction == "flat"  # 1 point
    worse = t(20.0, 10.0, 50, 50)
    assert (worse.direction, worse.better) == ("up", False)
    slower = t(130.0, 100.0, 40, 40, relative=True)
    assert (slower.direction, slower.change, slower.better) == ("up", 30.0, False)
    assert t(105.0, 100.0, 40, 40, relative=True).direction == "flat"
    # Baselines: median of the daily p50s, worst daily p95; empty days are not zeros.
    days = [compute.Counter({10: 1, 20: 1}), compute.Counter(), compute.Counter({30: 3, 100: 1})]
    assert compute.duration_baselines(days) == (20.0, 100)
    assert compute.duration_baselines([compute.Counter()]) == (None, None)


def test_percentile_is_nearest_rank_over_merged_histograms() -> None:
    values = [5, 1, 9, 3, 3, 7, 100, 2, 8, 6]
    hist = compute.Counter(values)
    merged = compute.load_hist(compute.dump_hist(compute.Counter(values[:4])))
    merged.update(compute.Counter(values[4:]))
    for p in (1, 50, 90, 95, 100):
        assert compute.percentile(hist, p) == compute.percentile(merged, p)
        assert compute.percentile(hist, p) == compute.percentile_of(values, p)
    assert compute.percentile(hist, 50) == 5 and compute.percentile(hist, 95) == 100
    assert compute.percentile(compute.Counter(), 50) is None


def test_upgrading_marks_the_days_of_runs_synced_before(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Runs stored before the rollups existed are rolled up after the upgrade."""
    from sqlalchemy import text

    from cipulse import migrate
    from cipulse.db import make_engine

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine, "804c3d5eaf64")  # the revision before the rollups
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO repository (id, owner, name, full_name, created_at, "
                "tracked, branches) VALUES (1, 'o', 'r', 'o/r', '2026-11-01', 1, '[]')"
            )
        )
        for gid, created in (
            (1, "2026-11-02 10:00:00.000000"),  # stored as SQLAlchemy stores it
            (2, "2026-11-02 23:59:59.000000"),
            (3, "2026-11-05 00:00:00.000000"),
        ):
            conn.execute(
                text(
                    "INSERT INTO workflow_run (github_id, run_attempt, repository_id, status, "
                    "conclusion, created_at) VALUES (:gid, 1, 1, 'completed', 'failure', :at)"
                ),
                {"gid": gid, "at": created},
            )
    migrate.upgrade(engine)
    engine.dispose()
    db = Database(url)
    with db.read() as s:
        assert stats_repo.dirty_count(s) == 2
    assert tasks.rollup_pending(db) == 2
    with db.read() as s:
        window = service.Window(datetime(2026, 11, 1).date(), datetime(2026, 11, 7).date())
        assert service.overview(s, scope=Scope(), window=window).kpis.failure == 3
    db.dispose()


def test_today_is_stored_per_hour_so_a_write_refolds_one_hour(db_url: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A webhook today recomputes its hour only; old days are compacted; numbers stay exact."""
    from cipulse.models.rollup import WHOLE_DAY
    from cipulse.stats import generate

    db = Database(db_url)
    now = utcnow().replace(minute=30)
    generate.generate(db.engine, runs=400, days=5, now=now, repositories=1, seed=11)
    assert tasks.rollup_pending(db, now=now) > 0
    today = now.date()
    with db.read() as s:
        forms = {(r.day, r.hour == WHOLE_DAY) for r in s.scalars(select(RunDaily))}
    assert {day for day, whole in forms if not whole} <= {today, today - timedelta(days=1)}
    assert (today, False) in forms and (today - timedelta(days=3), True) in forms

    window = service.last_days(7, now)

    def read() -> tuple[object, ...]:
        with db.read() as s:
            k = service.overview(s, scope=Scope(), window=window).kpis
            jobs = service.job_rates(s, scope=Scope(), window=window)
        return (
            k.runs,
            k.failure,
            k.final_failure,
            {(j.workflow, j.job): j.failure for j in jobs.jobs},
        )

    before = read()
    folded: list[int] = []
    real_raw_day = stats_repo.raw_day

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        folded.append(kwargs.get("hour", WHOLE_DAY))
        return real_raw_day(*args, **kwargs)

    monkeypatch.setattr(stats_repo, "raw_day", spy)
    at = now.replace(second=0, microsecond=0) - timedelta(minutes=1)
    with db.write() as uow:  # a webhook: a new run of "CI" failed just now
        sync_repo.apply_run_event(
            uow.session, 1, run_data(999_999, 1, "completed", "failure", at), None
        )
        sync_repo.apply_job_event(
            uow.session, 1, job_data(888_888, 999_999, 1, "build", "failure", at)
        )
    after = read()
    assert folded and set(folded) == {at.hour}, "only the written hour is read from raw rows"
    assert after[:3] == (before[0] + 1, before[1] + 1, before[2] + 1)  # type: ignore[operator]
    assert after[3][("CI", "build")] == before[3][("CI", "build")] + 1  # type: ignore[index]
    monkeypatch.undo()

    assert tasks.rollup_pending(db, now=now) == 1
    assert read() == after
    # Three days later the hours of today are compacted into whole-day rows, same numbers.
    tasks.rollup_pending(db, now=now + timedelta(days=3))
    with db.read() as s:
        hours = {r.hour for r in s.scalars(select(RunDaily).where(RunDaily.day == today))}
    assert hours == {WHOLE_DAY}
    assert read() == after
    db.dispose()


def test_the_bulk_sqlite_loader_writes_the_same_history_as_generate(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The benchmark's fast loader stores exactly what the ORM path stores, readable as usual."""
    import sqlite3

    from cipulse import migrate
    from cipulse.stats import generate

    now = utcnow()
    for name, load in (("orm", generate.generate), ("bulk", generate.generate_sqlite_bulk)):
        db = Database(f"sqlite:///{tmp_path / name}.db")
        migrate.upgrade(db.engine)
        load(db.engine, runs=200, days=4, now=now, repositories=2, seed=9)
        db.dispose()

    def rows(name: str, sql: str) -> list[tuple[object, ...]]:
        with sqlite3.connect(tmp_path / f"{name}.db") as con:
            return con.execute(sql).fetchall()

    for sql in (
        "SELECT * FROM workflow_run ORDER BY id",
        "SELECT * FROM job ORDER BY id",
        "SELECT repository_id, day, hour FROM rollup_dirty_day ORDER BY 1, 2, 3",
        "SELECT name FROM sqlite_master WHERE type = 'index' ORDER BY name",
    ):
        assert rows("orm", sql) == rows("bulk", sql), sql
    db = Database(f"sqlite:///{tmp_path / 'bulk'}.db")
    tasks.rollup_pending(db, now=now)
    with db.read() as s:
        kpis = service.overview(s, scope=Scope(), window=service.last_days(5, now)).kpis
    assert kpis.runs == 200
    db.dispose()
