"""webhook worker

(Reserved; filled in by the work that needs it. An empty step keeps one linear history.)

Revision ID: b37f6081d297
Revises: a26e5f70c186
Create Date: 2026-11-23 20:00:00
"""

from collections.abc import Sequence

revision: str = "b37f6081d297"
down_revision: str | None = "a26e5f70c186"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
