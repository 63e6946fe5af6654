"""Design A's job failure-rate page (``GET /jobs``), rendered on the server.

Every choice lives in the URL (repository, branch, window, sort column and direction), so a view
can be shared and the sort headers are plain links: no script is needed to read or sort the
table. The numbers come from ``jobstats.service.ci_data``, the same call as ``/api/ci-data``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.responses import Response

from cipulse.context import AppContext, get_ctx
from cipulse.jobstats import service as jobstats
from cipulse.jobstats.routes import resolve_repo
from cipulse.jobstats.schemas import JobStat
from cipulse.models import utcnow
from cipulse.sync import repository as sync_repository
from cipulse.web import export
from cipulse.web.sparkline import sparkline
from cipulse.web.templating import templates

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

WINDOWS = (7, 14, 30, 90)
DEFAULT_DAYS = 30
DEFAULT_SORT = "failureRate"
NO_STORE = {"Cache-Control": "no-cache"}

SortKey = Callable[[JobStat], Any]


@dataclass(frozen=True)
class Column:
    key: str  # the ``sort`` value, named like the /api/ci-data field it sorts by
    label: str
    title: str
    numeric: bool = True
    align_right: bool = True

    @property
    def first_dir(self) -> str:
        """Direction of a first click: names A to Z, numbers largest first."""
        return "desc" if self.numeric else "asc"


COLUMNS = (
    Column("name", "Job", "Job name, A to Z", numeric=False, align_right=False),
    Column("totalRuns", "Runs", "Executions counted: finished as success or failure"),
    Column("failures", "Failures", "Failed, timed out or failed to start"),
    Column("successes", "Successes", "Succeeded or neutral"),
    Column("failureRate", "Failure rate", "Failures out of counted runs"),
    Column("last7Days", "Last 7 d", "Failure rate over the last 7 days"),
    Column("flaky", "Flaky", "Runs where the job failed, then passed in a later attempt"),
    Column("lastFailure", "Last failure", "When the job last failed", align_right=False),
)
COLUMN_BY_KEY = {c.key: c for c in COLUMNS}

SORT_KEYS: dict[str, SortKey] = {
    "name": lambda j: j.name.casefold(),
    "totalRuns": lambda j: j.totalRuns,
    "failures": lambda j: j.failures,
    "successes": lambda j: j.successes,
    "failureRate": lambda j: j.failureRate,
    "last7Days": lambda j: j.last7Days.failureRate if j.last7Days.totalRuns else None,
    "flaky": lambda j: j.flaky,
    "lastFailure": lambda j: j.recentFailures[0].createdAt if j.recentFailures else None,
}


def sort_jobs(jobs: Iterable[JobStat], key: str, direction: str) -> list[JobStat]:
    """Sorted by one column; ties by name (A to Z either way); no value last either way."""
    by_name = sorted(jobs, key=lambda j: (j.name.casefold(), j.name))
    value = SORT_KEYS[key]
    if key == "name":
        return by_name[::-1] if direction == "desc" else by_name
    known = [j for j in by_name if value(j) is not None]
    unknown = [j for j in by_name if value(j) is None]
    return sorted(known, key=value, reverse=direction == "desc") + unknown  # sort is stable


@dataclass(frozen=True)
class View:
    """The page's state as it appears in the URL; ``href`` builds a link to a variant of it."""

    path: str
    repo: str
    branch: str | None
    days: int
    sort: str
    dir: str

    def href(self, **changes: Any) -> str:
        view = replace(self, **changes)
        params = {"repo": view.repo, "branch": view.branch, "days": view.days}
        params.update(sort=view.sort, dir=view.dir)
        query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
        return f"{view.path}?{query}"

    def sort_href(self, column: Column) -> str:
        if column.key == self.sort:
            return self.href(dir="asc" if self.dir == "desc" else "desc")
        return self.href(sort=column.key, dir=column.first_dir)

    def aria_sort(self, column: Column) -> str | None:
        if column.key != self.sort:
            return None
        return "ascending" if self.dir == "asc" else "descending"


@dataclass(frozen=True)
class RepoChoice:
    name: str
    tracked: bool
    default_branch: str | None
    branches: list[str]
    html_url: str | None


def _days(raw: str | None) -> int:
    try:
        value = int(raw or DEFAULT_DAYS)
    except ValueError:
        return DEFAULT_DAYS
    return value if value in WINDOWS else DEFAULT_DAYS


def _default_repo(choices: list[RepoChoice]) -> str:
    tracked = [c.name for c in choices if c.tracked]
    return (tracked or [c.name for c in choices])[0]


def _branch_options(choice: RepoChoice, branch: str | None) -> list[str]:
    options = [b for b in [choice.default_branch, *choice.branches, branch] if b]
    return list(dict.fromkeys(options))


def _known_repos(ctx: AppContext) -> list[RepoChoice]:
    with ctx.db.read() as session:
        return [
            RepoChoice(
                name=r.full_name,
                tracked=r.tracked,
                default_branch=r.default_branch,
                branches=list(r.branches or []),
                html_url=r.html_url,
            )
            for r in sync_repository.all_repos(session)
        ]


def heatmap(jobs: list[JobStat], since: datetime) -> dict[str, Any]:
    """Job x day failure rates for the heatmap (ECharts), in the table's order."""
    width = max((len(j.dailyFailureRate) for j in jobs), default=0)
    first = since.date()
    return {
        "jobs": [j.name for j in jobs],
        "days": [(first + timedelta(days=i)).isoformat() for i in range(width)],
        "rates": [j.dailyFailureRate for j in jobs],
    }


@router.get("/jobs", response_class=HTMLResponse, name="jobs_page")
def jobs_page(
    request: Request,
    ctx: Annotated[AppContext, Depends(get_ctx)],
    repo: str | None = None,
    branch: str | None = None,
    days: str | None = None,
    sort: str | None = None,
    direction: Annotated[str | None, Query(alias="dir")] = None,
) -> Response:
    """Failure rate per job of one repository, branch and window; sortable by any column."""
    now = utcnow()
    context: dict[str, Any] = {"now": now, "section": "jobs"}
    try:
        choices = _known_repos(ctx)
        if not choices and not (repo or "").strip():
            context.update(
                token_configured=ctx.settings.github_token is not None,
                sync_path=request.url_for("sync_page").path,
            )
            return templates.TemplateResponse(request, "jobs_none.html", context, headers=NO_STORE)
        wanted = (repo or "").strip() or _default_repo(choices)
        try:
            repo_id, full_name, _synced = resolve_repo(ctx, wanted)
        except HTTPException as exc:
            if exc.status_code != 404:
                raise
            context.update(missing=wanted, choices=choices, jobs_path=request.url.path)
            return templates.TemplateResponse(
                request, "not_found.html", context, status_code=404, headers=NO_STORE
            )
        key = sort if sort in SORT_KEYS else DEFAULT_SORT
        first = COLUMN_BY_KEY[key].first_dir
        view = View(
            path=request.url.path,
            repo=full_name,
            branch=(branch or "").strip() or None,
            days=_days(days),
            sort=key,
            dir=direction if direction in ("asc", "desc") else first,
        )
        with ctx.db.read() as session:
            data = jobstats.ci_data(
                session,
                repo_id=repo_id,
                repo=full_name,
                branch=view.branch,
                days=view.days,
                now=now,
            )
    except SQLAlchemyError:
        log.exception("the jobs page could not read the database")
        return templates.TemplateResponse(
            request, "error.html", context, status_code=503, headers=NO_STORE
        )

    fallback = RepoChoice(full_name, False, None, [], None)  # added since the list was read
    choice = next((c for c in choices if c.name.lower() == full_name.lower()), fallback)
    jobs = sort_jobs(data.jobStats.values(), view.sort, view.dir)
    context.update(
        view=view,
        data=data,
        choice=choice,
        choices=choices,
        columns=COLUMNS,
        day_windows=WINDOWS,
        jobs=jobs,
        sparks={j.name: sparkline(j.dailyFailureRate, days=view.days) for j in jobs},
        branch_options=_branch_options(choice, view.branch),
        flaky_total=sum(j.flaky for j in jobs),
        heatmap=heatmap(jobs, now - timedelta(days=view.days)),
        export_csv=export.link(
            "/api/stats/jobs", {"repo": view.repo, "branch": view.branch, "days": view.days}, "csv"
        ),
        export_json=export.link(
            "/api/stats/jobs", {"repo": view.repo, "branch": view.branch, "days": view.days}, "json"
        ),
        sync_path=request.url_for("sync_page").path,
    )
    return templates.TemplateResponse(request, "jobs.html", context, headers=NO_STORE)
