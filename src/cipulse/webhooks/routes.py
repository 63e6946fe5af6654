from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse

from cipulse.auth import require_admin_token
from cipulse.context import AppContext, get_ctx
from cipulse.github.webhooks import (
    SIGNATURE_HEADER,
    DeliveryError,
    parse_delivery,
    verify_signature,
)
from cipulse.models import utcnow
from cipulse.webhooks import repository as inbox
from cipulse.webhooks.schemas import Accepted, DeliveryOut

router = APIRouter(tags=["webhooks"])


async def _read_capped(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, detail=f"body larger than {limit} bytes")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, detail=f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/webhooks/github",
    status_code=202,
    response_model=Accepted,
    responses={200: {"model": Accepted}, 401: {}, 413: {}, 503: {}},
)
async def receive(request: Request, ctx: Annotated[AppContext, Depends(get_ctx)]) -> JSONResponse:
    """Verify, store the raw delivery, answer at once; it is processed after the answer."""
    with ctx.webhook_worker.acknowledging():
        return await _receive(request, ctx)


async def _receive(request: Request, ctx: AppContext) -> JSONResponse:
    settings = ctx.settings
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
    if secret is None and not settings.webhook_allow_unsigned:
        raise HTTPException(
            503,
            detail="webhooks are off: set CIPULSE_WEBHOOK_SECRET to the secret configured on "
            "the GitHub webhook or App",
        )
    body = await _read_capped(request, int(settings.webhook_max_body_mb * 1024 * 1024))
    try:
        if secret is not None:
            verify_signature(body, request.headers.get(SIGNATURE_HEADER), secret)
    except DeliveryError as exc:
        raise HTTPException(401, detail=str(exc)) from None
    try:
        delivery = parse_delivery(request.headers, body)
    except DeliveryError as exc:
        raise HTTPException(400, detail=str(exc)) from None

    stored_id = await ctx.inbox_writer.store(delivery, body)
    answer = Accepted(
        status="queued" if stored_id is not None else "duplicate",
        id=stored_id,
        event=delivery.event,
        delivery=delivery.delivery_id,
    )
    return JSONResponse(answer.model_dump(), status_code=202 if stored_id is not None else 200)


def _out(d: object) -> DeliveryOut:
    return DeliveryOut.model_validate(d, from_attributes=True)


@router.get(
    "/api/webhooks/deliveries",
    response_model=list[DeliveryOut],
    dependencies=[Depends(require_admin_token)],
)
def list_deliveries(
    ctx: Annotated[AppContext, Depends(get_ctx)],
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    state: Annotated[str | None, Query(pattern="^(pending|processed|ignored|failed)$")] = None,
) -> list[DeliveryOut]:
    """The newest deliveries with their processing state (admin)."""
    with ctx.db.read() as session:
        return [_out(d) for d in inbox.recent(session, limit=limit, state=state)]


@router.post(
    "/api/webhooks/deliveries/{delivery_id}/replay",
    response_model=DeliveryOut,
    dependencies=[Depends(require_admin_token)],
)
def replay_delivery(delivery_id: int, ctx: Annotated[AppContext, Depends(get_ctx)]) -> DeliveryOut:
    """Process a stored delivery again (admin), e.g. after fixing what made it fail."""
    with ctx.db.write() as uow:
        if not inbox.replay(uow.session, delivery_id, now=utcnow()):
            raise HTTPException(404, detail=f"no delivery {delivery_id}")
        # The row as replayed: once committed, the worker may take it up at once.
        replayed = _out(inbox.get(uow.session, delivery_id))
        uow.after_commit(ctx.webhook_worker.wake)
    return replayed
