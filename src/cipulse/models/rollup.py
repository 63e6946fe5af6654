"""Daily rollups of GitHub runs and jobs, and the days whose rollup must be recomputed.

A run and every one of its attempts and jobs belong to the UTC day of the run's ``created_at``,
so one (repository, day) is self-contained: it can be recomputed from its raw rows alone, and
first/final attempt, retries and in-run flakiness never span two days. The same holds for an
hour of ``created_at``: the recent days (today and yesterday) are stored as one row set per
hour, so a write dirties one hour and a read recomputes only that hour; older days are stored
whole (``hour`` -1), which keeps the row count flat as history grows. Durations are kept as
exact histograms (whole seconds -> count) serialised as JSON, so percentiles over any set of
days are exact at GitHub's one-second resolution.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, Integer, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cipulse.models.base import Base, UTCDateTime
from cipulse.models.github import WorkflowRun

WHOLE_DAY = -1  # ``hour`` of a rollup row or dirty mark that covers the whole day


class RollupDirtyDay(Base):
    """An hour (or, with ``hour`` -1, a whole day) of a repository whose raw rows changed.

    Marks are per hour of the runs' ``created_at`` so that a read right after a webhook folds
    in that hour's raw rows only, not the whole day being written to.
    """

    __tablename__ = "rollup_dirty_day"

    repository_id: Mapped[int] = mapped_column(
        ForeignKey("repository.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    hour: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    marked_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RunDaily(Base):
    """Run attempts of one repository, day, workflow and branch."""

    __tablename__ = "run_daily"
    __table_args__ = (
        Index("ix_run_daily_day_repository_id", "day", "repository_id"),
        # Reads without a branch filter read the rows summing every branch ("*"): a few
        # per day among one per branch.
        Index("ix_run_daily_branch_day_repository_id", "branch", "day", "repository_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repository.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    hour: Mapped[int] = mapped_column(SmallInteger, default=WHOLE_DAY)
    workflow_name: Mapped[str] = mapped_column(String(500))
    branch: Mapped[str] = mapped_column(String(255))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    success: Mapped[int] = mapped_column(Integer, default=0)
    failure: Mapped[int] = mapped_column(Integer, default=0)
    cancelled: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    runs: Mapped[int] = mapped_column(Integer, default=0)
    first_success: Mapped[int] = mapped_column(Integer, default=0)
    first_failure: Mapped[int] = mapped_column(Integer, default=0)
    final_success: Mapped[int] = mapped_column(Integer, default=0)
    final_failure: Mapped[int] = mapped_column(Integer, default=0)
    retried: Mapped[int] = mapped_column(Integer, default=0)
    retried_seconds: Mapped[int] = mapped_column(Integer, default=0)
    durations: Mapped[str] = mapped_column(Text, default="{}")


class JobDaily(Base):
    """Job executions of one repository, day, workflow, job name and branch."""

    __tablename__ = "job_daily"
    __table_args__ = (
        Index("ix_job_daily_day_repository_id", "day", "repository_id"),
        # Reads without a branch filter read the rows summing every branch ("*"): a few
        # per day among one per branch.
        Index("ix_job_daily_branch_day_repository_id", "branch", "day", "repository_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repository.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    hour: Mapped[int] = mapped_column(SmallInteger, default=WHOLE_DAY)
    workflow_name: Mapped[str] = mapped_column(String(500))
    job_name: Mapped[str] = mapped_column(String(500))
    branch: Mapped[str] = mapped_column(String(255))
    executions: Mapped[int] = mapped_column(Integer, default=0)
    success: Mapped[int] = mapped_column(Integer, default=0)
    failure: Mapped[int] = mapped_column(Integer, default=0)
    cancelled: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    first_success: Mapped[int] = mapped_column(Integer, default=0)
    first_failure: Mapped[int] = mapped_column(Integer, default=0)
    final_success: Mapped[int] = mapped_column(Integer, default=0)
    final_failure: Mapped[int] = mapped_column(Integer, default=0)
    flaky_runs: Mapped[int] = mapped_column(Integer, default=0)
    durations: Mapped[str] = mapped_column(Text, default="{}")


class QueueDaily(Base):
    """Queue times (job ``started_at - created_at``) per runner label or runner group."""

    __tablename__ = "queue_daily"
    __table_args__ = (Index("ix_queue_daily_day_repository_id", "day", "repository_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repository.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    hour: Mapped[int] = mapped_column(SmallInteger, default=WHOLE_DAY)
    kind: Mapped[str] = mapped_column(String(10))  # "label" or "group"
    value: Mapped[str] = mapped_column(String(255))
    jobs: Mapped[int] = mapped_column(Integer, default=0)
    waits: Mapped[str] = mapped_column(Text, default="{}")


# Recent runs across repositories, and the raw-row windows of MTTR / time to green / flaky.
Index("ix_workflow_run_created_at", WorkflowRun.created_at)
# One repository's day of raw rows (the rollup task and the fold-in of dirty days).
Index("ix_workflow_run_repository_id_created_at", WorkflowRun.repository_id, WorkflowRun.created_at)
# Runs in progress: a few rows among millions.
Index("ix_workflow_run_status_created_at", WorkflowRun.status, WorkflowRun.created_at)
