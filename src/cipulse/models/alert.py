"""Alerting: channels, rules, the state each rule keeps per subject, alerts and their deliveries.

An alert (``AlertEvent``) is written in the same transaction as the state change that caused it,
together with one ``AlertDelivery`` per channel: the deliveries are the outbox a worker sends
from after the commit, so a crash or a dead mail server delays an alert but never loses it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column

from cipulse.models.base import Base, UTCDateTime, utcnow


class AlertChannel(Base):
    """Where alerts go. ``config`` holds the kind's settings, secrets included (never shown)."""

    __tablename__ = "alert_channel"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(20))  # email, slack, teams, webhook, null
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    source: Mapped[str] = mapped_column(String(10), default="ui")  # ui, config
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # Set with ``enabled = False`` when the far side refused for good (bad address, 404 hook).
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AlertRule(Base):
    """What to watch. ``channels`` lists channel names; empty means every channel."""

    __tablename__ = "alert_rule"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(30))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    channels: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Minutes between reminders while a subject stays bad; None: the server default, 0: never.
    remind_after_minutes: Mapped[int | None] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(10), default="ui")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AlertState(Base):
    """A rule's view of one subject (a branch, a job, a workflow): ok or bad, and since when."""

    __tablename__ = "alert_state"
    __table_args__ = (UniqueConstraint("rule_id", "subject"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("alert_rule.id", ondelete="CASCADE"))
    subject: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(20), default="ok")  # ok, bad
    since: Mapped[datetime] = mapped_column(UTCDateTime)
    last_alert_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Rule-specific memory: per-workflow latest conclusions, the incident's first failure, ...
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AlertEvent(Base):
    """One alert: a transition (broken, fixed, ...), a reminder, or a test; rendered from
    ``context`` when sent. ``dedupe_key`` makes a second evaluation of the same run a no-op."""

    __tablename__ = "alert_event"
    __table_args__ = (Index("ix_alert_event_created_at", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[int | None] = mapped_column(
        ForeignKey("alert_rule.id", ondelete="SET NULL"), index=True
    )
    rule_name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))
    subject: Mapped[str] = mapped_column(String(500))
    title: Mapped[str] = mapped_column(String(500))
    context: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    dedupe_key: Mapped[str] = mapped_column(String(300), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AlertDelivery(Base):
    """The outbox: one alert to one channel, claimed by a conditional UPDATE and retried."""

    __tablename__ = "alert_delivery"
    __table_args__ = (
        UniqueConstraint("event_id", "channel_id"),
        Index("ix_alert_delivery_state_next", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("alert_event.id", ondelete="CASCADE"))
    channel_id: Mapped[int] = mapped_column(
        ForeignKey("alert_channel.id", ondelete="CASCADE"), index=True
    )
    state: Mapped[str] = mapped_column(String(20), default="pending")  # pending, sent, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AlertSeenRun(Base):
    """Finished runs the evaluator has taken in: inserting the row is its claim on the run."""

    __tablename__ = "alert_seen_run"
    __table_args__ = (PrimaryKeyConstraint("source", "run_id"),)

    source: Mapped[str] = mapped_column(String(10))  # github, pipeline
    run_id: Mapped[int] = mapped_column(BigInteger)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AlertLease(Base):
    """Who evaluates now: one evaluator at a time keeps transitions in order across processes."""

    __tablename__ = "alert_lease"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(200))
