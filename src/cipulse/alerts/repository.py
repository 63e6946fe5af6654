"""Queries of the alert outbox and history."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from cipulse import claims
from cipulse.models import AlertChannel, AlertDelivery, AlertEvent, AlertRule, AlertState

CLAIM_SECONDS = 120


def claim_due(session: Session, *, now: datetime, holder: str, limit: int = 20) -> list[int]:
    """Claim due deliveries with a conditional UPDATE, so two workers never send one twice.

    A delivery to a disabled channel waits (a test alert goes anyway, to check a fix); a claim
    held by a dead process of this host lapses at once, others when they time out.
    """
    rows = session.execute(
        select(AlertDelivery.id, AlertDelivery.claimed_until, AlertDelivery.claimed_by)
        .join(AlertChannel, AlertChannel.id == AlertDelivery.channel_id)
        .join(AlertEvent, AlertEvent.id == AlertDelivery.event_id)
        .where(AlertDelivery.state == "pending", AlertDelivery.next_attempt_at <= now)
        .where(or_(AlertChannel.enabled.is_(True), AlertEvent.kind == "test"))
        .order_by(AlertDelivery.next_attempt_at, AlertDelivery.id)
        .limit(limit)
    ).all()
    claimed = []
    for delivery_id, until, by in rows:
        if until is not None and until >= now and not claims.holder_is_dead(by):
            continue
        result = session.execute(
            update(AlertDelivery)
            .where(AlertDelivery.id == delivery_id, AlertDelivery.state == "pending")
            .where(
                AlertDelivery.claimed_until.is_(None)
                if until is None
                else AlertDelivery.claimed_until == until
            )
            .values(claimed_until=now + timedelta(seconds=CLAIM_SECONDS), claimed_by=holder)
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            claimed.append(delivery_id)
    return claimed


def next_due(session: Session) -> datetime | None:
    return session.scalar(
        select(AlertDelivery.next_attempt_at)
        .join(AlertChannel, AlertChannel.id == AlertDelivery.channel_id)
        .where(AlertDelivery.state == "pending", AlertChannel.enabled.is_(True))
        .order_by(AlertDelivery.next_attempt_at)
        .limit(1)
    )


def pending_count(session: Session) -> int:
    return int(
        session.scalar(
            select(func.count()).select_from(AlertDelivery).where(AlertDelivery.state == "pending")
        )
        or 0
    )


def recent_events(
    session: Session, *, limit: int, kind: str | None = None, before: int | None = None
) -> list[AlertEvent]:
    stmt = select(AlertEvent).order_by(AlertEvent.id.desc()).limit(limit)
    if kind:
        stmt = stmt.where(AlertEvent.kind == kind)
    if before:
        stmt = stmt.where(AlertEvent.id < before)
    return list(session.scalars(stmt))


def deliveries_of(
    session: Session, event_ids: list[int]
) -> list[tuple[AlertDelivery, AlertChannel]]:
    if not event_ids:
        return []
    return [
        (d, c)
        for d, c in session.execute(
            select(AlertDelivery, AlertChannel)
            .join(AlertChannel, AlertChannel.id == AlertDelivery.channel_id)
            .where(AlertDelivery.event_id.in_(event_ids))
            .order_by(AlertDelivery.id)
        ).all()
    ]


def open_incidents(session: Session) -> list[tuple[AlertState, AlertRule]]:
    return [
        (s, r)
        for s, r in session.execute(
            select(AlertState, AlertRule)
            .join(AlertRule, AlertRule.id == AlertState.rule_id)
            .where(AlertState.status == "bad", AlertRule.enabled.is_(True))
            .order_by(AlertState.since)
        ).all()
    ]


def channels(session: Session) -> list[AlertChannel]:
    return list(session.scalars(select(AlertChannel).order_by(AlertChannel.name)))


def rules(session: Session) -> list[AlertRule]:
    return list(session.scalars(select(AlertRule).order_by(AlertRule.name)))


def channel_by_name(session: Session, name: str) -> AlertChannel | None:
    return session.scalar(select(AlertChannel).where(AlertChannel.name == name))


def rule_by_name(session: Session, name: str) -> AlertRule | None:
    return session.scalar(select(AlertRule).where(AlertRule.name == name))
