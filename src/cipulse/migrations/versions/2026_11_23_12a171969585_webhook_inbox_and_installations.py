"""webhook inbox and installations

Revision ID: 12a171969585
Revises: c299995e2df5
Create Date: 2026-11-23 17:57:41.295804
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cipulse.models.base

revision: str = "12a171969585"
down_revision: str | None = "c299995e2df5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "installation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("github_id", sa.BigInteger(), nullable=False),
        sa.Column("account_login", sa.String(length=100), nullable=True),
        sa.Column("account_type", sa.String(length=40), nullable=True),
        sa.Column("app_id", sa.BigInteger(), nullable=True),
        sa.Column("repository_selection", sa.String(length=20), nullable=True),
        sa.Column("permissions", sa.JSON(), nullable=False),
        sa.Column("created_at", cipulse.models.base.UTCDateTime(), nullable=False),
        sa.Column("suspended_at", cipulse.models.base.UTCDateTime(), nullable=True),
        sa.Column("deleted_at", cipulse.models.base.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_installation")),
        sa.UniqueConstraint("github_id", name=op.f("uq_installation_github_id")),
    )
    op.create_table(
        "webhook_delivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("hook_id", sa.String(length=40), nullable=False),
        sa.Column("delivery_id", sa.String(length=80), nullable=False),
        sa.Column("event", sa.String(length=80), nullable=False),
        sa.Column("action", sa.String(length=80), nullable=True),
        sa.Column("installation_id", sa.BigInteger(), nullable=True),
        sa.Column("repository", sa.String(length=201), nullable=True),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", cipulse.models.base.UTCDateTime(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", cipulse.models.base.UTCDateTime(), nullable=False),
        sa.Column("claimed_until", cipulse.models.base.UTCDateTime(), nullable=True),
        sa.Column("claimed_by", sa.String(length=200), nullable=True),
        sa.Column("processed_at", cipulse.models.base.UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_delivery")),
        sa.UniqueConstraint(
            "hook_id", "delivery_id", name=op.f("uq_webhook_delivery_hook_id_delivery_id")
        ),
    )
    with op.batch_alter_table("webhook_delivery", schema=None) as batch_op:
        batch_op.create_index(
            "ix_webhook_delivery_state_next", ["state", "next_attempt_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("webhook_delivery", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_delivery_state_next")

    op.drop_table("webhook_delivery")
    op.drop_table("installation")
