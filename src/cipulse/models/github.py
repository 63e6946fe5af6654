"""GitHub Actions data: repositories, workflows, runs (one row per attempt), jobs and steps."""

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
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from cipulse.models.base import Base, UTCDateTime, utcnow


class Repository(Base):
    __tablename__ = "repository"

    id: Mapped[int] = mapped_column(primary_key=True)
    github_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    owner: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(100))
    full_name: Mapped[str] = mapped_column(String(201), unique=True)
    default_branch: Mapped[str | None] = mapped_column(String(255))
    html_url: Mapped[str | None] = mapped_column(String(500))
    installation_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Synced on schedule when tracked; ``branches`` empty means every branch.
    tracked: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    branches: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")


class Workflow(Base):
    __tablename__ = "workflow"

    id: Mapped[int] = mapped_column(primary_key=True)
    github_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repository.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(500))
    path: Mapped[str | None] = mapped_column(String(500))
    state: Mapped[str | None] = mapped_column(String(40))
    html_url: Mapped[str | None] = mapped_column(String(500))


class WorkflowRun(Base):
    """One attempt of a workflow run: earlier attempts stay, so their failures are not lost."""

    __tablename__ = "workflow_run"
    __table_args__ = (
        UniqueConstraint("github_id", "run_attempt"),
        Index("ix_workflow_run_repo_branch_created", "repository_id", "head_branch", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    github_id: Mapped[int] = mapped_column(BigInteger)
    run_attempt: Mapped[int] = mapped_column(Integer, default=1)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repository.id", ondelete="CASCADE"))
    workflow_id: Mapped[int | None] = mapped_column(
        ForeignKey("workflow.id", ondelete="SET NULL"), index=True
    )
    name: Mapped[str | None] = mapped_column(String(500))
    run_number: Mapped[int | None] = mapped_column(Integer)
    event: Mapped[str | None] = mapped_column(String(60))
    status: Mapped[str] = mapped_column(String(30))
    conclusion: Mapped[str | None] = mapped_column(String(30))
    head_branch: Mapped[str | None] = mapped_column(String(255))
    head_sha: Mapped[str | None] = mapped_column(String(64))
    actor_login: Mapped[str | None] = mapped_column(String(100))
    html_url: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    run_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The run state whose jobs are stored: jobs are fetched again only when this differs.
    jobs_synced_for: Mapped[str | None] = mapped_column(String(80))


class Job(Base):
    __tablename__ = "job"

    id: Mapped[int] = mapped_column(primary_key=True)
    github_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    run_id: Mapped[int] = mapped_column(
        ForeignKey("workflow_run.id", ondelete="CASCADE"), index=True
    )
    run_attempt: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    name: Mapped[str] = mapped_column(String(500))
    workflow_name: Mapped[str | None] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(30))
    conclusion: Mapped[str | None] = mapped_column(String(30))
    head_sha: Mapped[str | None] = mapped_column(String(64))
    head_branch: Mapped[str | None] = mapped_column(String(255))
    html_url: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    runner_name: Mapped[str | None] = mapped_column(String(255))
    runner_group_name: Mapped[str | None] = mapped_column(String(255))
    labels: Mapped[list[Any]] = mapped_column(JSON, default=list)


class Step(Base):
    __tablename__ = "step"
    __table_args__ = (UniqueConstraint("job_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("job.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(30))
    conclusion: Mapped[str | None] = mapped_column(String(30))
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SyncState(Base):
    """What the last syncs of a repository did, so a user sees freshness and API budget."""

    __tablename__ = "sync_state"

    repository_id: Mapped[int] = mapped_column(
        ForeignKey("repository.id", ondelete="CASCADE"), primary_key=True
    )
    last_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    initial_done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    newest_run_created_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_requests: Mapped[int] = mapped_column(Integer, default=0)
    last_not_modified: Mapped[int] = mapped_column(Integer, default=0)
    last_points: Mapped[int] = mapped_column(Integer, default=0)
    total_requests: Mapped[int] = mapped_column(BigInteger, default=0)
    rate_limit: Mapped[int | None] = mapped_column(Integer)
    rate_remaining: Mapped[int | None] = mapped_column(Integer)
    rate_reset_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(200))  # host:pid


class HttpCache(Base):
    """ETag and body of GitHub answers, per token and URL, so unchanged lists cost nothing."""

    __tablename__ = "http_cache"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    etag: Mapped[str] = mapped_column(String(200))
    link: Mapped[str | None] = mapped_column(Text)  # a 304 carries no Link header: keep it
    body: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
