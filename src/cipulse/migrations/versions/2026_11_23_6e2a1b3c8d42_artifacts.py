"""artifacts

(Reserved; filled in by the work that needs it. An empty step keeps one linear history.)

Revision ID: 6e2a1b3c8d42
Revises: 5d1f0a2b7c31
Create Date: 2026-11-23 20:00:00
"""

from collections.abc import Sequence

revision: str = "6e2a1b3c8d42"
down_revision: str | None = "5d1f0a2b7c31"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
