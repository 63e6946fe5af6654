from __future__ import annotations

from pydantic import BaseModel, Field

from cipulse.ingest.schemas import RunOut


class SimulateBody(BaseModel):
    pipelines: list[str] = Field(default_factory=list, max_length=50)


class SimulateResult(BaseModel):
    created: int
    runs: list[RunOut]
