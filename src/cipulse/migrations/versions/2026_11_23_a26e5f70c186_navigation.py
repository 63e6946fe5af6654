"""navigation

(Reserved; filled in by the work that needs it. An empty step keeps one linear history.)

Revision ID: a26e5f70c186
Revises: 915d4e6fb075
Create Date: 2026-11-23 20:00:00
"""

from collections.abc import Sequence

revision: str = "a26e5f70c186"
down_revision: str | None = "915d4e6fb075"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
