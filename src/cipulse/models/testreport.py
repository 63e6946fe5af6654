"""JUnit test reports, the tests they name, and each test's result per report.

History is keyed by cipulse's own ids: a ``test_case`` is one test identity (project, class name
or suite, test name) and each report adds one ``test_result`` per test. Reports link to the
database rows of GitHub runs and jobs when they came from an artifact or named a known run;
reports pushed from other CI keep their own run and job identifiers as plain text.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from cipulse.models.base import Base, UTCDateTime, utcnow


class TestReport(Base):
    """One JUnit file as received; ``dedup_key`` makes a re-post or re-extraction a no-op."""

    __test__ = False  # not a pytest class
    __tablename__ = "test_report"
    __table_args__ = (Index("ix_test_report_project_reported", "project", "reported_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(64), unique=True)
    project: Mapped[str] = mapped_column(String(201), default="", server_default="")
    repository_id: Mapped[int | None] = mapped_column(
        ForeignKey("repository.id", ondelete="CASCADE"), index=True
    )
    workflow_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("workflow_run.id", ondelete="CASCADE"), index=True
    )
    job_id: Mapped[int | None] = mapped_column(ForeignKey("job.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(200))
    name: Mapped[str | None] = mapped_column(String(500))
    branch: Mapped[str | None] = mapped_column(String(255))
    commit_sha: Mapped[str | None] = mapped_column(String(64))
    ci_run: Mapped[str | None] = mapped_column(String(200))
    ci_job: Mapped[str | None] = mapped_column(String(500))
    tests: Mapped[int] = mapped_column(Integer, default=0)
    passed: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    flaky: Mapped[int] = mapped_column(Integer, default=0)
    duration_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TestCase(Base):
    """One test identity within a project; its id is stable across reports and runs."""

    __test__ = False
    __tablename__ = "test_case"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    project: Mapped[str] = mapped_column(String(201), default="", server_default="")
    repository_id: Mapped[int | None] = mapped_column(
        ForeignKey("repository.id", ondelete="CASCADE"), index=True
    )
    suite: Mapped[str] = mapped_column(String(1000), default="")
    classname: Mapped[str] = mapped_column(String(1000), default="")
    name: Mapped[str] = mapped_column(String(1000))
    file: Mapped[str | None] = mapped_column(String(500))
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    last_outcome: Mapped[str] = mapped_column(String(10))


class TestResult(Base):
    """A test's final outcome in one report; earlier attempts of it are kept in ``retries``."""

    __test__ = False
    __tablename__ = "test_result"
    __table_args__ = (
        UniqueConstraint("report_id", "test_case_id"),
        Index("ix_test_result_case_reported", "test_case_id", "reported_at"),
        Index("ix_test_result_reported_outcome", "reported_at", "outcome"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("test_report.id", ondelete="CASCADE"))
    test_case_id: Mapped[int] = mapped_column(ForeignKey("test_case.id", ondelete="CASCADE"))
    outcome: Mapped[str] = mapped_column(String(10))
    duration_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str | None] = mapped_column(Text)
    details: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    flaky: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    retries: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # Copied from the report so history and flaky queries need no join.
    commit_sha: Mapped[str | None] = mapped_column(String(64))
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime)
