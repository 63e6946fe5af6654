"""A fake GitHub REST API over real HTTP for the sync engine's tests and benchmarks.

See README.md in this folder.
"""

from tests.fakegithub.messages import LoggedRequest, Stats
from tests.fakegithub.scenario import (
    Artifact,
    Attempt,
    Job,
    JobStats,
    Repo,
    Run,
    Scenario,
    Step,
    Workflow,
    expected_job_stats,
)
from tests.fakegithub.server import FakeGitHub

__all__ = [
    "Artifact",
    "Attempt",
    "FakeGitHub",
    "Job",
    "JobStats",
    "LoggedRequest",
    "Repo",
    "Run",
    "Scenario",
    "Stats",
    "Step",
    "Workflow",
    "expected_job_stats",
]
