"""initial schema

Revision ID: 38ccbcd82bc1
Revises:
Create Date: 2026-11-23 16:53:38.811293
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cipulse.models.base

revision: str = "38ccbcd82bc1"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pipeline",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", cipulse.models.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipeline")),
        sa.UniqueConstraint("name", name=op.f("uq_pipeline_name")),
    )
    op.create_table(
        "repository",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("github_id", sa.BigInteger(), nullable=True),
        sa.Column("owner", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("full_name", sa.String(length=201), nullable=False),
        sa.Column("default_branch", sa.String(length=255), nullable=True),
        sa.Column("html_url", sa.String(length=500), nullable=True),
        sa.Column("installation_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", cipulse.models.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_repository")),
        sa.UniqueConstraint("full_name", name=op.f("uq_repository_full_name")),
        sa.UniqueConstraint("github_id", name=op.f("uq_repository_github_id")),
    )
    with op.batch_alter_table("repository", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_repository_installation_id"), ["installation_id"], unique=False
        )

    op.create_table(
        "pipeline_run",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("pipeline_id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("started_at", cipulse.models.base.UTCDateTime(), nullable=False),
        sa.Column("finished_at", cipulse.models.base.UTCDateTime(), nullable=True),
        sa.Column("duration_sec", sa.Float(), nullable=True),
        sa.Column("branch", sa.String(length=255), nullable=True),
        sa.Column("commit_sha", sa.String(length=64), nullable=True),
        sa.Column("triggered_by", sa.String(length=200), nullable=True),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("received_at", cipulse.models.base.UTCDateTime(), nullable=False),
        sa.Column("updated_at", cipulse.models.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pipeline_id"],
            ["pipeline.id"],
            name=op.f("fk_pipeline_run_pipeline_id_pipeline"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipeline_run")),
        sa.UniqueConstraint(
            "pipeline_id", "external_id", name=op.f("uq_pipeline_run_pipeline_id_external_id")
        ),
    )
    with op.batch_alter_table("pipeline_run", schema=None) as batch_op:
        batch_op.create_index("ix_pipeline_run_finished_at", ["finished_at"], unique=False)
        batch_op.create_index(
            "ix_pipeline_run_pipeline_commit", ["pipeline_id", "commit_sha", "status"], unique=False
        )
        batch_op.create_index(
            "ix_pipeline_run_pipeline_finished", ["pipeline_id", "finished_at"], unique=False
        )
        batch_op.create_index("ix_pipeline_run_started_at", ["started_at"], unique=False)

    op.create_table(
        "pipeline_run_hourly",
        sa.Column("pipeline_id", sa.Integer(), nullable=False),
        sa.Column("hour_start", cipulse.models.base.UTCDateTime(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("running", sa.Integer(), nullable=False),
        sa.Column("success", sa.Integer(), nullable=False),
        sa.Column("failure", sa.Integer(), nullable=False),
        sa.Column("duration_sum", sa.Float(), nullable=False),
        sa.Column("duration_count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pipeline_id"],
            ["pipeline.id"],
            name=op.f("fk_pipeline_run_hourly_pipeline_id_pipeline"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pipeline_id", "hour_start", name=op.f("pk_pipeline_run_hourly")),
    )
    op.create_table(
        "workflow",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("github_id", sa.BigInteger(), nullable=False),
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=True),
        sa.Column("state", sa.String(length=40), nullable=True),
        sa.Column("html_url", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repository.id"],
            name=op.f("fk_workflow_repository_id_repository"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflow")),
        sa.UniqueConstraint("github_id", name=op.f("uq_workflow_github_id")),
    )
    op.create_table(
        "mail_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", cipulse.models.base.UTCDateTime(), nullable=False),
        sa.Column(
            "pipeline_run_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("recipients", sa.Text(), nullable=False),
        sa.Column("subject", sa.String(length=500), nullable=False),
        sa.Column("body_text", sa.Text(), nullable=False),
        sa.Column("body_html", sa.Text(), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", cipulse.models.base.UTCDateTime(), nullable=False),
        sa.Column("claimed_until", cipulse.models.base.UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_at", cipulse.models.base.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["pipeline_run_id"],
            ["pipeline_run.id"],
            name=op.f("fk_mail_outbox_pipeline_run_id_pipeline_run"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_outbox")),
    )
    with op.batch_alter_table("mail_outbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_mail_outbox_state_next", ["state", "next_attempt_at"], unique=False
        )

    op.create_table(
        "workflow_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("github_id", sa.BigInteger(), nullable=False),
        sa.Column("run_attempt", sa.Integer(), nullable=False),
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("workflow_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=500), nullable=True),
        sa.Column("run_number", sa.Integer(), nullable=True),
        sa.Column("event", sa.String(length=60), nullable=True),
        sa.Column("status", sa.String(length=30), nullable=False),
        sa.Column("conclusion", sa.String(length=30), nullable=True),
        sa.Column("head_branch", sa.String(length=255), nullable=True),
        sa.Column("head_sha", sa.String(length=64), nullable=True),
        sa.Column("actor_login", sa.String(length=100), nullable=True),
        sa.Column("html_url", sa.String(length=500), nullable=True),
        sa.Column("created_at", cipulse.models.base.UTCDateTime(), nullable=False),
        sa.Column("run_started_at", cipulse.models.base.UTCDateTime(), nullable=True),
        sa.Column("updated_at", cipulse.models.base.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repository.id"],
            name=op.f("fk_workflow_run_repository_id_repository"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workflow_id"],
            ["workflow.id"],
            name=op.f("fk_workflow_run_workflow_id_workflow"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflow_run")),
        sa.UniqueConstraint(
            "github_id", "run_attempt", name=op.f("uq_workflow_run_github_id_run_attempt")
        ),
    )
    with op.batch_alter_table("workflow_run", schema=None) as batch_op:
        batch_op.create_index(
            "ix_workflow_run_repo_branch_created",
            ["repository_id", "head_branch", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_workflow_run_workflow_id"), ["workflow_id"], unique=False
        )

    op.create_table(
        "job",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("github_id", sa.BigInteger(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("status", sa.String(length=30), nullable=False),
        sa.Column("conclusion", sa.String(length=30), nullable=True),
        sa.Column("head_sha", sa.String(length=64), nullable=True),
        sa.Column("html_url", sa.String(length=500), nullable=True),
        sa.Column("created_at", cipulse.models.base.UTCDateTime(), nullable=True),
        sa.Column("started_at", cipulse.models.base.UTCDateTime(), nullable=True),
        sa.Column("completed_at", cipulse.models.base.UTCDateTime(), nullable=True),
        sa.Column("runner_name", sa.String(length=255), nullable=True),
        sa.Column("runner_group_name", sa.String(length=255), nullable=True),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["workflow_run.id"],
            name=op.f("fk_job_run_id_workflow_run"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job")),
        sa.UniqueConstraint("github_id", name=op.f("uq_job_github_id")),
    )
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_job_run_id"), ["run_id"], unique=False)

    op.create_table(
        "step",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("status", sa.String(length=30), nullable=False),
        sa.Column("conclusion", sa.String(length=30), nullable=True),
        sa.Column("started_at", cipulse.models.base.UTCDateTime(), nullable=True),
        sa.Column("completed_at", cipulse.models.base.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"], ["job.id"], name=op.f("fk_step_job_id_job"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_step")),
        sa.UniqueConstraint("job_id", "number", name=op.f("uq_step_job_id_number")),
    )


def downgrade() -> None:
    op.drop_table("step")
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_run_id"))

    op.drop_table("job")
    with op.batch_alter_table("workflow_run", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_workflow_run_workflow_id"))
        batch_op.drop_index("ix_workflow_run_repo_branch_created")

    op.drop_table("workflow_run")
    with op.batch_alter_table("mail_outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_mail_outbox_state_next")

    op.drop_table("mail_outbox")
    op.drop_table("workflow")
    op.drop_table("pipeline_run_hourly")
    with op.batch_alter_table("pipeline_run", schema=None) as batch_op:
        batch_op.drop_index("ix_pipeline_run_started_at")
        batch_op.drop_index("ix_pipeline_run_pipeline_finished")
        batch_op.drop_index("ix_pipeline_run_pipeline_commit")
        batch_op.drop_index("ix_pipeline_run_finished_at")

    op.drop_table("pipeline_run")
    with op.batch_alter_table("repository", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_repository_installation_id"))

    op.drop_table("repository")
    op.drop_table("pipeline")
