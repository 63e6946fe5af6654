"""What the navigation pages (orgs, repos, runs) share: the filters kept in the URL, the
breadcrumbs, and the error page. Bad filter values fall back to defaults rather than an error
page, so an old or hand-edited link still opens."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from starlette.responses import Response

from cipulse.explore.repository import STATUS_FILTERS
from cipulse.explore.service import Filters
from cipulse.web.templating import templates

log = logging.getLogger(__name__)

WINDOWS = (1, 7, 14, 30, 90)
DEFAULT_DAYS = 7
PER_PAGE = 25
NO_STORE = {"Cache-Control": "no-cache", "Vary": "HX-Request, HX-Target"}


@dataclass(frozen=True)
class Crumb:
    label: str
    href: str | None  # None: the current page


@dataclass(frozen=True)
class View:
    """A page's state as it appears in its URL; ``href`` builds a link to a variant of it."""

    path: str
    days: int = DEFAULT_DAYS
    branch: str | None = None
    status: str | None = None
    event: str | None = None
    page: int = 1

    @property
    def filters(self) -> Filters:
        return Filters(branch=self.branch, status=self.status, event=self.event)

    @property
    def filtered(self) -> bool:
        return bool(self.branch or self.status or self.event)

    def query(self, **changes: Any) -> str:
        view = replace(self, **changes)
        params = {
            "days": view.days if view.days != DEFAULT_DAYS else None,
            "branch": view.branch,
            "status": view.status,
            "event": view.event,
            "page": view.page if view.page != 1 else None,
        }
        return urlencode({k: v for k, v in params.items() if v not in (None, "")})

    def href(self, **changes: Any) -> str:
        query = self.query(**changes)
        return f"{self.path}?{query}" if query else self.path

    def with_days(self, path: str) -> str:
        """A link down the hierarchy that keeps the window."""
        return f"{path}?days={self.days}" if self.days != DEFAULT_DAYS else path


def _text(raw: str | None, limit: int) -> str | None:
    value = (raw or "").strip()
    if not value or len(value) > limit or any(ord(c) < 32 for c in value):
        return None
    return value


def read_view(request: Request) -> View:
    q = request.query_params
    try:
        days = int(q.get("days") or DEFAULT_DAYS)
    except ValueError:
        days = DEFAULT_DAYS
    try:
        page = max(1, min(int(q.get("page") or 1), 100_000))
    except ValueError:
        page = 1
    status = q.get("status") or None
    return View(
        path=request.url.path,
        days=days if days in WINDOWS else DEFAULT_DAYS,
        branch=_text(q.get("branch"), 255),
        status=status if status in STATUS_FILTERS else None,
        event=_text(q.get("event"), 60),
        page=page,
    )


def valid_name(*parts: str) -> bool:
    return all(
        0 < len(p) <= 100 and all(c.isascii() and (c.isalnum() or c in "._-") for c in p)
        for p in parts
    )


def base_context(request: Request, section: str = "orgs") -> dict[str, Any]:
    return {
        "section": section,
        "day_windows": WINDOWS,
        "status_filters": STATUS_FILTERS,
        "orgs_path": request.url_for("orgs_page").path,
        "prefix": request.scope.get("root_path", ""),
    }


def not_found(request: Request, what: str, crumbs: list[Crumb]) -> Response:
    context = base_context(request)
    context.update(what=what, crumbs=crumbs)
    return templates.TemplateResponse(
        request, "nav_missing.html", context, status_code=404, headers=NO_STORE
    )


def db_error(request: Request, where: str) -> Response:
    log.exception("the %s page could not read the database", where)
    return templates.TemplateResponse(
        request, "error.html", base_context(request), status_code=503, headers=NO_STORE
    )
