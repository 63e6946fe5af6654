"""The webhook inbox: store first, claim for processing, record the outcome."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from cipulse.claims import holder_is_dead, process_id
from cipulse.github.webhooks import Delivery
from cipulse.models import Installation, WebhookDelivery

CLAIM_SECONDS = 300
MAX_ATTEMPTS = 8
MAX_BACKOFF = 3600.0


def store(session: Session, delivery: Delivery, body: bytes, *, now: datetime) -> int | None:
    """Insert the raw delivery; None when this hook delivered this id before (a duplicate)."""
    insert = sqlite_insert if session.get_bind().dialect.name == "sqlite" else pg_insert
    stmt = (
        insert(WebhookDelivery)
        .values(
            hook_id=delivery.hook_id,
            delivery_id=delivery.delivery_id,
            event=delivery.event,
            action=delivery.action,
            installation_id=delivery.installation_id,
            repository=delivery.repository,
            headers=delivery.headers,
            body=body,
            received_at=now,
            state="pending",
            attempts=0,
            next_attempt_at=now,
        )
        .on_conflict_do_nothing(index_elements=["hook_id", "delivery_id"])
        .returning(WebhookDelivery.id)
    )
    row = session.execute(stmt).first()
    return int(row[0]) if row else None


def claim_due(session: Session, *, now: datetime, limit: int = 50) -> list[WebhookDelivery]:
    """Oldest first, claimed with a conditional UPDATE so workers never share a delivery."""
    free = or_(WebhookDelivery.claimed_until.is_(None), WebhookDelivery.claimed_until < now)
    holders = session.scalars(
        select(WebhookDelivery.claimed_by)
        .where(WebhookDelivery.state == "pending", WebhookDelivery.claimed_until >= now)
        .distinct()
    ).all()
    for holder in holders:
        if holder_is_dead(holder):  # killed with claims: take them back now
            session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.claimed_by == holder, WebhookDelivery.state == "pending")
                .values(claimed_until=None, claimed_by=None)
            )
    ids = session.scalars(
        select(WebhookDelivery.id)
        .where(WebhookDelivery.state == "pending", WebhookDelivery.next_attempt_at <= now, free)
        .order_by(WebhookDelivery.id)
        .limit(limit)
    ).all()
    mine = []
    me = process_id()
    for delivery_id in ids:
        result = session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id, free)
            .values(claimed_until=now + timedelta(seconds=CLAIM_SECONDS), claimed_by=me)
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            mine.append(delivery_id)
    if not mine:
        return []
    return list(
        session.scalars(
            select(WebhookDelivery).where(WebhookDelivery.id.in_(mine)).order_by(WebhookDelivery.id)
        )
    )


def finish(session: Session, delivery_id: int, *, state: str, now: datetime) -> None:
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id)
        .values(
            state=state,
            processed_at=now,
            claimed_until=None,
            claimed_by=None,
            last_error=None,
            attempts=WebhookDelivery.attempts + 1,
        )
    )


def fail(session: Session, delivery_id: int, *, error: str, now: datetime, base: float) -> str:
    row = session.get_one(WebhookDelivery, delivery_id)
    row.attempts += 1
    row.last_error = error[:2000]
    row.claimed_until = None
    row.claimed_by = None
    if row.attempts >= MAX_ATTEMPTS:
        row.state = "failed"
    else:
        row.next_attempt_at = now + timedelta(
            seconds=min(base * 2 ** (row.attempts - 1), MAX_BACKOFF)
        )
    return row.state


def replay(session: Session, delivery_id: int, *, now: datetime) -> bool:
    result = session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id)
        .values(state="pending", attempts=0, next_attempt_at=now, claimed_until=None)
    )
    return result.rowcount == 1  # type: ignore[attr-defined,no-any-return]


def get(session: Session, delivery_id: int) -> WebhookDelivery | None:
    return session.get(WebhookDelivery, delivery_id)


def recent(session: Session, *, limit: int, state: str | None) -> Sequence[WebhookDelivery]:
    stmt = select(WebhookDelivery).order_by(WebhookDelivery.id.desc()).limit(limit)
    if state:
        stmt = stmt.where(WebhookDelivery.state == state)
    return session.scalars(stmt).all()


def next_due(session: Session) -> datetime | None:
    return session.scalar(
        select(WebhookDelivery.next_attempt_at)
        .where(WebhookDelivery.state == "pending")
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(1)
    )


def upsert_installation(session: Session, data: dict[str, Any], *, now: datetime) -> Installation:
    github_id = int(data["id"])
    found = session.scalar(select(Installation).where(Installation.github_id == github_id))
    if found is None:
        found = Installation(github_id=github_id, created_at=now, permissions={})
        session.add(found)
    account = data.get("account") if isinstance(data.get("account"), dict) else {}
    assert isinstance(account, dict)
    found.account_login = account.get("login") or found.account_login
    found.account_type = account.get("type") or found.account_type
    found.app_id = data.get("app_id") if isinstance(data.get("app_id"), int) else found.app_id
    if isinstance(data.get("permissions"), dict):
        found.permissions = data["permissions"]
    if isinstance(data.get("repository_selection"), str):
        found.repository_selection = data["repository_selection"]
    session.flush()
    return found
