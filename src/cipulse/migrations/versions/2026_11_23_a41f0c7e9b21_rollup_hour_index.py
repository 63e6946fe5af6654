"""rollup hour index

A summary window reads only its own hours of the rollup, instead of scanning every hour stored.

Revision ID: a41f0c7e9b21
Revises: 12a171969585
Create Date: 2026-11-23 17:50:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "a41f0c7e9b21"
down_revision: str | None = "12a171969585"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("pipeline_run_hourly", schema=None) as batch_op:
        batch_op.create_index(
            "ix_pipeline_run_hourly_hour_start", ["hour_start", "pipeline_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("pipeline_run_hourly", schema=None) as batch_op:
        batch_op.drop_index("ix_pipeline_run_hourly_hour_start")
