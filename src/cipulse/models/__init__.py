"""All ORM models live here, so that migrations and every package see one metadata."""

from cipulse.models.alert import (
    AlertChannel,
    AlertDelivery,
    AlertEvent,
    AlertLease,
    AlertRule,
    AlertSeenRun,
    AlertState,
)
from cipulse.models.artifact import Artifact, ArtifactFile, ArtifactScan
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
from cipulse.models.log import JobLog
from cipulse.models.navigation import WorkflowFile
from cipulse.models.pipeline import Pipeline, PipelineRun, PipelineRunHourly
from cipulse.models.rollup import JobDaily, QueueDaily, RollupDirtyDay, RunDaily
from cipulse.models.testreport import TestCase, TestReport, TestResult
from cipulse.models.webhook import Installation, WebhookDelivery

__all__ = [
    "AlertChannel",
    "AlertDelivery",
    "AlertEvent",
    "AlertLease",
    "AlertRule",
    "AlertSeenRun",
    "AlertState",
    "Artifact",
    "ArtifactFile",
    "ArtifactScan",
    "Base",
    "HttpCache",
    "Installation",
    "Job",
    "JobDaily",
    "JobLog",
    "Pipeline",
    "PipelineRun",
    "PipelineRunHourly",
    "QueueDaily",
    "Repository",
    "RollupDirtyDay",
    "RunDaily",
    "Step",
    "SyncState",
    "TestCase",
    "TestReport",
    "TestResult",
    "UTCDateTime",
    "WebhookDelivery",
    "Workflow",
    "WorkflowFile",
    "WorkflowRun",
    "utcnow",
]
