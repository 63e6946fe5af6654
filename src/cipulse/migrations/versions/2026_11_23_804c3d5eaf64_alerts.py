"""alerts

(Reserved; filled in by the work that needs it. An empty step keeps one linear history.)

Revision ID: 804c3d5eaf64
Revises: 7f3b2c4d9e53
Create Date: 2026-11-23 20:00:00
"""

from collections.abc import Sequence

revision: str = "804c3d5eaf64"
down_revision: str | None = "7f3b2c4d9e53"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
