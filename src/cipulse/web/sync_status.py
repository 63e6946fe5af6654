"""The sync status page (``GET /sync``) and the GitHub line on the dashboard.

Both read the same rows as ``GET /api/sync/status``: every known repository with its sync state.
"Sync now" is a button whose script posts to ``/api/refresh?repo=``; this module only renders.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from starlette.responses import Response

from cipulse.context import AppContext, get_ctx
from cipulse.models import utcnow
from cipulse.sync import repository as sync_repository
from cipulse.web.templating import templates

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

ERROR_LINE_MAX = 240
NO_STORE = {"Cache-Control": "no-cache"}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class RepoStatus:
    """What a person needs to know about one repository's sync, read once from the database."""

    name: str
    html_url: str | None
    tracked: bool
    branches: list[str]
    default_branch: str | None
    runs_stored: int
    syncing: bool
    last_started_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    last_requests: int
    last_not_modified: int
    rate_limit: int | None
    rate_remaining: int | None
    rate_reset_at: datetime | None

    @property
    def error_line(self) -> str | None:
        """The error's first line, short enough for one line of a card."""
        if not self.last_error:
            return None
        line = self.last_error.strip().splitlines()[0] if self.last_error.strip() else "unknown"
        return line if len(line) <= ERROR_LINE_MAX else line[: ERROR_LINE_MAX - 1] + "…"

    @property
    def has_budget(self) -> bool:
        return self.rate_limit is not None and self.rate_remaining is not None

    @property
    def budget_percent(self) -> float:
        if not self.rate_limit or self.rate_remaining is None:
            return 0.0
        return round(100.0 * max(0, min(self.rate_remaining, self.rate_limit)) / self.rate_limit, 1)

    @property
    def budget_tone(self) -> str:
        share = self.budget_percent
        return "failure" if share < 10 else "running" if share < 25 else "success"


@dataclass(frozen=True)
class GithubLine:
    """The dashboard's one-line summary of the GitHub sync, or of what went wrong with it."""

    repos: list[RepoStatus]  # tracked ones
    failing: list[RepoStatus]
    budget: RepoStatus | None  # the freshest rate-limit reading

    @property
    def latest_success(self) -> datetime | None:
        return max((r.last_success_at for r in self.repos if r.last_success_at), default=None)

    @property
    def syncing(self) -> bool:
        return any(r.syncing for r in self.repos)


def repo_statuses(session: Session, syncing: set[str]) -> list[RepoStatus]:
    rows = sync_repository.status_rows(session)
    return [
        RepoStatus(
            name=repo.full_name,
            html_url=repo.html_url,
            tracked=repo.tracked,
            branches=list(repo.branches or []),
            default_branch=repo.default_branch,
            runs_stored=count,
            syncing=repo.full_name.lower() in syncing,
            last_started_at=st.last_started_at if st else None,
            last_success_at=st.last_success_at if st else None,
            last_error=st.last_error if st else None,
            last_error_at=st.last_error_at if st else None,
            last_requests=st.last_requests if st else 0,
            last_not_modified=st.last_not_modified if st else 0,
            rate_limit=st.rate_limit if st else None,
            rate_remaining=st.rate_remaining if st else None,
            rate_reset_at=st.rate_reset_at if st else None,
        )
        for repo, st, count in rows
    ]


def freshest_budget(statuses: list[RepoStatus]) -> RepoStatus | None:
    """The rate limit belongs to the token, so the most recent reading of any repository wins."""
    readings = [s for s in statuses if s.has_budget]
    return max(readings, key=lambda s: s.last_started_at or EPOCH, default=None)


def github_line(statuses: list[RepoStatus]) -> GithubLine | None:
    tracked = [s for s in statuses if s.tracked]
    if not tracked:
        return None
    return GithubLine(
        repos=tracked,
        failing=[s for s in tracked if s.last_error],
        budget=freshest_budget(statuses),
    )


@router.get("/sync", response_class=HTMLResponse, name="sync_page")
def sync_page(request: Request, ctx: Annotated[AppContext, Depends(get_ctx)]) -> Response:
    """One card per known repository: freshness, last error, requests spent, API budget."""
    now = utcnow()
    context: dict[str, object] = {"now": now, "section": "sync"}
    try:
        with ctx.db.read() as session:
            statuses = repo_statuses(session, ctx.sync.syncing())
    except SQLAlchemyError:
        log.exception("the sync page could not read the database")
        return templates.TemplateResponse(
            request, "error.html", context, status_code=503, headers=NO_STORE
        )
    admin = ctx.settings.admin_token
    context.update(
        statuses=statuses,
        budget=freshest_budget(statuses),
        token_configured=ctx.settings.github_token is not None,
        admin_required=bool(admin and admin.get_secret_value()),
        poll_minutes=f"{ctx.settings.poll_interval_minutes:g}",
        reconcile_cron=ctx.settings.reconcile_cron,
        refresh_path=request.url_for("refresh").path,
        jobs_path=request.url_for("jobs_page").path,
    )
    return templates.TemplateResponse(request, "sync.html", context, headers=NO_STORE)
