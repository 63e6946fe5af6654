"""test reports

(Reserved; filled in by the work that needs it. An empty step keeps one linear history.)

Revision ID: 7f3b2c4d9e53
Revises: 6e2a1b3c8d42
Create Date: 2026-11-23 20:00:00
"""

from collections.abc import Sequence

revision: str = "7f3b2c4d9e53"
down_revision: str | None = "6e2a1b3c8d42"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
