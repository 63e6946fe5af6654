"""artifacts

Artifacts of GitHub runs, their extracted files, and the runs whose artifacts were listed.

Revision ID: 6e2a1b3c8d42
Revises: 5d1f0a2b7c31
Create Date: 2026-11-23 20:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cipulse.models.base

revision: str = "6e2a1b3c8d42"
down_revision: str | None = "5d1f0a2b7c31"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = cipulse.models.base.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "artifact_scan",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("run_github_id", sa.BigInteger(), nullable=False),
        sa.Column("run_attempt", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTC(), nullable=False),
        sa.Column("claimed_until", UTC(), nullable=True),
        sa.Column("claimed_by", sa.String(length=200), nullable=True),
        sa.Column("scanned_at", UTC(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repository.id"],
            name=op.f("fk_artifact_scan_repository_id_repository"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_artifact_scan")),
        sa.UniqueConstraint("run_github_id", name=op.f("uq_artifact_scan_run_github_id")),
    )
    with op.batch_alter_table("artifact_scan", schema=None) as batch_op:
        batch_op.create_index("ix_artifact_scan_state_next", ["state", "next_attempt_at"])

    op.create_table(
        "artifact",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("github_id", sa.BigInteger(), nullable=False),
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("run_github_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("size_in_bytes", sa.BigInteger(), nullable=False),
        sa.Column("digest", sa.String(length=100), nullable=True),
        sa.Column("created_at", UTC(), nullable=True),
        sa.Column("expires_at", UTC(), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTC(), nullable=False),
        sa.Column("claimed_until", UTC(), nullable=True),
        sa.Column("claimed_by", sa.String(length=200), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("file_count", sa.Integer(), nullable=False),
        sa.Column("total_bytes", sa.BigInteger(), nullable=False),
        sa.Column("discovered_at", UTC(), nullable=False),
        sa.Column("processed_at", UTC(), nullable=True),
        sa.Column("removed_at", UTC(), nullable=True),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repository.id"],
            name=op.f("fk_artifact_repository_id_repository"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_artifact")),
        sa.UniqueConstraint("github_id", name=op.f("uq_artifact_github_id")),
    )
    with op.batch_alter_table("artifact", schema=None) as batch_op:
        batch_op.create_index("ix_artifact_state_next", ["state", "next_attempt_at"])
        batch_op.create_index(op.f("ix_artifact_run_github_id"), ["run_github_id"])

    op.create_table(
        "artifact_file",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("artifact_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=1000), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("storage_key", sa.Text(), nullable=False),
        sa.Column("created_at", UTC(), nullable=False),
        sa.Column("removed_at", UTC(), nullable=True),
        sa.ForeignKeyConstraint(
            ["artifact_id"],
            ["artifact.id"],
            name=op.f("fk_artifact_file_artifact_id_artifact"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_artifact_file")),
        sa.UniqueConstraint("artifact_id", "path", name=op.f("uq_artifact_file_artifact_id_path")),
    )
    with op.batch_alter_table("artifact_file", schema=None) as batch_op:
        batch_op.create_index(op.f("ix_artifact_file_kind"), ["kind"])


def downgrade() -> None:
    op.drop_table("artifact_file")
    op.drop_table("artifact")
    op.drop_table("artifact_scan")
