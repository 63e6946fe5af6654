"""Bounds for ids in paths and queries, shared by every router.

A number that no column can hold names nothing: it must get a 422 saying so, not reach the
database and come back as a 500 (SQLite and PostgreSQL both refuse to bind it).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

MAX_GITHUB_ID = 2**63 - 1  # GitHub ids live in BIGINT columns
MAX_ROW_ID = 2**31 - 1  # our own primary keys are INTEGER on PostgreSQL

GitHubId = Annotated[int, Path(ge=1, le=MAX_GITHUB_ID, description="GitHub id")]
RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="cipulse's own id")]
