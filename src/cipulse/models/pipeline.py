"""Runs pushed by any CI (founding design E) and their hourly rollup."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cipulse.models.base import Base, UTCDateTime, utcnow


class Pipeline(Base):
    __tablename__ = "pipeline"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PipelineRun(Base):
    __tablename__ = "pipeline_run"
    __table_args__ = (
        UniqueConstraint("pipeline_id", "external_id"),
        Index("ix_pipeline_run_started_at", "started_at"),
        Index("ix_pipeline_run_finished_at", "finished_at"),
        Index("ix_pipeline_run_pipeline_commit", "pipeline_id", "commit_sha", "status"),
        Index("ix_pipeline_run_pipeline_finished", "pipeline_id", "finished_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipeline.id", ondelete="CASCADE"))
    external_id: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    duration_sec: Mapped[float | None] = mapped_column(Float)
    branch: Mapped[str | None] = mapped_column(String(255))
    commit_sha: Mapped[str | None] = mapped_column(String(64))
    triggered_by: Mapped[str | None] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(20), default="api")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    pipeline: Mapped[Pipeline] = relationship(lazy="joined", innerjoin=True)


class PipelineRunHourly(Base):
    """Counts per pipeline and started-hour, kept in step with ``pipeline_run`` on every ingest.

    A summary over any window then reads a few rows per pipeline and hour instead of every run.
    """

    __tablename__ = "pipeline_run_hourly"
    __table_args__ = (
        PrimaryKeyConstraint("pipeline_id", "hour_start"),
        # A window reads only its own hours, not every hour stored.
        Index("ix_pipeline_run_hourly_hour_start", "hour_start", "pipeline_id"),
    )

    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipeline.id", ondelete="CASCADE"))
    hour_start: Mapped[datetime] = mapped_column(UTCDateTime)
    total: Mapped[int] = mapped_column(Integer, default=0)
    running: Mapped[int] = mapped_column(Integer, default=0)
    success: Mapped[int] = mapped_column(Integer, default=0)
    failure: Mapped[int] = mapped_column(Integer, default=0)
    duration_sum: Mapped[float] = mapped_column(Float, default=0.0)
    duration_count: Mapped[int] = mapped_column(Integer, default=0)
