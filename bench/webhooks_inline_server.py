"""The real application plus design C's original method, for the webhook benchmark only.

``POST /bench/inline-webhook`` does what design C first proposed: verify the signature, parse
the delivery, then process it (``cipulse.webhooks.service.process``) inside the request, in one
transaction, and only then answer. Nothing goes to the inbox, so nothing is deduplicated and a
failure is an error answer (GitHub does not retry it by itself).

Everything else is ``cipulse serve``: the same settings from the ``CIPULSE_*`` environment, the
same logging, the same uvicorn call.

    .venv/bin/python bench/webhooks_inline_server.py --port 8123
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import Annotated, Any

import uvicorn
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse

from cipulse.app import create_app
from cipulse.context import AppContext, get_ctx
from cipulse.github.webhooks import SIGNATURE_HEADER, DeliveryError, parse_delivery
from cipulse.github.webhooks import verify_signature as check_signature
from cipulse.models import utcnow
from cipulse.settings import Settings
from cipulse.webhooks import service
from cipulse.webhooks.routes import _read_capped
from cipulse.webhooks.tasks import GITHUB_CHANGED

INLINE_PATH = "/bench/inline-webhook"

router = APIRouter()


@router.post(INLINE_PATH)
async def inline_webhook(
    request: Request, ctx: Annotated[AppContext, Depends(get_ctx)]
) -> JSONResponse:
    """Verify, parse, process in one transaction, then answer (design C's original method)."""
    settings = ctx.settings
    if settings.webhook_secret is None:
        raise HTTPException(503, detail="set CIPULSE_WEBHOOK_SECRET")
    body = await _read_capped(request, int(settings.webhook_max_body_mb * 1024 * 1024))
    try:
        check_signature(
            body, request.headers.get(SIGNATURE_HEADER), settings.webhook_secret.get_secret_value()
        )
    except DeliveryError as exc:
        raise HTTPException(401, detail=str(exc)) from None
    try:
        delivery = parse_delivery(request.headers, body)
    except DeliveryError as exc:
        raise HTTPException(400, detail=str(exc)) from None

    def work() -> str:
        with ctx.db.write() as uow:
            outcome = service.process(
                uow.session, event=delivery.event, payload=delivery.payload, now=utcnow()
            )
            changes: list[dict[str, Any]] = outcome.changes
            uow.after_commit(lambda: [ctx.bus.publish(GITHUB_CHANGED, c) for c in changes])
        return outcome.state

    state = await asyncio.to_thread(work)
    return JSONResponse(
        {"status": state, "event": delivery.event, "delivery": delivery.delivery_id}
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    settings = Settings()
    # As `cipulse serve`: same logging setup, same uvicorn call (access log included).
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = create_app(settings)
    app.include_router(router)
    uvicorn.run(app, host=args.host, port=args.port, log_level=settings.log_level.lower())


if __name__ == "__main__":
    main()
