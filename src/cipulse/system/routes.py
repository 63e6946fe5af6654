from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from sqlalchemy import text

from cipulse import migrate
from cipulse.alerts import service as alerts
from cipulse.context import AppContext, get_ctx
from cipulse.live.service import RUNS_CHANGED
from cipulse.models import utcnow

router = APIRouter(tags=["system"])


@router.get("/health")
def health(ctx: Annotated[AppContext, Depends(get_ctx)]) -> JSONResponse:
    """Liveness plus the state of each component; 503 when the database does not answer."""
    components: dict[str, Any] = {}
    ok = True
    try:
        with ctx.db.read() as session:
            session.execute(text("SELECT 1"))
            pending = alerts.pending_count(session)
        components["database"] = {
            "ok": True,
            "dialect": ctx.db.engine.dialect.name,
            "revision": migrate.current_revision(ctx.db.engine),
        }
    except Exception as exc:
        ok = False
        pending = None
        components["database"] = {"ok": False, "error": type(exc).__name__}
    components["email"] = {"enabled": ctx.settings.smtp_enabled, "pending": pending}
    components["live"] = {"ok": True, "listeners": ctx.bus.subscriber_count(RUNS_CHANGED)}
    body = {"ok": ok, "time": utcnow().isoformat(), "components": components}
    return JSONResponse(body, status_code=200 if ok else 503)
