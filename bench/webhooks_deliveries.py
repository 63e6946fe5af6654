"""Signed GitHub deliveries for the webhook benchmark, built from real captured payloads.

Each simulated workflow run sends what GitHub sends for it: ``workflow_run`` requested, one
``workflow_job`` queued per job, ``workflow_run`` in_progress, each job in_progress then
completed (the jobs interleaved), ``workflow_run`` completed. About 25 runs are in flight at
once across a few repositories, so their deliveries interleave as they do on a busy
organisation. Every delivery has its own ``X-GitHub-Delivery`` GUID; a small share is sent a
second time with the same GUID (GitHub's redelivery), which the server must answer as a
duplicate. Bodies are compact JSON, signed with HMAC-SHA256 (and SHA-1, as GitHub also sends).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cipulse.sync.repository import STATUS_RANK

FIXTURES = Path("/work/shared/fixtures/real/webhooks")
HOOK_ID = "482957301"

# template key -> fixture files (relative to FIXTURES); one is picked at random per delivery
TEMPLATE_FILES = {
    "job:queued": [
        "workflow_job/queued.payload.json",
        "workflow_job/queued.probot-wrapped.pytorch-test-infra.json",
    ],
    "job:in_progress": [
        "workflow_job/in_progress.payload.json",
        "workflow_job/in_progress.with-queued-steps.payload.json",
    ],
    "job:completed:success": ["workflow_job/completed.success.with-organization.payload.json"],
    "job:completed:failure": ["workflow_job/completed.failure.with-organization.payload.json"],
    "job:completed:skipped": ["workflow_job/completed.skipped.otel-contrib.json"],
    "run:requested": ["workflow_run/requested.payload.json"],
    "run:in_progress": ["workflow_run/in_progress.from-signed-delivery.payload.json"],
    "run:completed:success": [
        "workflow_run/completed.payload.json",
        "workflow_run/completed.with-pull-requests.payload.json",
    ],
    "run:completed:failure": [
        "workflow_run/completed.failure.probot-wrapped.pytorch-test-infra.json"
    ],
}


def load_templates(folder: Path = FIXTURES) -> dict[str, list[str]]:
    """Each template as its JSON text; some fixtures are wrapped as ``{name, id, payload}``."""
    out: dict[str, list[str]] = {}
    for key, names in TEMPLATE_FILES.items():
        out[key] = []
        for name in names:
            data = json.loads((folder / name).read_text(encoding="utf-8"))
            if "payload" in data and "action" not in data:
                data = data["payload"]
            out[key].append(json.dumps(data))
    return out


def sign(body: bytes, secret: str) -> tuple[str, str]:
    key = secret.encode()
    return (
        "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest(),
        "sha1=" + hmac.new(key, body, hashlib.sha1).hexdigest(),
    )


@dataclass(frozen=True)
class Delivery:
    guid: str
    event: str
    action: str
    body: bytes
    headers: dict[str, str]
    run_id: int
    job_id: int | None
    status: str  # the run's or job's status in the payload
    duplicate: bool = False  # a second send of an earlier GUID


@dataclass
class _Run:
    github_id: int
    number: int
    repo: dict[str, Any]
    workflow_id: int
    name: str
    branch: str
    sha: str
    failed: bool
    created: datetime
    steps: deque[tuple[str, str, int | None]] = field(default_factory=deque)
    job_ids: list[int] = field(default_factory=list)
    job_outcome: dict[int, str] = field(default_factory=dict)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class Generator:
    """An endless, deterministic (per seed) stream of signed deliveries; ids never repeat."""

    def __init__(
        self,
        secret: str,
        *,
        seed: int,
        templates: dict[str, list[str]] | None = None,
        repos: int = 5,
        active_runs: int = 25,
        duplicate_share: float = 0.02,
    ) -> None:
        self.secret = secret
        self.rng = random.Random(seed)
        self.templates = templates or load_templates()
        self.active_runs = active_runs
        self.duplicate_share = duplicate_share
        self._next_run = 19_000_000_000 + seed % 1000 * 1_000_000
        self._next_job = 52_000_000_000 + seed % 1000 * 10_000_000
        self._recent: deque[Delivery] = deque(maxlen=300)
        self._active: list[_Run] = []
        base = json.loads(self.templates["job:queued"][0])["repository"]
        self._repos = []
        for i in range(repos):
            repo = dict(base)
            owner = dict(base.get("owner") or {})
            owner["login"] = "bench-org"
            repo.update(
                id=700_000_000 + i,
                name=f"service-{i}",
                full_name=f"bench-org/service-{i}",
                owner=owner,
                html_url=f"https://github.com/bench-org/service-{i}",
                default_branch="main",
            )
            self._repos.append(repo)

    # -- runs -----------------------------------------------------------------------------

    def _new_run(self) -> _Run:
        rng = self.rng
        self._next_run += 1
        repo = rng.choice(self._repos)
        run = _Run(
            github_id=self._next_run,
            number=self._next_run % 100_000,
            repo=repo,
            workflow_id=repo["id"] * 10 + rng.randint(1, 3),
            name=rng.choice(["CI", "Tests", "Lint", "Release", "Nightly"]),
            branch=rng.choice(["main", "main", "main", "dev", f"feature/{rng.randint(1, 99)}"]),
            sha=f"{rng.getrandbits(160):040x}",
            failed=rng.random() < 0.15,
            created=datetime.now(UTC) - timedelta(seconds=rng.randint(0, 600)),
        )
        jobs = rng.randint(2, 6)
        for _ in range(jobs):
            self._next_job += 1
            run.job_ids.append(self._next_job)
            run.job_outcome[self._next_job] = "skipped" if rng.random() < 0.05 else "success"
        if run.failed:
            run.job_outcome[rng.choice(run.job_ids)] = "failure"
        run.steps.append(("run", "requested", None))
        run.steps.extend(("job", "queued", j) for j in run.job_ids)
        run.steps.append(("run", "in_progress", None))
        pending = {j: deque(["in_progress", "completed"]) for j in run.job_ids}
        while pending:
            job = rng.choice(list(pending))
            run.steps.append(("job", pending[job].popleft(), job))
            if not pending[job]:
                del pending[job]
        run.steps.append(("run", "completed", None))
        return run

    def _payload(self, run: _Run, kind: str, action: str, job: int | None) -> tuple[dict, str]:
        rng = self.rng
        now = datetime.now(UTC)
        if kind == "run":
            conclusion = "failure" if run.failed else "success"
            key = f"run:{action}" + (f":{conclusion}" if action == "completed" else "")
            payload = json.loads(rng.choice(self.templates[key]))
            data = payload["workflow_run"]
            data.update(
                id=run.github_id,
                run_number=run.number,
                run_attempt=1,
                name=run.name,
                display_title=f"{run.name} on {run.branch}",
                workflow_id=run.workflow_id,
                head_branch=run.branch,
                head_sha=run.sha,
                created_at=_iso(run.created),
                run_started_at=_iso(run.created),
                updated_at=_iso(now),
                status={"requested": "queued"}.get(action, action),
                conclusion=conclusion if action == "completed" else None,
                html_url=f"{run.repo['html_url']}/actions/runs/{run.github_id}",
                repository=run.repo,
                head_repository=run.repo,
            )
            if isinstance(payload.get("workflow"), dict):
                payload["workflow"]["id"] = run.workflow_id
            payload["action"] = action
            payload["repository"] = run.repo
            return payload, data["status"]
        assert job is not None
        key = f"job:{action}" + (f":{run.job_outcome[job]}" if action == "completed" else "")
        payload = json.loads(rng.choice(self.templates[key]))
        data = payload["workflow_job"]
        started = run.created + timedelta(seconds=rng.randint(5, 60))
        data.update(
            id=job,
            run_id=run.github_id,
            run_attempt=1,
            name=f"build ({job % 7})",
            workflow_name=run.name,
            head_branch=run.branch,
            head_sha=run.sha,
            created_at=_iso(run.created),
            started_at=_iso(started),
            completed_at=_iso(now) if action == "completed" else None,
            html_url=f"{run.repo['html_url']}/actions/runs/{run.github_id}/job/{job}",
            run_url=f"https://api.github.com/repos/{run.repo['full_name']}/actions/runs/"
            f"{run.github_id}",
        )
        payload["action"] = action
        payload["repository"] = run.repo
        return payload, data["status"]

    # -- deliveries -----------------------------------------------------------------------

    def _fresh(self) -> Delivery:
        while len(self._active) < self.active_runs:
            self._active.append(self._new_run())
        run = self.rng.choice(self._active)
        kind, action, job = run.steps.popleft()
        if not run.steps:
            self._active.remove(run)
        payload, status = self._payload(run, kind, action, job)
        body = json.dumps(payload, separators=(",", ":")).encode()
        guid = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        event = "workflow_run" if kind == "run" else "workflow_job"
        sha256, sha1 = sign(body, self.secret)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/bench",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": guid,
            "X-GitHub-Hook-ID": HOOK_ID,
            "X-GitHub-Hook-Installation-Target-Type": "repository",
            "X-GitHub-Hook-Installation-Target-ID": str(run.repo["id"]),
            "X-Hub-Signature": sha1,
            "X-Hub-Signature-256": sha256,
        }
        return Delivery(guid, event, action, body, headers, run.github_id, job, status)

    def take(self, n: int) -> list[Delivery]:
        out: list[Delivery] = []
        while len(out) < n:
            if self._recent and self.rng.random() < self.duplicate_share:
                out.append(replace(self.rng.choice(self._recent), duplicate=True))
                continue
            delivery = self._fresh()
            self._recent.append(delivery)
            out.append(delivery)
        return out


class Expectation:
    """The status each run and job must end with, given the deliveries that were accepted.

    State only moves forward, so the answer is the highest status any accepted delivery carried,
    whatever order they were processed in. A job event also says its run is at least queued,
    waiting or in progress (the placeholder run the service creates).
    """

    def __init__(self) -> None:
        self.runs: dict[int, str] = {}
        self.jobs: dict[int, str] = {}

    @staticmethod
    def _raise(seen: dict[int, str], key: int, status: str) -> None:
        if key not in seen or STATUS_RANK.get(status, 0) > STATUS_RANK.get(seen[key], 0):
            seen[key] = status

    def add(self, deliveries: Iterable[Delivery]) -> None:
        for d in deliveries:
            if d.job_id is None:
                self._raise(self.runs, d.run_id, d.status)
            else:
                self._raise(self.jobs, d.job_id, d.status)
                implied = d.status if d.status in ("queued", "waiting") else "in_progress"
                self._raise(self.runs, d.run_id, implied)
