"""The webhook deliveries page (``GET /webhooks``): what GitHub sent, and what became of it.

It reads the inbox as ``GET /api/webhooks/deliveries`` does, newest first, filtered by the state
in the URL. That API is for admins once ``CIPULSE_ADMIN_TOKEN`` is set, and so is this table: the
page then comes without it, and ``static/deliveries.js`` asks for it with the token typed into the
page. The same route answers with only the table (or one delivery's rows, ``?delivery=``) when
asked with ``HX-Request`` and ``HX-Target: deliveries``, which is also how a row is refreshed
after "Replay" (a button posting to ``/api/webhooks/deliveries/{id}/replay``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.responses import Response

from cipulse.auth import require_admin_token
from cipulse.context import AppContext, get_ctx
from cipulse.models import WebhookDelivery, utcnow
from cipulse.web.templating import templates
from cipulse.webhooks import repository as inbox

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

STATES = ("pending", "processed", "ignored", "failed")
TONES = {"processed": "success", "failed": "failure", "pending": "running"}
LIMIT = 100
TARGET = "deliveries"
ERROR_LINE_MAX = 240
# The answer depends on the token; the same URL serves the page and its fragments.
HEADERS = {"Vary": "HX-Request, HX-Target, Authorization", "Cache-Control": "no-store"}


def until(moment: datetime, now: datetime) -> str:
    """``in 5 min``: when a pending delivery is tried again."""
    seconds = (moment - now).total_seconds()
    if seconds < 60:
        return "within a minute"
    if seconds < 3600:
        return f"in {int(seconds // 60)} min"
    return f"in {int(seconds // 3600)} h"


@dataclass(frozen=True)
class DeliveryRow:
    id: int
    delivery_id: str
    event: str
    action: str | None
    repository: str | None
    state: str
    attempts: int
    received_at: datetime
    next_attempt_at: datetime
    last_error: str | None
    now: datetime

    @property
    def tone(self) -> str:
        return TONES.get(self.state, "muted")

    @property
    def error_shown(self) -> bool:
        """A failed delivery, or a pending one whose last try failed, says why."""
        return bool(self.last_error and self.last_error.strip()) and self.state in (
            "failed",
            "pending",
        )

    @property
    def error_line(self) -> str:
        text = (self.last_error or "").strip()
        line = text.splitlines()[0] if text else ""
        return line if len(line) <= ERROR_LINE_MAX else line[: ERROR_LINE_MAX - 1] + "…"

    @property
    def error_more(self) -> bool:
        """The whole error says more than its first line."""
        return (self.last_error or "").strip() != self.error_line

    @property
    def retry_in(self) -> str:
        return until(self.next_attempt_at, self.now)


def rows(deliveries: Iterable[WebhookDelivery], now: datetime) -> list[DeliveryRow]:
    return [
        DeliveryRow(
            id=d.id,
            delivery_id=d.delivery_id,
            event=d.event,
            action=d.action,
            repository=d.repository,
            state=d.state,
            attempts=d.attempts,
            received_at=d.received_at,
            next_attempt_at=d.next_attempt_at,
            last_error=d.last_error,
            now=now,
        )
        for d in deliveries
    ]


def _admin_ok(ctx: AppContext, authorization: str | None) -> bool:
    """What ``GET /api/webhooks/deliveries`` would decide for this request."""
    try:
        require_admin_token(ctx, authorization)
    except HTTPException:
        return False
    return True


@router.get("/webhooks", response_class=HTMLResponse, name="webhooks_page")
def webhooks_page(
    request: Request,
    ctx: Annotated[AppContext, Depends(get_ctx)],
    state: str | None = None,
    delivery: int | None = None,
    hx_request: Annotated[str | None, Header()] = None,
    hx_target: Annotated[str | None, Header()] = None,
    authorization: Annotated[str | None, Header()] = None,
) -> Response:
    """The newest deliveries with their state, or only the table when deliveries.js asks."""
    chosen = state if state in STATES else None  # an unknown state shows all, not an error
    fragment = hx_request == "true" and hx_target == TARGET
    allowed = _admin_ok(ctx, authorization)
    settings = ctx.settings
    now = utcnow()
    page_path = request.url_for("webhooks_page").path
    context: dict[str, object] = {
        "now": now,
        "section": "webhooks",
        "state": chosen,
        "states": STATES,
        "limit": LIMIT,
        "page_path": page_path,
        "receive_url": str(request.url_for("receive")),
        "secret_set": settings.webhook_secret is not None
        and bool(settings.webhook_secret.get_secret_value()),
        "unsigned": settings.webhook_allow_unsigned,
    }
    if fragment and not allowed:
        return HTMLResponse(
            "an admin token (CIPULSE_ADMIN_TOKEN) is needed to see webhook deliveries",
            status_code=401,
            headers={"WWW-Authenticate": "Bearer", **HEADERS},
        )
    found: list[DeliveryRow] = []
    if allowed:
        try:
            with ctx.db.read() as session:
                if fragment and delivery is not None:
                    one = inbox.get(session, delivery)
                    found = rows([one] if one else [], now)
                else:
                    found = rows(inbox.recent(session, limit=LIMIT, state=chosen), now)
        except SQLAlchemyError:
            log.exception("the webhooks page could not read the database")
            if fragment:
                return HTMLResponse("the database could not be read", 503, headers=HEADERS)
            return templates.TemplateResponse(
                request, "error.html", context, status_code=503, headers=HEADERS
            )
        if fragment and delivery is not None and not found:
            return HTMLResponse(f"no delivery {delivery}", 404, headers=HEADERS)
    admin = settings.admin_token
    context.update(
        deliveries=found,
        locked=not allowed,
        admin_required=bool(admin and admin.get_secret_value()),
    )
    name = "_deliveries.html" if fragment else "deliveries.html"
    return templates.TemplateResponse(request, name, context, headers=HEADERS)
