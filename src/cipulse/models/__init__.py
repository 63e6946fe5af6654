"""All ORM models live here, so that migrations and every package see one metadata."""

from cipulse.models.base import Base, UTCDateTime, utcnow
from cipulse.models.github import (
    HttpCache,
    Job,
    Repository,
    Step,
    SyncState,
    Workflow,
    WorkflowRun,
)
from cipulse.models.outbox import MailOutbox
from cipulse.models.pipeline import Pipeline, PipelineRun, PipelineRunHourly
from cipulse.models.webhook import Installation, WebhookDelivery

__all__ = [
    "Base",
    "HttpCache",
    "Installation",
    "Job",
    "MailOutbox",
    "Pipeline",
    "PipelineRun",
    "PipelineRunHourly",
    "Repository",
    "Step",
    "SyncState",
    "UTCDateTime",
    "WebhookDelivery",
    "Workflow",
    "WorkflowRun",
    "utcnow",
]
