from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Response, status

from cipulse.auth import require_ingest_token
from cipulse.context import AppContext, get_ctx
from cipulse.ingest import service as ingest
from cipulse.ingest.schemas import IngestResult, RunEvent

router = APIRouter(tags=["ingest"])


@router.post(
    "/api/events/run",
    response_model=IngestResult,
    status_code=status.HTTP_201_CREATED,
    dependencies=[Depends(require_ingest_token)],
    responses={200: {"description": "Matched an existing run (update or duplicate)"}},
)
def post_run_event(
    event: RunEvent,
    response: Response,
    ctx: Annotated[AppContext, Depends(get_ctx)],
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> IngestResult:
    """Store a run pushed by any CI. 201 when new, 200 when it matched a stored run."""
    if idempotency_key and not event.id:
        event = event.model_copy(update={"id": idempotency_key})
    with ctx.db.write() as uow:
        result = ingest.record_run(uow, ctx=ctx, event=event)
    if not result.created:
        response.status_code = status.HTTP_200_OK
    return result
