"""test reports

JUnit reports, the tests they name (one row per test identity) and each test's result per report.

Revision ID: 7f3b2c4d9e53
Revises: 6e2a1b3c8d42
Create Date: 2026-11-23 20:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cipulse.models.base

revision: str = "7f3b2c4d9e53"
down_revision: str | None = "6e2a1b3c8d42"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = cipulse.models.base.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "test_report",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dedup_key", sa.String(length=64), nullable=False),
        sa.Column("project", sa.String(length=201), server_default="", nullable=False),
        sa.Column("repository_id", sa.Integer(), nullable=True),
        sa.Column("workflow_run_id", sa.Integer(), nullable=True),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=True),
        sa.Column("branch", sa.String(length=255), nullable=True),
        sa.Column("commit_sha", sa.String(length=64), nullable=True),
        sa.Column("ci_run", sa.String(length=200), nullable=True),
        sa.Column("ci_job", sa.String(length=500), nullable=True),
        sa.Column("tests", sa.Integer(), nullable=False),
        sa.Column("passed", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("flaky", sa.Integer(), nullable=False),
        sa.Column("duration_seconds", sa.Float(), nullable=False),
        sa.Column("reported_at", UTC(), nullable=False),
        sa.Column("created_at", UTC(), nullable=False),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repository.id"],
            name=op.f("fk_test_report_repository_id_repository"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workflow_run_id"],
            ["workflow_run.id"],
            name=op.f("fk_test_report_workflow_run_id_workflow_run"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["job_id"], ["job.id"], name=op.f("fk_test_report_job_id_job"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_test_report")),
        sa.UniqueConstraint("dedup_key", name=op.f("uq_test_report_dedup_key")),
    )
    with op.batch_alter_table("test_report", schema=None) as batch_op:
        batch_op.create_index(
            "ix_test_report_project_reported", ["project", "reported_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_test_report_repository_id"), ["repository_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_test_report_workflow_run_id"), ["workflow_run_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_test_report_job_id"), ["job_id"], unique=False)

    op.create_table(
        "test_case",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("project", sa.String(length=201), server_default="", nullable=False),
        sa.Column("repository_id", sa.Integer(), nullable=True),
        sa.Column("suite", sa.String(length=1000), nullable=False),
        sa.Column("classname", sa.String(length=1000), nullable=False),
        sa.Column("name", sa.String(length=1000), nullable=False),
        sa.Column("file", sa.String(length=500), nullable=True),
        sa.Column("first_seen_at", UTC(), nullable=False),
        sa.Column("last_seen_at", UTC(), nullable=False),
        sa.Column("last_outcome", sa.String(length=10), nullable=False),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repository.id"],
            name=op.f("fk_test_case_repository_id_repository"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_test_case")),
        sa.UniqueConstraint("key", name=op.f("uq_test_case_key")),
    )
    with op.batch_alter_table("test_case", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_test_case_repository_id"), ["repository_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_test_case_last_seen_at"), ["last_seen_at"], unique=False
        )

    op.create_table(
        "test_result",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("test_case_id", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=10), nullable=False),
        sa.Column("duration_seconds", sa.Float(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("details", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("flaky", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("retries", sa.JSON(), nullable=False),
        sa.Column("commit_sha", sa.String(length=64), nullable=True),
        sa.Column("reported_at", UTC(), nullable=False),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["test_report.id"],
            name=op.f("fk_test_result_report_id_test_report"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["test_case_id"],
            ["test_case.id"],
            name=op.f("fk_test_result_test_case_id_test_case"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_test_result")),
        sa.UniqueConstraint(
            "report_id", "test_case_id", name=op.f("uq_test_result_report_id_test_case_id")
        ),
    )
    with op.batch_alter_table("test_result", schema=None) as batch_op:
        batch_op.create_index(
            "ix_test_result_case_reported", ["test_case_id", "reported_at"], unique=False
        )
        batch_op.create_index(
            "ix_test_result_reported_outcome", ["reported_at", "outcome"], unique=False
        )


def downgrade() -> None:
    op.drop_table("test_result")
    op.drop_table("test_case")
    op.drop_table("test_report")
