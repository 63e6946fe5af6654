"""github sync state

Revision ID: c299995e2df5
Revises: 38ccbcd82bc1
Create Date: 2026-11-23 17:03:42.084933
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cipulse.models.base

revision: str = "c299995e2df5"
down_revision: str | None = "38ccbcd82bc1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "http_cache",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("etag", sa.String(length=200), nullable=False),
        sa.Column("link", sa.Text(), nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", cipulse.models.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_http_cache")),
    )
    op.create_table(
        "sync_state",
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("last_started_at", cipulse.models.base.UTCDateTime(), nullable=True),
        sa.Column("last_success_at", cipulse.models.base.UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", cipulse.models.base.UTCDateTime(), nullable=True),
        sa.Column("initial_done_at", cipulse.models.base.UTCDateTime(), nullable=True),
        sa.Column("newest_run_created_at", cipulse.models.base.UTCDateTime(), nullable=True),
        sa.Column("last_requests", sa.Integer(), nullable=False),
        sa.Column("last_not_modified", sa.Integer(), nullable=False),
        sa.Column("last_points", sa.Integer(), nullable=False),
        sa.Column("total_requests", sa.BigInteger(), nullable=False),
        sa.Column("rate_limit", sa.Integer(), nullable=True),
        sa.Column("rate_remaining", sa.Integer(), nullable=True),
        sa.Column("rate_reset_at", cipulse.models.base.UTCDateTime(), nullable=True),
        sa.Column("claimed_until", cipulse.models.base.UTCDateTime(), nullable=True),
        sa.Column("claimed_by", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repository.id"],
            name=op.f("fk_sync_state_repository_id_repository"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("repository_id", name=op.f("pk_sync_state")),
    )
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("run_attempt", sa.Integer(), server_default="1", nullable=False)
        )
        batch_op.add_column(sa.Column("workflow_name", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("head_branch", sa.String(length=255), nullable=True))

    with op.batch_alter_table("repository", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("tracked", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("branches", sa.JSON(), server_default="[]", nullable=False))

    with op.batch_alter_table("workflow_run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("jobs_synced_for", sa.String(length=80), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workflow_run", schema=None) as batch_op:
        batch_op.drop_column("jobs_synced_for")

    with op.batch_alter_table("repository", schema=None) as batch_op:
        batch_op.drop_column("branches")
        batch_op.drop_column("tracked")

    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.drop_column("head_branch")
        batch_op.drop_column("workflow_name")
        batch_op.drop_column("run_attempt")

    op.drop_table("sync_state")
    op.drop_table("http_cache")
