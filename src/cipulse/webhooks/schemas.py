from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class Accepted(BaseModel):
    status: str  # queued or duplicate
    id: int | None
    event: str
    delivery: str


class DeliveryOut(BaseModel):
    id: int
    delivery_id: str
    hook_id: str
    event: str
    action: str | None
    repository: str | None
    installation_id: int | None
    state: str
    attempts: int
    received_at: datetime
    processed_at: datetime | None
    next_attempt_at: datetime
    last_error: str | None
