"""Storing JUnit reports and reading test history, slow, failing and flaky tests.

A test's identity is (project, class name or suite, test name); ``project`` is the repository's
full name when the report belongs to a known repository, else whatever name the pushing CI gave
(empty when none). History is keyed by cipulse's database ids (``workflow_run.id``, ``job.id``);
GitHub's run and job ids are only used to find those rows when a report is pushed, and reports
from other CI keep their own run and job identifiers as text (``ci_run``, ``ci_job``).

Reports are idempotent: the same bytes for the same run, job, commit and name are stored once,
however often they are re-posted or re-extracted from an artifact.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from cipulse.models import TestCase, TestReport, TestResult, utcnow
from cipulse.testreports import parse
from cipulse.testreports import repository as repo
from cipulse.testreports.schemas import (
    FlakyTest,
    HistoryEntry,
    RetryOut,
    RunReport,
    RunTestResult,
    RunTests,
    StoredReport,
    TestDetail,
    TestList,
    TestSummary,
)

JUnitParseError = parse.JUnitParseError
SORTS = ("failing", "slowest", "recent", "name")
FAILING = ("failed", "error")


def test_url(test_case_id: int) -> str:
    return f"/tests/{test_case_id}"


def case_key(project: str, identity: tuple[str, str]) -> str:
    return hashlib.sha256("\0".join((project, *identity)).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class _Context:
    project: str
    repository_id: int | None
    workflow_run_id: int | None
    job_id: int | None
    branch: str | None
    commit_sha: str | None
    ci_run: str | None
    ci_job: str | None
    reported_at: datetime


def _clip(value: str | None, limit: int) -> str | None:
    if value is None:
        return None
    value = value.replace("\x00", "").strip()  # PostgreSQL text cannot hold NUL
    return value[:limit] or None


def _context(
    session: Session,
    *,
    repository_id: int | None,
    workflow_run_id: int | None,
    job_id: int | None,
    project: str | None,
    branch: str | None,
    commit_sha: str | None,
    ci_run: str | None,
    ci_job: str | None,
    now: datetime,
) -> _Context:
    """Fill what the GitHub rows know (repository, branch, commit, time) over what was given."""
    run, job = repo.run_context(session, workflow_run_id=workflow_run_id, job_id=job_id)
    if job_id is not None and job is None:
        raise ValueError(f"no job with id {job_id}")
    if workflow_run_id is not None and run is None:
        raise ValueError(f"no workflow run with id {workflow_run_id}")
    reported_at = now
    if run is not None:
        repository_id = run.repository_id
        branch = run.head_branch or branch
        commit_sha = run.head_sha or commit_sha
        ci_run = f"{run.github_id}/{run.run_attempt}"
        reported_at = run.run_started_at or run.created_at
    if job is not None:
        ci_job = job.name
        commit_sha = job.head_sha or commit_sha
    if repository_id is not None:
        repository = repo.repository(session, repository_id)
        if repository is None:
            raise ValueError(f"no repository with id {repository_id}")
        project = repository.full_name
    return _Context(
        project=_clip(project, 201) or "",
        repository_id=repository_id,
        workflow_run_id=run.id if run else None,
        job_id=job.id if job else None,
        branch=_clip(branch, 255),
        commit_sha=_clip(commit_sha, 64),
        ci_run=_clip(ci_run, 200),
        ci_job=_clip(ci_job, 500),
        reported_at=reported_at,
    )


def _dedup_key(context: _Context, name: str | None, data: bytes) -> str:
    parts = (
        context.project,
        str(context.workflow_run_id or ""),
        str(context.job_id or ""),
        context.ci_run or "",
        context.ci_job or "",
        context.commit_sha or "",
        context.branch or "",
        name or "",
        hashlib.sha256(data).hexdigest(),
    )
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _stored(row: TestReport, *, created: bool) -> StoredReport:
    return StoredReport(
        report_id=row.id,
        created=created,
        name=row.name,
        tests=row.tests,
        passed=row.passed,
        failed=row.failed,
        errors=row.errors,
        skipped=row.skipped,
        flaky=row.flaky,
        duration_seconds=row.duration_seconds,
        workflow_run_id=row.workflow_run_id,
        job_id=row.job_id,
    )


def store_report(
    session: Session,
    *,
    data: bytes,
    repository_id: int | None,
    workflow_run_id: int | None,
    job_id: int | None,
    source: str,
    name: str | None = None,
    project: str | None = None,
    branch: str | None = None,
    commit_sha: str | None = None,
    ci_run: str | None = None,
    ci_job: str | None = None,
    now: datetime | None = None,
    report: parse.Report | None = None,
) -> StoredReport:
    """Parse and store one JUnit report, once.

    ``workflow_run_id``/``job_id``/``repository_id`` are database ids; the run supplies the
    repository, branch, commit and time. Raises :class:`parse.JUnitParseError` for a broken
    report (nothing is written) and ``ValueError`` for ids that name no row. ``report`` may
    carry the already parsed ``data``.
    """
    now = now or utcnow()
    context = _context(
        session,
        repository_id=repository_id,
        workflow_run_id=workflow_run_id,
        job_id=job_id,
        project=project,
        branch=branch,
        commit_sha=commit_sha,
        ci_run=ci_run,
        ci_job=ci_job,
        now=now,
    )
    name = _clip(name, 500)
    key = _dedup_key(context, name, data)
    existing = repo.report_by_key(session, key)
    if existing is not None:
        return _stored(existing, created=False)
    if report is None:
        report = parse.parse(data, name=name)
    elif name:
        report.name = name
    return _write(session, report=report, context=context, key=key, source=source, now=now)


def _write(
    session: Session,
    *,
    report: parse.Report,
    context: _Context,
    key: str,
    source: str,
    now: datetime,
) -> StoredReport:
    values = {
        "dedup_key": key,
        "project": context.project,
        "repository_id": context.repository_id,
        "workflow_run_id": context.workflow_run_id,
        "job_id": context.job_id,
        "source": source[:200],
        "name": (report.name or "")[:500] or None,
        "branch": context.branch,
        "commit_sha": context.commit_sha,
        "ci_run": context.ci_run,
        "ci_job": context.ci_job,
        "tests": len(report.cases),
        "passed": report.count("passed"),
        "failed": report.count("failed"),
        "errors": report.count("error"),
        "skipped": report.count("skipped"),
        "flaky": report.flaky,
        "duration_seconds": report.duration,
        "reported_at": context.reported_at,
        "created_at": now,
    }
    report_id = repo.insert_report(session, values)
    if report_id is None:  # stored by a concurrent request a moment ago
        existing = repo.report_by_key(session, key)
        assert existing is not None
        return _stored(existing, created=False)
    seen_at = context.reported_at
    keyed = [(case_key(context.project, case.identity), case) for case in report.cases]
    ids = repo.ensure_cases(
        session,
        [
            {
                "key": case_id_key,
                "project": context.project,
                "repository_id": context.repository_id,
                "suite": case.suite,
                "classname": case.classname,
                "name": case.name,
                "file": case.file,
                "first_seen_at": seen_at,
                "last_seen_at": seen_at,
                "last_outcome": case.outcome,
            }
            for case_id_key, case in keyed
        ],
    )
    by_outcome: dict[str, list[int]] = defaultdict(list)
    rows = []
    for case_id_key, case in keyed:
        test_case_id = ids[case_id_key]
        by_outcome[case.outcome].append(test_case_id)
        rows.append(
            {
                "report_id": report_id,
                "test_case_id": test_case_id,
                "outcome": case.outcome,
                "duration_seconds": case.duration,
                "message": case.message,
                "details": case.details,
                "attempts": case.attempts,
                "flaky": case.flaky,
                "retries": [
                    {"outcome": r.outcome, "message": r.message, "duration_seconds": r.duration}
                    for r in case.retries
                ],
                "commit_sha": context.commit_sha,
                "reported_at": seen_at,
            }
        )
    repo.insert_results(session, rows)
    repo.touch_cases(session, by_outcome, seen_at=seen_at)
    return StoredReport(
        report_id=report_id,
        created=True,
        name=values["name"],
        tests=len(report.cases),
        passed=report.count("passed"),
        failed=report.count("failed"),
        errors=report.count("error"),
        skipped=report.count("skipped"),
        flaky=report.flaky,
        duration_seconds=report.duration,
        workflow_run_id=context.workflow_run_id,
        job_id=context.job_id,
    )


# --- reads ---------------------------------------------------------------------------------


def _summary(test_case: TestCase, stats: object) -> TestSummary:
    runs = int(getattr(stats, "runs", 0) or 0)
    failures = int(getattr(stats, "failures", 0) or 0)
    skips = int(getattr(stats, "skips", 0) or 0)
    counted = runs - skips
    return TestSummary(
        id=test_case.id,
        project=test_case.project,
        suite=test_case.suite,
        classname=test_case.classname,
        name=test_case.name,
        file=test_case.file,
        runs=runs,
        passes=int(getattr(stats, "passes", 0) or 0),
        failures=failures,
        skips=skips,
        flaky_retries=int(getattr(stats, "flaky_retries", 0) or 0),
        failure_rate=round(failures / counted, 4) if counted > 0 else None,
        avg_duration_seconds=round(float(getattr(stats, "avg_duration", 0) or 0), 6),
        max_duration_seconds=round(float(getattr(stats, "max_duration", 0) or 0), 6),
        last_outcome=test_case.last_outcome,
        last_seen_at=test_case.last_seen_at,
        url=test_url(test_case.id),
    )


def list_tests(
    session: Session,
    *,
    since: datetime,
    project: str | None = None,
    query: str | None = None,
    sort: str = "failing",
    only_failing: bool = False,
    limit: int = 50,
    offset: int = 0,
) -> TestList:
    """Tests seen since ``since`` with their counts: most failing, slowest, recent or by name."""
    if sort not in SORTS:
        raise ValueError(f"sort must be one of {', '.join(SORTS)}")
    project = _clip(project, 201)
    rows = repo.test_stats(
        session,
        since=since,
        project=project,
        query=_clip(query, 200),
        order=sort,
        only_failing=only_failing,
        limit=limit,
        offset=offset,
    )
    return TestList(
        since=since,
        sort=sort,
        total=repo.count_tests(session, since=since, project=project or None),
        items=[_summary(row[0], row) for row in rows],
    )


def flaky_tests(
    session: Session, *, since: datetime, project: str | None = None, limit: int | None = None
) -> list[FlakyTest]:
    """Tests flaky since ``since``: passed after a retry in one report, or failed and passed
    on one commit. Newest evidence first; the alerts may compare ``last_flaky_at``."""
    project = _clip(project, 201)
    retry_passes: dict[int, int] = {}
    last: dict[int, datetime] = {}
    commits: dict[int, int] = defaultdict(int)
    for test_case_id, count, last_at in repo.flaky_in_reports(
        session, since=since, project=project
    ):
        retry_passes[test_case_id] = int(count)
        last[test_case_id] = last_at
    for test_case_id, _sha, last_at in repo.flaky_on_commits(session, since=since, project=project):
        commits[test_case_id] += 1
        if test_case_id not in last or last_at > last[test_case_id]:
            last[test_case_id] = last_at
    cases = repo.cases_by_id(session, last)
    ordered = sorted(last, key=lambda case_id: (last[case_id], case_id), reverse=True)
    if limit is not None:
        ordered = ordered[:limit]
    return [
        FlakyTest(
            id=case_id,
            project=cases[case_id].project,
            suite=cases[case_id].suite,
            classname=cases[case_id].classname,
            name=cases[case_id].name,
            file=cases[case_id].file,
            retry_passes=retry_passes.get(case_id, 0),
            flaky_commits=commits.get(case_id, 0),
            last_flaky_at=last[case_id],
            url=test_url(case_id),
        )
        for case_id in ordered
        if case_id in cases
    ]


def test_detail(
    session: Session, *, test_case_id: int, since: datetime, limit: int = 100
) -> TestDetail | None:
    """One test: its counts since ``since`` and its newest ``limit`` results with their runs."""
    test_case = session.get(TestCase, test_case_id)
    if test_case is None:
        return None
    stats = repo.test_stats(
        session,
        since=since,
        project=None,
        query=None,
        order="name",
        only_failing=False,
        limit=1,
        offset=0,
        test_case_id=test_case_id,
    )
    summary = _summary(test_case, stats[0] if stats else None)
    history = []
    for result, report, run, job in repo.history(session, test_case_id=test_case_id, limit=limit):
        history.append(
            HistoryEntry(
                outcome=result.outcome,
                duration_seconds=result.duration_seconds,
                message=result.message,
                details=result.details,
                attempts=result.attempts,
                flaky=result.flaky,
                retries=[RetryOut.model_validate(retry) for retry in result.retries or []],
                reported_at=result.reported_at,
                commit_sha=result.commit_sha,
                branch=report.branch,
                report_id=report.id,
                report_name=report.name,
                source=report.source,
                ci_run=report.ci_run,
                ci_job=report.ci_job,
                workflow_run_id=report.workflow_run_id,
                run_number=run.run_number if run else None,
                run_attempt=run.run_attempt if run else None,
                run_url=run.html_url if run else None,
                job_name=job.name if job else None,
                job_url=job.html_url if job else None,
            )
        )
    return TestDetail(test=summary, history=history)


def _run_result(result: TestResult, test_case: TestCase) -> RunTestResult:
    return RunTestResult(
        test_case_id=test_case.id,
        suite=test_case.suite,
        classname=test_case.classname,
        name=test_case.name,
        file=test_case.file,
        outcome=result.outcome,
        duration_seconds=result.duration_seconds,
        message=result.message,
        attempts=result.attempts,
        flaky=result.flaky,
        report_id=result.report_id,
        url=test_url(test_case.id),
    )


def failures_for_run(session: Session, *, workflow_run_id: int) -> list[RunTestResult]:
    """The tests that failed or errored in a GitHub run attempt (database id), errors first."""
    return [
        _run_result(result, test_case)
        for result, test_case, _report in repo.run_results(
            session, workflow_run_id=workflow_run_id, outcomes=FAILING
        )
    ]


def run_tests(session: Session, *, workflow_run_id: int, outcome: str | None = None) -> RunTests:
    """Every report of a run attempt with its totals, and its results (failing first)."""
    reports = repo.run_reports(session, workflow_run_id=workflow_run_id)
    results = repo.run_results(
        session, workflow_run_id=workflow_run_id, outcomes=[outcome] if outcome else None
    )
    return RunTests(
        workflow_run_id=workflow_run_id,
        reports=[
            RunReport(
                id=r.id,
                name=r.name,
                source=r.source,
                tests=r.tests,
                passed=r.passed,
                failed=r.failed,
                errors=r.errors,
                skipped=r.skipped,
                flaky=r.flaky,
                duration_seconds=r.duration_seconds,
            )
            for r in reports
        ],
        tests=sum(r.tests for r in reports),
        passed=sum(r.passed for r in reports),
        failed=sum(r.failed for r in reports),
        errors=sum(r.errors for r in reports),
        skipped=sum(r.skipped for r in reports),
        flaky=sum(r.flaky for r in reports),
        results=[_run_result(result, test_case) for result, test_case, _ in results],
    )


def count_tests(session: Session, *, since: datetime, project: str | None = None) -> int:
    """How many distinct tests have results since ``since``."""
    return repo.count_tests(session, since=since, project=_clip(project, 201))


def projects(session: Session) -> list[str]:
    return repo.projects(session)
