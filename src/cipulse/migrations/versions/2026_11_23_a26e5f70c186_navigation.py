"""navigation

The workflow-file cache of the run page (a file at a commit never changes), and the indexes of
the workflow page's run history and the job page's previous executions.

Revision ID: a26e5f70c186
Revises: 915d4e6fb075
Create Date: 2026-11-23 20:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cipulse.models.base

revision: str = "a26e5f70c186"
down_revision: str | None = "915d4e6fb075"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "workflow_file",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("ref", sa.String(length=64), nullable=False),
        sa.Column("found", sa.Boolean(), nullable=False),
        sa.Column("content", sa.Text(), nullable=True),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("fetched_at", cipulse.models.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repository.id"],
            name=op.f("fk_workflow_file_repository_id_repository"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflow_file")),
        sa.UniqueConstraint(
            "repository_id", "path", "ref", name=op.f("uq_workflow_file_repository_id_path_ref")
        ),
    )
    with op.batch_alter_table("workflow_run", schema=None) as batch_op:
        batch_op.create_index(
            "ix_workflow_run_workflow_id_created_at", ["workflow_id", "created_at"], unique=False
        )
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.create_index("ix_job_name_started_at", ["name", "started_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.drop_index("ix_job_name_started_at")
    with op.batch_alter_table("workflow_run", schema=None) as batch_op:
        batch_op.drop_index("ix_workflow_run_workflow_id_created_at")
    op.drop_table("workflow_file")
