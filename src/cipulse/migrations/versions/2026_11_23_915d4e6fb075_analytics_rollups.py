"""analytics rollups

(Reserved; filled in by the work that needs it. An empty step keeps one linear history.)

Revision ID: 915d4e6fb075
Revises: 804c3d5eaf64
Create Date: 2026-11-23 20:00:00
"""

from collections.abc import Sequence

revision: str = "915d4e6fb075"
down_revision: str | None = "804c3d5eaf64"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
