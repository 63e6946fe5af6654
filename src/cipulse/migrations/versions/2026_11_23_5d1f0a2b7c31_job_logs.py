"""job logs

One row per GitHub job whose log is wanted: its fetch state and the stored log's summary.

Revision ID: 5d1f0a2b7c31
Revises: a41f0c7e9b21
Create Date: 2026-11-23 20:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cipulse.models.base

revision: str = "5d1f0a2b7c31"
down_revision: str | None = "a41f0c7e9b21"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = cipulse.models.base.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "job_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTC(), nullable=False),
        sa.Column("claimed_until", UTC(), nullable=True),
        sa.Column("claimed_by", sa.String(length=200), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("storage_key", sa.String(length=500), nullable=True),
        sa.Column("raw_bytes", sa.BigInteger(), nullable=True),
        sa.Column("stored_bytes", sa.BigInteger(), nullable=True),
        sa.Column("line_count", sa.Integer(), nullable=True),
        sa.Column("error_count", sa.Integer(), nullable=False),
        sa.Column("warning_count", sa.Integer(), nullable=False),
        sa.Column("first_error_line", sa.Integer(), nullable=True),
        sa.Column("first_error_text", sa.Text(), nullable=True),
        sa.Column("created_at", UTC(), nullable=False),
        sa.Column("fetched_at", UTC(), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["job.id"],
            name=op.f("fk_job_log_job_id_job"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_log")),
        sa.UniqueConstraint("job_id", name=op.f("uq_job_log_job_id")),
    )
    with op.batch_alter_table("job_log", schema=None) as batch_op:
        batch_op.create_index("ix_job_log_state_next", ["state", "next_attempt_at"])


def downgrade() -> None:
    with op.batch_alter_table("job_log", schema=None) as batch_op:
        batch_op.drop_index("ix_job_log_state_next")
    op.drop_table("job_log")
