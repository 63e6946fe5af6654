"""Design A's job failure rates, by the counting rule of docs/metrics.md.

success and neutral are successes; failure, timed_out and startup_failure are failures;
cancelled, skipped, action_required and stale are not counted. Every attempt counts: a job that
failed in attempt 1 and passed in attempt 2 is one failure and one success (and flaky).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy.orm import Session

from cipulse.jobstats import repository
from cipulse.jobstats.schemas import CiData, Counts, DayCounts, JobStat, RecentFailure

RECENT_FAILURES = 5
LAST_DAYS = 7


def rate(failures: int, total: int) -> float:
    return round(100.0 * failures / total, 2) if total else 0.0


def counts(successes: int, failures: int) -> Counts:
    total = successes + failures
    return Counts(
        totalRuns=total, failures=failures, successes=successes, failureRate=rate(failures, total)
    )


def ci_data(
    session: Session,
    *,
    repo_id: int,
    repo: str,
    branch: str | None,
    days: int,
    now: datetime,
) -> CiData:
    since = now - timedelta(days=days)
    first_day = since.date()
    history: dict[str, dict[date, list[int]]] = {}
    for name, day, successes, failures in repository.daily_by_job(session, repo_id, branch, since):
        history.setdefault(name, {})[day] = [successes, failures]
    week_since = max(since, now - timedelta(days=LAST_DAYS))
    week = {
        name: [int(s or 0), int(f or 0)]
        for name, s, f in repository.counts_by_job(session, repo_id, branch, week_since)
    }
    failures_by_job: dict[str, list[RecentFailure]] = {}
    for row in repository.recent_failures(session, repo_id, branch, since, RECENT_FAILURES):
        failures_by_job.setdefault(row.name, []).append(
            RecentFailure(
                runId=row.github_id,
                runNumber=row.run_number,
                runAttempt=row.run_attempt,
                runUrl=row.html_url,
                createdAt=row.created_at,
                jobUrl=row.job_url,
                conclusion=row.conclusion,
            )
        )
    flaky = repository.flaky_counts(session, repo_id, branch, since)
    span = [first_day + timedelta(days=i) for i in range((now.date() - first_day).days + 1)]
    stats: dict[str, JobStat] = {}
    job_history: dict[str, list[DayCounts]] = {}
    for name, successes, failures in repository.counts_by_job(session, repo_id, branch, since):
        successes, failures = int(successes or 0), int(failures or 0)
        if successes + failures == 0:
            continue  # only cancelled/skipped executions: nothing to count
        per_day = history.get(name, {})
        job_history[name] = [
            DayCounts(date=day, **counts(*per_day[day]).model_dump())
            for day in sorted(per_day)
            if sum(per_day[day])
        ]
        stats[name] = JobStat(
            name=name,
            **counts(successes, failures).model_dump(),
            last7Days=counts(*week.get(name, [0, 0])),
            recentFailures=failures_by_job.get(name, []),
            flaky=flaky.get(name, 0),
            dailyFailureRate=[
                rate(per_day[d][1], sum(per_day[d])) if sum(per_day.get(d, [0, 0])) else None
                for d in span
            ],
        )
    ordered = dict(sorted(stats.items(), key=lambda kv: (-kv[1].failureRate, kv[0])))
    return CiData(
        repo=repo,
        branch=branch,
        days=days,
        jobStats=ordered,
        jobHistory={name: job_history[name] for name in ordered},
        lastUpdated=repository.last_synced(session, repo_id),
        totalRuns=repository.total_runs(session, repo_id, branch, since),
    )
