"""Pure parsing of GitHub's run, job and workflow objects into what cipulse stores.

Real payloads are looser than today's schema (older ones lack ``created_at`` on jobs,
``workflow_name``, ``head_branch``...), so every field but the id is optional here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


class PayloadError(ValueError):
    """A payload that lacks what cipulse cannot do without (an id)."""


def parse_time(value: Any) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _int(data: dict[str, Any], key: str) -> int:
    value = data.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise PayloadError(f"{key} is missing or not a number")
    return value


def _str(value: Any, limit: int) -> str | None:
    return value[:limit] if isinstance(value, str) else None


def _opt_int(data: dict[str, Any], key: str, default: int | None = None) -> int | None:
    value = data.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _login(value: Any) -> str | None:
    return _str(value.get("login"), 100) if isinstance(value, dict) else None


@dataclass(frozen=True)
class RunData:
    github_id: int
    run_attempt: int
    repository_github_id: int | None
    workflow_github_id: int | None
    name: str | None
    run_number: int | None
    event: str | None
    status: str
    conclusion: str | None
    head_branch: str | None
    head_sha: str | None
    actor_login: str | None
    html_url: str | None
    created_at: datetime
    run_started_at: datetime | None
    updated_at: datetime | None


@dataclass(frozen=True)
class StepData:
    number: int
    name: str
    status: str
    conclusion: str | None
    started_at: datetime | None
    completed_at: datetime | None


@dataclass(frozen=True)
class JobData:
    github_id: int
    run_github_id: int
    run_attempt: int
    name: str
    status: str
    conclusion: str | None
    head_sha: str | None
    head_branch: str | None
    workflow_name: str | None
    html_url: str | None
    created_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    runner_name: str | None
    runner_group_name: str | None
    labels: list[str] = field(default_factory=list)
    steps: list[StepData] = field(default_factory=list)


@dataclass(frozen=True)
class WorkflowData:
    github_id: int
    name: str
    path: str | None
    state: str | None
    html_url: str | None


def parse_run(data: dict[str, Any]) -> RunData:
    repository = data.get("repository")
    created = parse_time(data.get("created_at")) or parse_time(data.get("run_started_at"))
    if created is None:
        raise PayloadError("created_at is missing")
    return RunData(
        github_id=_int(data, "id"),
        run_attempt=_opt_int(data, "run_attempt") or 1,
        repository_github_id=_opt_int(repository, "id") if isinstance(repository, dict) else None,
        workflow_github_id=_opt_int(data, "workflow_id"),
        name=_str(data.get("name") or data.get("display_title"), 500),
        run_number=_opt_int(data, "run_number"),
        event=_str(data.get("event"), 60),
        status=_str(data.get("status"), 30) or "unknown",
        conclusion=_str(data.get("conclusion"), 30),
        head_branch=_str(data.get("head_branch"), 255),
        head_sha=_str(data.get("head_sha"), 64),
        actor_login=_login(data.get("triggering_actor")) or _login(data.get("actor")),
        html_url=_str(data.get("html_url"), 500),
        created_at=created,
        run_started_at=parse_time(data.get("run_started_at")),
        updated_at=parse_time(data.get("updated_at")),
    )


def parse_step(data: dict[str, Any]) -> StepData:
    return StepData(
        number=_int(data, "number"),
        name=_str(data.get("name"), 500) or f"step {data.get('number')}",
        status=_str(data.get("status"), 30) or "unknown",
        conclusion=_str(data.get("conclusion"), 30),
        started_at=parse_time(data.get("started_at")),
        completed_at=parse_time(data.get("completed_at")),
    )


def parse_job(data: dict[str, Any]) -> JobData:
    labels = data.get("labels")
    raw_steps = data.get("steps")
    steps: list[Any] = raw_steps if isinstance(raw_steps, list) else []
    return JobData(
        github_id=_int(data, "id"),
        run_github_id=_int(data, "run_id"),
        run_attempt=_opt_int(data, "run_attempt") or 1,
        name=_str(data.get("name"), 500) or f"job {data.get('id')}",
        status=_str(data.get("status"), 30) or "unknown",
        conclusion=_str(data.get("conclusion"), 30),
        head_sha=_str(data.get("head_sha"), 64),
        head_branch=_str(data.get("head_branch"), 255),
        workflow_name=_str(data.get("workflow_name"), 500),
        html_url=_str(data.get("html_url"), 500),
        created_at=parse_time(data.get("created_at")),
        started_at=parse_time(data.get("started_at")),
        completed_at=parse_time(data.get("completed_at")),
        runner_name=_str(data.get("runner_name"), 255),
        runner_group_name=_str(data.get("runner_group_name"), 255),
        labels=[x for x in labels if isinstance(x, str)] if isinstance(labels, list) else [],
        steps=[parse_step(s) for s in steps if isinstance(s, dict) and "number" in s],
    )


def parse_workflow(data: dict[str, Any]) -> WorkflowData:
    return WorkflowData(
        github_id=_int(data, "id"),
        name=_str(data.get("name"), 500) or str(data.get("path") or data["id"]),
        path=_str(data.get("path"), 500),
        state=_str(data.get("state"), 40),
        html_url=_str(data.get("html_url"), 500),
    )
