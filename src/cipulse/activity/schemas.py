"""Runs in progress and design B's ``pipeline-update`` shape for them."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class StepOut(BaseModel):
    number: int
    name: str
    status: str
    conclusion: str | None


class JobOut(BaseModel):
    id: int
    name: str
    status: str
    conclusion: str | None
    started_at: datetime | None
    completed_at: datetime | None
    html_url: str | None
    steps: list[StepOut]


class RunInProgress(BaseModel):
    id: int
    attempt: int
    repo: str
    name: str | None
    branch: str | None
    status: str
    html_url: str | None
    created_at: datetime
    jobs: list[JobOut]


class PipelineUpdate(BaseModel):
    """Design B's event: stages are the run's jobs."""

    id: int
    attempt: int
    repo: str
    name: str | None
    branch: str | None
    html_url: str | None
    status: str
    currentStage: str | None
    completedStages: list[str]
    progress: float
    startTime: datetime | None
    duration: float | None
    activeNodes: list[str]
    activeConnections: list[str]
    jobs: list[JobOut]
