"""Design C's top level: ``/orgs`` (organisations as installations appear, or owners of the
configured repositories) and ``/orgs/{owner}``, each repository with its health at a glance."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.responses import Response

from cipulse.context import AppContext, get_ctx
from cipulse.explore import service as explore
from cipulse.models import utcnow
from cipulse.web.navigation import (
    NO_STORE,
    Crumb,
    base_context,
    db_error,
    not_found,
    read_view,
    valid_name,
)
from cipulse.web.templating import templates

router = APIRouter(include_in_schema=False)


@router.get("/orgs", response_class=HTMLResponse, name="orgs_page")
def orgs_page(request: Request, ctx: Annotated[AppContext, Depends(get_ctx)]) -> Response:
    """Every organisation or owner with its repositories."""
    view = read_view(request)
    now = utcnow()
    try:
        with ctx.db.read() as session:
            data = explore.orgs(session, days=view.days, now=now, app_mode=ctx.sync.app_mode)
    except SQLAlchemyError:
        return db_error(request, "organisations")
    context = base_context(request)
    context.update(
        view=view,
        now=now,
        orgs=data.orgs,
        app_mode=data.app_mode,
        title="Organizations",
        subtitle=f"{len(data.orgs)} organisation{'s' if len(data.orgs) != 1 else ''}",
        crumbs=[Crumb("Organizations", None)],
        sync_path=request.url_for("sync_page").path,
        api_path=f"{request.url_for('api_orgs').path}?days={view.days}",
    )
    return templates.TemplateResponse(request, "orgs.html", context, headers=NO_STORE)


@router.get("/orgs/{owner}", response_class=HTMLResponse, name="org_page")
def org_page(
    request: Request, owner: str, ctx: Annotated[AppContext, Depends(get_ctx)]
) -> Response:
    """One organisation or owner and its repositories."""
    view = read_view(request)
    orgs_path = request.url_for("orgs_page").path
    crumbs = [Crumb("Organizations", view.with_days(orgs_path)), Crumb(owner, None)]
    if not valid_name(owner):
        return not_found(request, f"Owner {owner}", crumbs)
    now = utcnow()
    try:
        with ctx.db.read() as session:
            data = explore.org(session, owner=owner, days=view.days, now=now)
    except SQLAlchemyError:
        return db_error(request, "organisation")
    if data is None:
        return not_found(request, f"Owner {owner}", crumbs)
    context = base_context(request)
    context.update(
        view=view,
        now=now,
        orgs=[data.org],
        app_mode=ctx.sync.app_mode,
        title=data.org.login,
        subtitle=data.org.kind if data.org.kind != "owner" else "Repository owner",
        crumbs=[crumbs[0], Crumb(data.org.login, None)],
        sync_path=request.url_for("sync_page").path,
        api_path=f"{request.url_for('api_org', owner=data.org.login).path}?days={view.days}",
    )
    return templates.TemplateResponse(request, "orgs.html", context, headers=NO_STORE)
