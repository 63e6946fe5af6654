"""Alert logic the pages, the API and the worker call: channels and rules, test alerts, the
outcome of each delivery, and the history. Services never commit; the caller's unit of work does.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cipulse.alerts import repository
from cipulse.alerts.channels import registry
from cipulse.alerts.messages import when
from cipulse.alerts.schemas import (
    ChannelIn,
    ChannelOut,
    DeliveryOut,
    EventOut,
    IncidentOut,
    RuleIn,
    RuleOut,
)
from cipulse.models import (
    AlertChannel,
    AlertDelivery,
    AlertEvent,
    AlertRule,
)
from cipulse.settings import Settings

MAX_BACKOFF_SECONDS = 3600


class NotFound(Exception):
    pass


class Conflict(Exception):
    """The request clashes with what is stored (a taken name, a row owned by the alerts file)."""


# --- channels --------------------------------------------------------------------------------


def channel_out(channel: AlertChannel, settings: Settings) -> ChannelOut:
    try:
        target = registry.describe(channel.kind, channel.config, settings=settings)
    except (KeyError, ValueError):
        target = "misconfigured"
    return ChannelOut(
        id=channel.id,
        name=channel.name,
        kind=channel.kind,
        target=target,
        source=channel.source,
        enabled=channel.enabled,
        disabled_reason=channel.disabled_reason,
        disabled_at=channel.disabled_at,
    )


def _channel(session: Session, channel_id: int) -> AlertChannel:
    channel = session.get(AlertChannel, channel_id)
    if channel is None:
        raise NotFound(f"no alert channel {channel_id}")
    return channel


def _editable(row: AlertChannel | AlertRule, what: str) -> None:
    if row.source == "config":
        raise Conflict(f"{what} {row.name!r} comes from the alerts file; change it there")


def create_channel(session: Session, *, data: ChannelIn, now: datetime) -> AlertChannel:
    if repository.channel_by_name(session, data.name) is not None:
        raise Conflict(f"a channel is already named {data.name!r}")
    channel = AlertChannel(
        name=data.name,
        kind=data.kind,
        config=data.config,
        enabled=data.enabled,
        source="ui",
        created_at=now,
        updated_at=now,
    )
    session.add(channel)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(f"a channel is already named {data.name!r}") from None
    return channel


def update_channel(
    session: Session, *, channel_id: int, data: ChannelIn, now: datetime
) -> AlertChannel:
    channel = _channel(session, channel_id)
    _editable(channel, "the channel")
    other = repository.channel_by_name(session, data.name)
    if other is not None and other.id != channel.id:
        raise Conflict(f"a channel is already named {data.name!r}")
    channel.name, channel.kind, channel.config = data.name, data.kind, data.config
    channel.enabled, channel.disabled_reason, channel.disabled_at = data.enabled, None, None
    channel.updated_at = now
    return channel


def delete_channel(session: Session, *, channel_id: int) -> None:
    channel = _channel(session, channel_id)
    _editable(channel, "the channel")
    session.delete(channel)


def set_channel_enabled(
    session: Session, *, channel_id: int, enabled: bool, now: datetime
) -> AlertChannel:
    """Switching on clears the reason of a permanent error; works for config channels too."""
    channel = _channel(session, channel_id)
    channel.enabled = enabled
    channel.disabled_reason = None if enabled else "switched off by an admin"
    channel.disabled_at = None if enabled else now
    channel.updated_at = now
    return channel


def send_test(session: Session, *, channel_id: int, now: datetime) -> AlertDelivery:
    """A test alert to one channel, through the outbox like any other."""
    channel = _channel(session, channel_id)
    event = AlertEvent(
        rule_id=None,
        rule_name="test",
        kind="test",
        subject=channel.name,
        title=f"[cipulse] test alert to {channel.name}",
        context={
            "tone": "info",
            "headline": "cipulse test alert",
            "summary": f"This is a test of the alert channel {channel.name!r} ({channel.kind}). "
            "When a tracked branch breaks, the alert looks like this one.",
            "facts": [["Channel", channel.name], ["Sent", when(now.isoformat())]],
            "failing": [],
            "links": [],
        },
        dedupe_key=f"test:{channel.id}:{uuid.uuid4().hex}",
        created_at=now,
    )
    session.add(event)
    session.flush()
    delivery = AlertDelivery(event_id=event.id, channel_id=channel.id, next_attempt_at=now)
    session.add(delivery)
    session.flush()
    return delivery


# --- rules -----------------------------------------------------------------------------------


def rule_out(rule: AlertRule) -> RuleOut:
    return RuleOut(
        id=rule.id,
        name=rule.name,
        kind=rule.kind,
        params=rule.params,
        channels=rule.channels,
        remind_after_minutes=rule.remind_after_minutes,
        source=rule.source,
        enabled=rule.enabled,
    )


def _rule(session: Session, rule_id: int) -> AlertRule:
    rule = session.get(AlertRule, rule_id)
    if rule is None:
        raise NotFound(f"no alert rule {rule_id}")
    return rule


def _check_channels(session: Session, names: list[str]) -> None:
    known = {c.name for c in repository.channels(session)}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise Conflict(f"no channel named {', '.join(repr(n) for n in unknown)}")


def create_rule(session: Session, *, data: RuleIn, now: datetime) -> AlertRule:
    if repository.rule_by_name(session, data.name) is not None:
        raise Conflict(f"a rule is already named {data.name!r}")
    _check_channels(session, data.channels)
    rule = AlertRule(
        name=data.name,
        kind=data.kind,
        params=data.params,
        channels=data.channels,
        remind_after_minutes=data.remind_after_minutes,
        enabled=data.enabled,
        source="ui",
        created_at=now,
        updated_at=now,
    )
    session.add(rule)
    session.flush()
    return rule


def update_rule(session: Session, *, rule_id: int, data: RuleIn, now: datetime) -> AlertRule:
    rule = _rule(session, rule_id)
    _editable(rule, "the rule")
    other = repository.rule_by_name(session, data.name)
    if other is not None and other.id != rule.id:
        raise Conflict(f"a rule is already named {data.name!r}")
    _check_channels(session, data.channels)
    rule.name, rule.kind, rule.params = data.name, data.kind, data.params
    rule.channels, rule.remind_after_minutes = data.channels, data.remind_after_minutes
    rule.enabled, rule.updated_at = data.enabled, now
    return rule


def delete_rule(session: Session, *, rule_id: int) -> None:
    rule = _rule(session, rule_id)
    _editable(rule, "the rule")
    session.delete(rule)


def set_rule_enabled(session: Session, *, rule_id: int, enabled: bool, now: datetime) -> AlertRule:
    rule = _rule(session, rule_id)
    rule.enabled, rule.updated_at = enabled, now
    return rule


# --- deliveries ------------------------------------------------------------------------------


def mark_sent(session: Session, *, delivery_id: int, now: datetime) -> None:
    delivery = session.get_one(AlertDelivery, delivery_id)
    delivery.state, delivery.sent_at = "sent", now
    delivery.attempts += 1
    delivery.claimed_until = delivery.claimed_by = delivery.last_error = None


def mark_temporary(
    session: Session,
    *,
    delivery_id: int,
    error: str,
    now: datetime,
    settings: Settings,
    retry_after: float | None = None,
) -> AlertDelivery:
    """Retry later with doubling backoff (or the receiver's Retry-After), up to the limit."""
    delivery = session.get_one(AlertDelivery, delivery_id)
    delivery.attempts += 1
    delivery.last_error = error[:1000]
    delivery.claimed_until = delivery.claimed_by = None
    if delivery.attempts >= settings.mail_max_attempts:
        delivery.state = "failed"
        return delivery
    delay = min(settings.mail_retry_seconds * 2 ** (delivery.attempts - 1), MAX_BACKOFF_SECONDS)
    if retry_after is not None:
        delay = min(max(delay, retry_after), MAX_BACKOFF_SECONDS)
    delivery.next_attempt_at = now + timedelta(seconds=delay)
    return delivery


def mark_permanent(
    session: Session, *, delivery_id: int, error: str, disable: bool, now: datetime
) -> AlertDelivery:
    """Give up this delivery; when the channel itself is broken, switch it off and say why."""
    delivery = session.get_one(AlertDelivery, delivery_id)
    delivery.attempts += 1
    delivery.state = "failed"
    delivery.last_error = error[:1000]
    delivery.claimed_until = delivery.claimed_by = None
    if disable:
        channel = session.get_one(AlertChannel, delivery.channel_id)
        channel.enabled = False
        channel.disabled_reason = error[:1000]
        channel.disabled_at = now
    return delivery


def retry_delivery(session: Session, *, delivery_id: int, now: datetime) -> AlertDelivery:
    delivery = session.get(AlertDelivery, delivery_id)
    if delivery is None:
        raise NotFound(f"no alert delivery {delivery_id}")
    if delivery.state != "failed":  # a pending one may be on the wire right now
        raise Conflict(
            f"only a failed delivery is retried; delivery {delivery_id} is {delivery.state}"
        )
    delivery.state, delivery.attempts, delivery.next_attempt_at = "pending", 0, now
    delivery.claimed_until = delivery.claimed_by = None
    return delivery


def pending_count(session: Session) -> int:
    return repository.pending_count(session)


# --- history ---------------------------------------------------------------------------------


def history(
    session: Session, *, limit: int, kind: str | None = None, before: int | None = None
) -> list[EventOut]:
    events = repository.recent_events(session, limit=limit, kind=kind, before=before)
    rows = repository.deliveries_of(session, [e.id for e in events])
    by_event: dict[int, list[DeliveryOut]] = {}
    for delivery, channel in rows:
        by_event.setdefault(delivery.event_id, []).append(delivery_out(delivery, channel))
    return [
        EventOut(
            id=e.id,
            kind=e.kind,
            rule=e.rule_name,
            subject=e.subject,
            title=e.title,
            created_at=e.created_at,
            deliveries=by_event.get(e.id, []),
        )
        for e in events
    ]


def delivery_out(delivery: AlertDelivery, channel: AlertChannel) -> DeliveryOut:
    return DeliveryOut(
        id=delivery.id,
        channel=channel.name,
        channel_kind=channel.kind,
        state=delivery.state,
        attempts=delivery.attempts,
        last_error=delivery.last_error,
        next_attempt_at=delivery.next_attempt_at,
        sent_at=delivery.sent_at,
    )


def get_delivery(session: Session, *, delivery_id: int) -> DeliveryOut:
    delivery = session.get(AlertDelivery, delivery_id)
    if delivery is None:
        raise NotFound(f"no alert delivery {delivery_id}")
    return delivery_out(delivery, session.get_one(AlertChannel, delivery.channel_id))


def incidents(session: Session) -> list[IncidentOut]:
    return [
        IncidentOut(
            rule=rule.name,
            rule_kind=rule.kind,
            subject=state.subject,
            since=state.since,
            last_alert_at=state.last_alert_at,
        )
        for state, rule in repository.open_incidents(session)
    ]
