"""The run event any CI may push (founding design E), validated at the edge."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cipulse.models import PipelineRun

RunStatus = Literal["success", "failure", "running"]
FINAL_STATUSES = frozenset({"success", "failure"})


class RunEvent(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    pipeline: str = Field(min_length=1, max_length=200, description="Pipeline (workflow) name.")
    status: RunStatus
    started_at: datetime | None = Field(default=None, description="ISO 8601; UTC if no zone.")
    finished_at: datetime | None = None
    duration_sec: float | None = Field(default=None, ge=0, le=31 * 24 * 3600)
    branch: str | None = Field(default=None, max_length=255)
    commit: str | None = Field(default=None, max_length=64)
    triggered_by: str | None = Field(default=None, max_length=200)
    id: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Idempotency key: the same id for the same pipeline is stored once.",
    )

    @field_validator("started_at", "finished_at")
    @classmethod
    def _as_utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _check_times(self) -> RunEvent:
        if self.started_at and self.finished_at and self.finished_at < self.started_at:
            raise ValueError("finished_at is before started_at")
        return self


class RunOut(BaseModel):
    id: int
    pipeline: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    duration_sec: float | None
    branch: str | None
    commit: str | None
    triggered_by: str | None
    external_id: str | None
    source: str


class IngestResult(BaseModel):
    created: bool
    changed: bool
    run: RunOut


def run_out(run: PipelineRun) -> RunOut:
    return RunOut(
        id=run.id,
        pipeline=run.pipeline.name,
        status=run.status,
        started_at=run.started_at,
        finished_at=run.finished_at,
        duration_sec=run.duration_sec,
        branch=run.branch,
        commit=run.commit_sha,
        triggered_by=run.triggered_by,
        external_id=run.external_id,
        source=run.source,
    )
