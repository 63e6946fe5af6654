"""Design C's navigation: workflow files read at a run's commit, and the indexes its pages use.

A workflow file at a given commit never changes, so one fetch per (repository, path, commit) is
enough; a file GitHub does not have is remembered too (``found`` false), so a run page does not
ask again on every view.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cipulse.models.base import Base, UTCDateTime, utcnow
from cipulse.models.github import Job, WorkflowRun


class WorkflowFile(Base):
    """The text of a workflow file at one commit, as GitHub's contents API answered it."""

    __tablename__ = "workflow_file"
    __table_args__ = (UniqueConstraint("repository_id", "path", "ref"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repository.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(String(500))
    ref: Mapped[str] = mapped_column(String(64))  # the commit sha
    found: Mapped[bool] = mapped_column(Boolean)
    content: Mapped[str | None] = mapped_column(Text)
    size: Mapped[int] = mapped_column(Integer, default=0)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# A workflow's run history newest first, and a job's previous executions by name.
Index("ix_workflow_run_workflow_id_created_at", WorkflowRun.workflow_id, WorkflowRun.created_at)
Index("ix_job_name_started_at", Job.name, Job.started_at)
