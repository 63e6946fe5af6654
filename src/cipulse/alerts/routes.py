"""The alerts API: channels, rules, test alerts, history.

Reading (history, open incidents, channels with their targets masked, rules) is open like the
rest of the dashboard; every change needs the admin token. A channel's secrets (webhook URL,
HMAC secret, SMTP password) are never sent back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status
from sqlalchemy.orm import Session

from cipulse.alerts import repository, service
from cipulse.alerts.schemas import (
    ChannelIn,
    ChannelOut,
    DeliveryOut,
    EventOut,
    IncidentOut,
    RuleIn,
    RuleOut,
    TestAlertOut,
)
from cipulse.auth import require_admin_token
from cipulse.context import AppContext, get_ctx
from cipulse.models import utcnow
from cipulse.params import RowId

router = APIRouter(prefix="/api/alerts", tags=["alerts"])
Ctx = Annotated[AppContext, Depends(get_ctx)]
ADMIN = [Depends(require_admin_token)]
T = TypeVar("T")


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except service.NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from None
    except service.Conflict as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from None


def _write(ctx: AppContext, work: Callable[..., T], *, wake: bool = False) -> T:
    with _errors(), ctx.db.write() as uow:
        result = work(uow.session)
        if wake:
            uow.after_commit(ctx.alert_worker.wake)
        return result


@router.get("/channels", response_model=list[ChannelOut])
def list_channels(ctx: Ctx) -> list[ChannelOut]:
    """Every channel, where it sends (secrets masked) and whether it is switched off, and why."""
    with ctx.db.read() as session:
        return [service.channel_out(c, ctx.settings) for c in repository.channels(session)]


@router.post("/channels", response_model=ChannelOut, status_code=201, dependencies=ADMIN)
def create_channel(ctx: Ctx, body: ChannelIn) -> ChannelOut:
    return _write(
        ctx,
        lambda s: service.channel_out(
            service.create_channel(s, data=body, now=utcnow()), ctx.settings
        ),
    )


@router.put("/channels/{channel_id}", response_model=ChannelOut, dependencies=ADMIN)
def update_channel(ctx: Ctx, channel_id: RowId, body: ChannelIn) -> ChannelOut:
    return _write(
        ctx,
        lambda s: service.channel_out(
            service.update_channel(s, channel_id=channel_id, data=body, now=utcnow()),
            ctx.settings,
        ),
    )


@router.delete("/channels/{channel_id}", status_code=204, dependencies=ADMIN)
def delete_channel(ctx: Ctx, channel_id: RowId) -> Response:
    _write(ctx, lambda s: service.delete_channel(s, channel_id=channel_id))
    return Response(status_code=204)


@router.post("/channels/{channel_id}/enable", response_model=ChannelOut, dependencies=ADMIN)
def enable_channel(ctx: Ctx, channel_id: RowId) -> ChannelOut:
    """Switch a channel on again, e.g. after fixing the address a permanent error named."""
    return _write(
        ctx,
        lambda s: service.channel_out(
            service.set_channel_enabled(s, channel_id=channel_id, enabled=True, now=utcnow()),
            ctx.settings,
        ),
        wake=True,
    )


@router.post("/channels/{channel_id}/disable", response_model=ChannelOut, dependencies=ADMIN)
def disable_channel(ctx: Ctx, channel_id: RowId) -> ChannelOut:
    return _write(
        ctx,
        lambda s: service.channel_out(
            service.set_channel_enabled(s, channel_id=channel_id, enabled=False, now=utcnow()),
            ctx.settings,
        ),
    )


@router.post(
    "/channels/{channel_id}/test",
    response_model=TestAlertOut,
    status_code=202,
    dependencies=ADMIN,
)
def test_channel(ctx: Ctx, channel_id: RowId) -> TestAlertOut:
    """Queue a test alert to this channel; follow ``GET /api/alerts/deliveries/{id}``."""

    def work(session: Session) -> TestAlertOut:
        delivery = service.send_test(session, channel_id=channel_id, now=utcnow())
        return TestAlertOut(event_id=delivery.event_id, delivery_id=delivery.id)

    return _write(ctx, work, wake=True)


@router.get("/rules", response_model=list[RuleOut])
def list_rules(ctx: Ctx) -> list[RuleOut]:
    with ctx.db.read() as session:
        return [service.rule_out(r) for r in repository.rules(session)]


@router.post("/rules", response_model=RuleOut, status_code=201, dependencies=ADMIN)
def create_rule(ctx: Ctx, body: RuleIn) -> RuleOut:
    return _write(ctx, lambda s: service.rule_out(service.create_rule(s, data=body, now=utcnow())))


@router.put("/rules/{rule_id}", response_model=RuleOut, dependencies=ADMIN)
def update_rule(ctx: Ctx, rule_id: RowId, body: RuleIn) -> RuleOut:
    return _write(
        ctx,
        lambda s: service.rule_out(
            service.update_rule(s, rule_id=rule_id, data=body, now=utcnow())
        ),
    )


@router.delete("/rules/{rule_id}", status_code=204, dependencies=ADMIN)
def delete_rule(ctx: Ctx, rule_id: RowId) -> Response:
    _write(ctx, lambda s: service.delete_rule(s, rule_id=rule_id))
    return Response(status_code=204)


@router.post("/rules/{rule_id}/enable", response_model=RuleOut, dependencies=ADMIN)
def enable_rule(ctx: Ctx, rule_id: RowId) -> RuleOut:
    return _write(
        ctx,
        lambda s: service.rule_out(
            service.set_rule_enabled(s, rule_id=rule_id, enabled=True, now=utcnow())
        ),
    )


@router.post("/rules/{rule_id}/disable", response_model=RuleOut, dependencies=ADMIN)
def disable_rule(ctx: Ctx, rule_id: RowId) -> RuleOut:
    return _write(
        ctx,
        lambda s: service.rule_out(
            service.set_rule_enabled(s, rule_id=rule_id, enabled=False, now=utcnow())
        ),
    )


@router.get("/history", response_model=list[EventOut])
def history(
    ctx: Ctx,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    kind: Annotated[str | None, Query(pattern="^(broken|fixed|reminder|flaky|test)$")] = None,
    before: Annotated[int | None, Query(ge=1)] = None,
) -> list[EventOut]:
    """Alerts newest first, each with every delivery's result."""
    with ctx.db.read() as session:
        return service.history(session, limit=limit, kind=kind, before=before)


@router.get("/incidents", response_model=list[IncidentOut])
def incidents(ctx: Ctx) -> list[IncidentOut]:
    """What is broken now, per rule and subject, oldest first."""
    with ctx.db.read() as session:
        return service.incidents(session)


@router.get("/deliveries/{delivery_id}", response_model=DeliveryOut)
def get_delivery(ctx: Ctx, delivery_id: RowId) -> DeliveryOut:
    with _errors(), ctx.db.read() as session:
        return service.get_delivery(session, delivery_id=delivery_id)


@router.post("/deliveries/{delivery_id}/retry", response_model=DeliveryOut, dependencies=ADMIN)
def retry_delivery(ctx: Ctx, delivery_id: RowId) -> DeliveryOut:
    """Send a failed delivery again (it starts a fresh round of attempts)."""

    def work(session: Session) -> DeliveryOut:
        service.retry_delivery(session, delivery_id=delivery_id, now=utcnow())
        return service.get_delivery(session, delivery_id=delivery_id)

    return _write(ctx, work, wake=True)
