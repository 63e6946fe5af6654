"""analytics rollups

Daily (and, for recent days, hourly) rollups of GitHub runs, jobs and queue times, and the dirty
(repository, day, hour) marks that say which slices must be recomputed.

Revision ID: 915d4e6fb075
Revises: 804c3d5eaf64
Create Date: 2026-11-23 20:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cipulse.models.base

revision: str = "915d4e6fb075"
down_revision: str | None = "804c3d5eaf64"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MARK = (
    "INSERT INTO rollup_dirty_day (repository_id, day, hour, marked_at) "
    "SELECT DISTINCT repository_id, {day}, -1, CURRENT_TIMESTAMP FROM workflow_run"
)
MARK_SQLITE = MARK.format(day="date(created_at)")
MARK_POSTGRESQL = MARK.format(day="CAST(created_at AS DATE)")

COUNTS = {
    "run_daily": (
        "attempts success failure cancelled skipped runs first_success first_failure "
        "final_success final_failure retried retried_seconds"
    ),
    "job_daily": (
        "executions success failure cancelled skipped first_success first_failure "
        "final_success final_failure flaky_runs"
    ),
    "queue_daily": "jobs",
}


def _common(table: str) -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("hour", sa.SmallInteger(), nullable=False),
    ]


def _counts(table: str) -> list[sa.Column]:  # type: ignore[type-arg]
    return [sa.Column(name, sa.Integer(), nullable=False) for name in COUNTS[table].split()]


def _keys(table: str) -> list[sa.Constraint]:
    return [
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repository.id"],
            name=op.f(f"fk_{table}_repository_id_repository"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
    ]


def upgrade() -> None:
    op.create_table(
        "rollup_dirty_day",
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("hour", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("marked_at", cipulse.models.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repository.id"],
            name=op.f("fk_rollup_dirty_day_repository_id_repository"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("repository_id", "day", "hour", name=op.f("pk_rollup_dirty_day")),
    )
    op.create_table(
        "run_daily",
        *_common("run_daily"),
        sa.Column("workflow_name", sa.String(length=500), nullable=False),
        sa.Column("branch", sa.String(length=255), nullable=False),
        *_counts("run_daily"),
        sa.Column("durations", sa.Text(), nullable=False),
        *_keys("run_daily"),
    )
    op.create_table(
        "job_daily",
        *_common("job_daily"),
        sa.Column("workflow_name", sa.String(length=500), nullable=False),
        sa.Column("job_name", sa.String(length=500), nullable=False),
        sa.Column("branch", sa.String(length=255), nullable=False),
        *_counts("job_daily"),
        sa.Column("durations", sa.Text(), nullable=False),
        *_keys("job_daily"),
    )
    op.create_table(
        "queue_daily",
        *_common("queue_daily"),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        *_counts("queue_daily"),
        sa.Column("waits", sa.Text(), nullable=False),
        *_keys("queue_daily"),
    )
    for table in ("run_daily", "job_daily", "queue_daily"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(f"ix_{table}_day_repository_id", ["day", "repository_id"])
            if table != "queue_daily":
                batch_op.create_index(
                    f"ix_{table}_branch_day_repository_id", ["branch", "day", "repository_id"]
                )
    # Runs synced before this revision: mark their days so the rollup task builds them.
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.execute(MARK_SQLITE if sqlite else MARK_POSTGRESQL)
    with op.batch_alter_table("workflow_run", schema=None) as batch_op:
        batch_op.create_index("ix_workflow_run_created_at", ["created_at"], unique=False)
        batch_op.create_index(
            "ix_workflow_run_repository_id_created_at",
            ["repository_id", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_workflow_run_status_created_at", ["status", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("workflow_run", schema=None) as batch_op:
        batch_op.drop_index("ix_workflow_run_status_created_at")
        batch_op.drop_index("ix_workflow_run_repository_id_created_at")
        batch_op.drop_index("ix_workflow_run_created_at")
    for table in ("queue_daily", "job_daily", "run_daily"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(f"ix_{table}_day_repository_id")
            if table != "queue_daily":
                batch_op.drop_index(f"ix_{table}_branch_day_repository_id")
        op.drop_table(table)
    op.drop_table("rollup_dirty_day")
