"""The webhook inbox: store first, claim for processing, record the outcome."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import BindParameter, Table, bindparam, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from cipulse.claims import holder_is_dead, process_id
from cipulse.db import notify
from cipulse.github.webhooks import Delivery
from cipulse.models import Installation, WebhookDelivery

CLAIM_SECONDS = 300
STORED_CHANNEL = "cipulse_webhook_stored"  # NOTIFY: wakes `cipulse worker` processes
MAX_ATTEMPTS = 8
MAX_BACKOFF = 3600.0


_TABLE = cast(Table, WebhookDelivery.__table__)
_T = _TABLE.c
_STORE = {
    name: insert(_TABLE)
    .on_conflict_do_nothing(index_elements=["hook_id", "delivery_id"])
    .returning(_T.id)
    for name, insert in (("sqlite", sqlite_insert), ("postgresql", pg_insert))
}


def store(session: Session, delivery: Delivery, body: bytes, *, now: datetime) -> int | None:
    """Insert the raw delivery; None when this hook delivered this id before (a duplicate)."""
    # On the connection: the ORM's execution layer would double this insert's CPU, and the
    # answers' writer has no ORM state to flush first.
    connection = session.connection()
    row = connection.execute(
        _STORE[connection.dialect.name],
        {
            "hook_id": delivery.hook_id,
            "delivery_id": delivery.delivery_id,
            "event": delivery.event,
            "action": delivery.action,
            "installation_id": delivery.installation_id,
            "repository": delivery.repository,
            "headers": delivery.headers,
            "body": body,
            "received_at": now,
            "state": "pending",
            "attempts": 0,
            "next_attempt_at": now,
        },
    ).first()
    return int(row[0]) if row else None


# Built once: the worker runs these for every delivery.
_NOW: BindParameter[datetime] = bindparam("now")
_FREE = or_(_T.claimed_until.is_(None), _T.claimed_until < _NOW)
_HOLDERS = select(_T.claimed_by).where(_T.state == "pending", _T.claimed_until >= _NOW).distinct()
_RELEASE_HOLDER = (
    update(_TABLE)
    .where(_T.claimed_by == bindparam("holder"), _T.state == "pending")
    .values(claimed_until=None, claimed_by=None)
)
_DUE = (
    select(_T.id)
    .where(_T.state == "pending", _T.next_attempt_at <= _NOW, _FREE)
    .order_by(_T.id)
    .limit(bindparam("limit"))
)
_CLAIM = {
    # SQLite's writing transaction already excludes every other writer.
    "sqlite": update(_TABLE)
    .where(_T.id.in_(_DUE.scalar_subquery()))
    .values(claimed_until=bindparam("until"), claimed_by=bindparam("me"))
    .returning(_T.id),
    # Skip the rows another worker is claiming instead of waiting for it.
    "postgresql": update(_TABLE)
    .where(_T.id.in_(_DUE.with_for_update(skip_locked=True).scalar_subquery()))
    .values(claimed_until=bindparam("until"), claimed_by=bindparam("me"))
    .returning(_T.id),
}
_FINISH = (
    update(_TABLE)
    .where(_T.id.in_(bindparam("b_ids", expanding=True)))
    .values(
        state=bindparam("b_state"),
        processed_at=bindparam("b_now"),
        claimed_until=None,
        claimed_by=None,
        last_error=None,
        attempts=_T.attempts + 1,
    )
)


def claim_due(session: Session, *, now: datetime, limit: int = 50) -> list[WebhookDelivery]:
    """Oldest first, claimed in one conditional UPDATE so workers never share a delivery."""
    for holder in session.execute(_HOLDERS, {"now": now}).scalars().all():
        if holder_is_dead(holder):  # killed with claims: take them back now
            session.execute(_RELEASE_HOLDER, {"holder": holder})
    mine = (
        session.execute(
            _CLAIM[session.get_bind().dialect.name],
            {
                "now": now,
                "limit": limit,
                "until": now + timedelta(seconds=CLAIM_SECONDS),
                "me": process_id(),
            },
        )
        .scalars()
        .all()
    )
    if not mine:
        return []
    return list(
        session.scalars(
            select(WebhookDelivery).where(WebhookDelivery.id.in_(mine)).order_by(WebhookDelivery.id)
        )
    )


def finish(session: Session, delivery_ids: Sequence[int], *, state: str, now: datetime) -> None:
    """Record that these deliveries were processed (or ignored) in this transaction."""
    if delivery_ids:
        session.execute(_FINISH, {"b_ids": list(delivery_ids), "b_state": state, "b_now": now})


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
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    announce(session)
    return True


def announce(session: Session) -> None:
    """Wake the ``cipulse worker`` processes when this transaction commits (PostgreSQL)."""
    notify(session, STORED_CHANNEL)


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
