"""JSON bodies in GitHub's real shape, made from GitHub's own example bodies.

Each object starts as a deep copy of the matching example in
``shared/fixtures/real/rest/openapi-examples/`` and gets the scenario's values written over it, so
every field GitHub sends is there even when the fake has nothing to say about it. URLs point at the
fake API (``api``) so a client that follows ``jobs_url`` or ``archive_download_url`` stays on it.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.fakegithub.scenario import (
    Artifact,
    Attempt,
    Installation,
    Job,
    Repo,
    Run,
    Workflow,
    stable_hash,
)

REST_FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "real" / "rest"
EXAMPLES = REST_FIXTURES / "openapi-examples"
WEBHOOKS = REST_FIXTURES.parent / "webhooks"
# What the fake's App may do: read Actions (and the metadata every App gets).
APP_PERMISSIONS = {"actions": "read", "metadata": "read"}
DOCS = "https://docs.github.com/rest"
# Step and workflow times come with a US Pacific offset and milliseconds in real answers
# ("2022-09-30T21:53:26.000-07:00"), while run and job times are UTC with a "Z".
PACIFIC = timezone(timedelta(hours=-7))

Json = dict[str, Any]


@cache
def example(name: str) -> Json:
    """One of GitHub's example bodies (read once; callers copy before changing it)."""
    body: Json = json.loads((EXAMPLES / f"{name}.json").read_text())
    return body


def _copy(name: str, key: str | None = None, *, skip: tuple[str, ...] = ()) -> Json:
    """A deep copy of an example (or of the first item of its list ``key``); the fields in
    ``skip`` are left as None, for the caller to fill (they are large, and replaced anyway)."""
    body = example(name)
    item: Json = body[key][0] if key else body
    return {k: None if k in skip else copy.deepcopy(v) for k, v in item.items()}


_users: dict[tuple[str, str], Json] = {}


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_pacific(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(PACIFIC).strftime("%Y-%m-%dT%H:%M:%S.000-07:00")


def node_id(prefix: str, number: int) -> str:
    raw = base64.b64encode(number.to_bytes(8, "big")).decode().rstrip("=")
    return f"{prefix}_kwDO{raw}"


def _rewrite(value: Any, replacements: list[tuple[str, str]]) -> Any:
    """Replace substrings in every string of a JSON value."""
    if isinstance(value, str):
        for old, new in replacements:
            value = value.replace(old, new)
        return value
    if isinstance(value, list):
        return [_rewrite(item, replacements) for item in value]
    if isinstance(value, dict):
        return {key: _rewrite(item, replacements) for key, item in value.items()}
    return value


def _examples_origin() -> str:
    """The API origin GitHub's example bodies point at: the fake rewrites it to its own."""
    url = urlsplit(example("workflow-run")["url"])
    return f"{url.scheme}://{url.netloc}"


EXAMPLES_ORIGIN = _examples_origin()
EXAMPLES_ORIGIN_PLAIN = EXAMPLES_ORIGIN.replace("https://", "http://", 1)


def user(login: str, api: str) -> Json:
    """A ``simple-user`` (the run example's ``actor``). Cached: treat it as read-only."""
    cached = _users.get((login, api))
    if cached is None:
        cached = _rewrite(
            example("workflow-run")["actor"],
            [(EXAMPLES_ORIGIN, api), ("octocat", login)],
        )
        cached["login"] = login
        cached["id"] = 1 + stable_hash(login) % 10_000_000
        cached["node_id"] = node_id("U", cached["id"])
        cached["type"] = "Bot" if login.endswith("[bot]") else "User"
        _users[(login, api)] = cached
    return cached


def _repo_replacements(repo: Repo, api: str, template_full_name: str) -> list[tuple[str, str]]:
    return [
        (EXAMPLES_ORIGIN, api),
        (EXAMPLES_ORIGIN_PLAIN, api),
        (template_full_name, repo.full_name),
    ]


def minimal_repository(repo: Repo, api: str) -> Json:
    """The ``repository`` object inside a run (``minimal-repository``)."""
    template = example("workflow-run")["repository"]
    body: Json = _rewrite(template, _repo_replacements(repo, api, template["full_name"]))
    body.update(
        id=repo.id,
        node_id=node_id("R", repo.id),
        name=repo.name,
        full_name=repo.full_name,
        owner=user(repo.owner, api),
        private=False,
        description=f"{repo.name} (served by the fake GitHub)",
    )
    return body


def repository(repo: Repo, api: str) -> Json:
    """``GET /repos/{owner}/{repo}`` (the ``repository`` example of the installation list)."""
    template = _copy("repository-paginated-2", "repositories")
    body: Json = _rewrite(template, _repo_replacements(repo, api, template["full_name"]))
    body.update(
        id=repo.id,
        node_id=node_id("R", repo.id),
        name=repo.name,
        full_name=repo.full_name,
        owner=user(repo.owner, api),
        private=False,
        description=f"{repo.name} (served by the fake GitHub)",
        default_branch=repo.default_branch,
    )
    body.pop("template_repository", None)  # another repository's object, not ours
    return body


def workflow(wf: Workflow, repo: Repo, api: str) -> Json:
    body = _copy("workflow-paginated", "workflows")
    repo_url = f"{api}/repos/{repo.full_name}"
    html = f"https://github.com/{repo.full_name}"
    body.update(
        id=wf.id,
        node_id=node_id("W", wf.id),
        name=wf.name,
        path=wf.path,
        state=wf.state,
        created_at=iso_pacific(wf.created_at),
        updated_at=iso_pacific(wf.updated_at),
        url=f"{repo_url}/actions/workflows/{wf.id}",
        html_url=f"{html}/blob/{repo.default_branch}/{wf.path}",
        badge_url=f"{html}/workflows/{wf.name}/badge.svg",
    )
    return body


def check_suite_id(run: Run, attempt: Attempt) -> int:
    """Each attempt runs in a check suite of its own."""
    return run.id * 10 + attempt.number


def _pull_request(run: Run, repo: Repo, api: str) -> Json:
    number = 1 + stable_hash(run.head_branch) % 5000
    repo_ref = {"id": repo.id, "url": f"{api}/repos/{repo.full_name}", "name": repo.name}
    return {
        "url": f"{api}/repos/{repo.full_name}/pulls/{number}",
        "id": 1_000_000_000 + number,
        "number": number,
        "head": {"ref": run.head_branch, "sha": run.head_sha, "repo": repo_ref},
        "base": {"ref": repo.default_branch, "sha": "0" * 40, "repo": repo_ref},
    }


def workflow_run(
    run: Run,
    attempt: Attempt,
    repo: Repo,
    wf: Workflow,
    api: str,
    *,
    exclude_pull_requests: bool = False,
    repository_json: Json | None = None,
) -> Json:
    """One run as it was at the end of (or during) ``attempt``."""
    large = ("repository", "head_repository", "actor", "triggering_actor")
    body = _copy("workflow-run", skip=large)
    repo_url = f"{api}/repos/{repo.full_name}"
    run_url = f"{repo_url}/actions/runs/{run.id}"
    suite = check_suite_id(run, attempt)
    repo_json = repository_json or minimal_repository(repo, api)
    pulls = []
    if run.event == "pull_request" and not exclude_pull_requests:
        pulls = [_pull_request(run, repo, api)]
    body.update(
        id=run.id,
        name=run.name,
        node_id=node_id("WFR", run.id),
        check_suite_id=suite,
        check_suite_node_id=node_id("CS", suite),
        head_branch=run.head_branch,
        head_sha=run.head_sha,
        path=wf.path,
        run_number=run.run_number,
        event=run.event,
        display_title=run.display_title,
        status=attempt.status,
        conclusion=attempt.conclusion,
        workflow_id=wf.id,
        url=run_url,
        html_url=f"https://github.com/{repo.full_name}/actions/runs/{run.id}",
        pull_requests=pulls,
        created_at=iso(run.created_at),
        updated_at=iso(attempt.updated_at),
        actor=user(run.actor_login, api),
        run_attempt=attempt.number,
        referenced_workflows=[],
        run_started_at=iso(attempt.run_started_at),
        triggering_actor=user(attempt.triggering_actor, api),
        jobs_url=f"{run_url}/jobs",
        logs_url=f"{run_url}/logs",
        check_suite_url=f"{repo_url}/check-suites/{suite}",
        artifacts_url=f"{run_url}/artifacts",
        cancel_url=f"{run_url}/cancel",
        rerun_url=f"{run_url}/rerun",
        previous_attempt_url=(
            f"{run_url}/attempts/{attempt.number - 1}" if attempt.number > 1 else None
        ),
        workflow_url=f"{repo_url}/actions/workflows/{wf.id}",
        repository=repo_json,
        head_repository=repo_json,
    )
    body["head_commit"].update(
        id=run.head_sha,
        tree_id=run.head_sha[::-1],
        message=run.display_title,
        timestamp=iso(run.created_at - timedelta(minutes=1)),
    )
    return body


def job(job: Job, run: Run, repo: Repo, wf: Workflow, api: str) -> Json:
    body = _copy("job")
    repo_url = f"{api}/repos/{repo.full_name}"
    body.update(
        id=job.id,
        run_id=run.id,
        run_url=f"{repo_url}/actions/runs/{run.id}",
        run_attempt=job.run_attempt,  # not in the example, but in every real answer
        node_id=node_id("CR", job.id),
        head_sha=run.head_sha,
        url=f"{repo_url}/actions/jobs/{job.id}",
        html_url=f"https://github.com/{repo.full_name}/actions/runs/{run.id}/job/{job.id}",
        status=job.status,
        conclusion=job.conclusion,
        created_at=iso(job.created_at),  # required by the schema, missing from the example
        started_at=iso(job.started_at),
        completed_at=iso(job.completed_at),
        name=job.name,
        steps=[
            {
                "name": step.name,
                "status": step.status,
                "conclusion": step.conclusion,
                "number": step.number,
                "started_at": iso_pacific(step.started_at),
                "completed_at": iso_pacific(step.completed_at),
            }
            for step in job.steps
        ],
        check_run_url=f"{repo_url}/check-runs/{job.id}",
        labels=list(job.labels),
        runner_id=job.runner_id,
        runner_name=job.runner_name,
        runner_group_id=job.runner_group_id,
        runner_group_name=job.runner_group_name,
        workflow_name=wf.name,
        head_branch=run.head_branch,
    )
    return body


def artifact(item: Artifact, run: Run, repo: Repo, api: str) -> Json:
    body = _copy("artifact-paginated", "artifacts")
    repo_url = f"{api}/repos/{repo.full_name}"
    created = item.created_at or run.updated_at
    body.update(
        id=item.id,
        node_id=node_id("MDg6QXJ0aWZhY3Q", item.id),
        name=item.name,
        size_in_bytes=item.size_in_bytes,
        url=f"{repo_url}/actions/artifacts/{item.id}",
        archive_download_url=f"{repo_url}/actions/artifacts/{item.id}/zip",
        expired=item.expired,
        created_at=iso(created),
        expires_at=iso(created + timedelta(days=90)),
        updated_at=iso(created),
        digest="sha256:" + hashlib.sha256(item.zip_bytes).hexdigest(),
        workflow_run={
            "id": run.id,
            "repository_id": repo.id,
            "head_repository_id": repo.id,
            "head_branch": run.head_branch,
            "head_sha": run.head_sha,
        },
    )
    return body


@cache
def _installation_template() -> Json:
    """The installation object of a real ``installation`` webhook (the REST answer's shape)."""
    payload = json.loads((WEBHOOKS / "installation" / "created.payload.json").read_text())
    body: Json = payload["installation"]
    return body


def installation(inst: Installation, app_id: int, api: str) -> Json:
    """One item of ``GET /app/installations``."""
    body = copy.deepcopy(_installation_template())
    account = dict(user(inst.account_login, api), type=inst.account_type)
    if inst.account_type == "Organization":
        html = f"https://github.com/organizations/{inst.account_login}/settings/installations"
    else:
        html = "https://github.com/settings/installations"
    body.update(
        id=inst.id,
        account=account,
        repository_selection="selected",
        access_tokens_url=f"{api}/app/installations/{inst.id}/access_tokens",
        repositories_url=f"{api}/installation/repositories",
        html_url=f"{html}/{inst.id}",
        app_id=app_id,
        app_slug="cipulse-fake",  # in today's REST answer, not in the 2019 webhook
        target_id=account["id"],
        target_type=inst.account_type,
        permissions=dict(APP_PERMISSIONS),
        events=["workflow_job", "workflow_run"],
        created_at=iso(inst.created_at),  # REST sends date-times where webhooks sent epochs
        updated_at=iso(inst.created_at),
        suspended_at=iso(inst.suspended_at),
        suspended_by=None,
        has_multiple_single_files=False,
        single_file_paths=[],
    )
    return body


def installation_token(token: str, expires_at: float) -> Json:
    """``POST /app/installations/{id}/access_tokens`` (201). ``repositories`` is only sent for a
    token narrowed to some repositories, which the fake does not do."""
    body = _copy("installation-token", skip=("repositories",))
    del body["repositories"]
    body.update(
        token=token,
        expires_at=iso(datetime.fromtimestamp(expires_at, UTC)),
        permissions=dict(APP_PERMISSIONS),
        repository_selection="selected",
    )
    return body


def rate_limit(*, limit: int, remaining: int, reset: int) -> Json:
    body = _copy("rate-limit-overview")
    core = {"limit": limit, "used": limit - remaining, "remaining": remaining, "reset": reset}
    body["resources"]["core"] = core
    body["rate"] = dict(core)
    return body


def error(message: str, status: int, documentation_url: str = DOCS) -> Json:
    """GitHub's error body (``basic-error``); recent answers carry the status as a string."""
    return {"message": message, "documentation_url": documentation_url, "status": str(status)}


def job_log(job: Job, run: Run, repo: Repo, wf: Workflow) -> str:
    """A plain-text job log in the runner's format: a UTF-8 BOM, then every line prefixed with a
    7-digit-fraction UTC timestamp, ``##[group]`` per step and ``##[error]`` on failure."""
    lines: list[tuple[datetime, str]] = []
    start = job.started_at
    lines.append((start, "Current runner version: '2.321.0'"))
    lines.append((start, f"Runner name: '{job.runner_name}'"))
    lines.append((start, f"Runner group name: '{job.runner_group_name}'"))
    lines.append(
        (start, f"Job defined at: {repo.full_name}/{wf.path}@refs/heads/{run.head_branch}")
    )
    for step in job.steps:
        when = step.started_at or start
        title = step.name if step.name.startswith("Run ") else f"Run {step.name}"
        lines.append((when, f"##[group]{title}"))
        lines.append((when, f"{step.name} for {job.name}"))
        lines.append((when, "##[endgroup]"))
        if step.conclusion in ("failure", "timed_out"):
            lines.append((step.completed_at or when, "FAILED tests/test_app.py::test_flaky"))
            lines.append(
                (step.completed_at or when, "##[error]Process completed with exit code 1.")
            )
        if step.conclusion == "cancelled":
            lines.append((step.completed_at or when, "##[error]The operation was canceled."))
    end = job.completed_at or start
    lines.append((end, "Cleaning up orphan processes"))
    text = "".join(
        f"{moment.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S')}."
        f"{(index * 10_000 + 1_234) % 10_000_000:07d}Z {message}\n"
        for index, (moment, message) in enumerate(lines)
    )
    return "\ufeff" + text
