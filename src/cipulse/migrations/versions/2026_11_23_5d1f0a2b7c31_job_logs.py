"""job logs

(Reserved; filled in by the work that needs it. An empty step keeps one linear history.)

Revision ID: 5d1f0a2b7c31
Revises: a41f0c7e9b21
Create Date: 2026-11-23 20:00:00
"""

from collections.abc import Sequence

revision: str = "5d1f0a2b7c31"
down_revision: str | None = "a41f0c7e9b21"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
