"""Shapes of design D's workflow, run and file answers, and of a run's artifacts."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

FileKind = Literal["image", "json", "text", "binary"]


class WorkflowOut(BaseModel):
    id: int = Field(description="GitHub's workflow id")
    repo: str
    name: str
    path: str | None
    state: str | None
    html_url: str | None
    runs: int = Field(description="Runs stored (attempts of one run count once)")
    last_run_at: datetime | None


class WorkflowRunOut(BaseModel):
    id: int = Field(description="GitHub's run id")
    workflow_id: int
    repo: str
    name: str | None
    run_number: int | None
    run_attempt: int
    status: str
    conclusion: str | None
    branch: str | None
    head_sha: str | None
    event: str | None
    html_url: str | None
    created_at: datetime
    updated_at: datetime | None
    artifacts: int
    files: int


class FileOut(BaseModel):
    id: int
    repo: str
    run_id: int = Field(description="GitHub's run id")
    artifact_id: int = Field(description="GitHub's artifact id")
    artifact_name: str
    path: str
    name: str
    kind: FileKind
    content_type: str
    size: int
    sha256: str
    created_at: datetime
    content_url: str
    page_url: str


class ArtifactFileOut(BaseModel):
    id: int
    path: str
    kind: FileKind
    content_type: str
    size: int


class ArtifactOut(BaseModel):
    """One artifact of a run and what became of it (``state``; ``error`` says why)."""

    id: int = Field(description="GitHub's artifact id")
    name: str
    size_in_bytes: int
    state: Literal["pending", "done", "expired", "refused", "failed", "removed"]
    error: str | None
    attempts: int
    next_attempt_at: datetime | None
    created_at: datetime | None
    expires_at: datetime | None
    processed_at: datetime | None
    file_count: int
    total_bytes: int
    files: list[ArtifactFileOut]


class RunArtifacts(BaseModel):
    run_id: int
    scanned: bool = Field(description="The run's artifacts have been listed")
    scan_error: str | None
    artifacts: list[ArtifactOut]
