"""Shapes of design E's metrics answers."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel


class PipelineSummary(BaseModel):
    pipeline: str
    total: int
    success: int
    failure: int
    running: int
    success_rate: float | None
    avg_duration_sec: float | None
    last_status: str | None
    last_finished_at: datetime | None


class Summary(BaseModel):
    window_minutes: int
    generated_at: datetime
    total: int
    success: int
    failure: int
    running: int
    success_rate: float | None
    avg_duration_sec: float | None
    last_status: str | None
    last_finished_at: datetime | None
    per_pipeline: list[PipelineSummary]


class DailyCount(BaseModel):
    day: date
    total: int
    success: int
    failure: int
    running: int
