"""What each GitHub event does to stored state.

Handlers are idempotent and order-tolerant: a run or job only moves forward within an attempt
(queued < waiting < in_progress < completed), a newer attempt is its own row, and a duplicate
changes nothing. Unknown events are kept and marked ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from cipulse.db import tx_memo
from cipulse.github.schemas import parse_job, parse_run
from cipulse.sync import repository as store
from cipulse.webhooks import repository as inbox


@dataclass
class Outcome:
    """``state`` is processed or ignored; ``changes`` feed the live updates after commit."""

    state: str = "processed"
    changes: list[dict[str, Any]] = field(default_factory=list)


def _repo_id(session: Session, payload: dict[str, Any]) -> int | None:
    repo = payload.get("repository")
    if not isinstance(repo, dict) or not isinstance(repo.get("full_name"), str):
        return None
    # Deliveries processed in one transaction mostly name the same few repositories, as
    # GitHub describes them the same way: look each up and update it once per transaction.
    installation = payload.get("installation")
    installation_id = (
        installation["id"]
        if isinstance(installation, dict) and isinstance(installation.get("id"), int)
        else None
    )
    described = (repo.get("id"), repo.get("default_branch"), repo.get("html_url"), installation_id)
    known = tx_memo(session, "repos")
    key = repo["full_name"]
    seen = known.get(key)
    if seen is not None and seen[1] == described:
        return int(seen[0].id)
    row = seen[0] if seen is not None else store.ensure_repo(session, repo["full_name"])
    store.update_repo_from_github(session, row.id, repo)
    if installation_id is not None:
        row.installation_id = installation_id
    known[key] = (row, described)  # holding the row keeps it in the session's identity map
    return int(row.id)


def on_workflow_run(session: Session, payload: dict[str, Any], now: datetime) -> Outcome:
    repo_id = _repo_id(session, payload)
    data = payload.get("workflow_run")
    if repo_id is None or not isinstance(data, dict):
        return Outcome("ignored")
    run = parse_run(data)
    workflow = store.workflow_ids(session, [run.workflow_github_id or 0])
    changed = store.apply_run_event(
        session, repo_id, run, workflow.get(run.workflow_github_id or 0)
    )
    out = Outcome()
    if changed:
        out.changes.append(
            {
                "kind": "run",
                "repo_id": repo_id,
                "run_id": run.github_id,
                "attempt": run.run_attempt,
                "status": run.status,
                "conclusion": run.conclusion,
                "name": run.name,
                "branch": run.head_branch,
            }
        )
    return out


def on_workflow_job(session: Session, payload: dict[str, Any], now: datetime) -> Outcome:
    repo_id = _repo_id(session, payload)
    data = payload.get("workflow_job")
    if repo_id is None or not isinstance(data, dict):
        return Outcome("ignored")
    job = parse_job(data)
    out = Outcome()
    if store.apply_job_event(session, repo_id, job):
        out.changes.append(
            {
                "kind": "job",
                "repo_id": repo_id,
                "run_id": job.run_github_id,
                "attempt": job.run_attempt,
                "job_id": job.github_id,
                "name": job.name,
                "status": job.status,
                "conclusion": job.conclusion,
                "steps": [
                    {
                        "number": s.number,
                        "name": s.name,
                        "status": s.status,
                        "conclusion": s.conclusion,
                    }
                    for s in job.steps
                ],
            }
        )
    return out


def _repos_of(payload: dict[str, Any], key: str) -> list[str]:
    items = payload.get(key)
    if not isinstance(items, list):
        return []
    return [r["full_name"] for r in items if isinstance(r, dict) and "full_name" in r]


def _track(session: Session, names: list[str], installation_id: int) -> None:
    for name in names:
        repo = store.get_repo(session, name)
        if repo is None or not repo.tracked:
            repo = store.track_repo(session, name, [])
        repo.installation_id = installation_id


def on_installation(session: Session, payload: dict[str, Any], now: datetime) -> Outcome:
    data = payload.get("installation")
    if not isinstance(data, dict) or not isinstance(data.get("id"), int):
        return Outcome("ignored")
    action = payload.get("action")
    installation = inbox.upsert_installation(session, data, now=now)
    if action == "deleted":
        installation.deleted_at = now
        for repo in store.all_repos(session):
            if repo.installation_id == installation.github_id:
                repo.tracked = False
    elif action == "suspend":
        installation.suspended_at = now
    elif action in ("unsuspend", "created", "new_permissions_accepted"):
        installation.suspended_at = None
        installation.deleted_at = None
        _track(session, _repos_of(payload, "repositories"), installation.github_id)
    return Outcome(
        changes=[
            {"kind": "installation", "installation_id": installation.github_id, "action": action}
        ]
    )


def on_installation_repositories(
    session: Session, payload: dict[str, Any], now: datetime
) -> Outcome:
    data = payload.get("installation")
    if not isinstance(data, dict) or not isinstance(data.get("id"), int):
        return Outcome("ignored")
    installation = inbox.upsert_installation(session, data, now=now)
    _track(session, _repos_of(payload, "repositories_added"), installation.github_id)
    for name in _repos_of(payload, "repositories_removed"):
        repo = store.get_repo(session, name)
        if repo is not None:
            repo.tracked = False
    return Outcome()


def on_ping(session: Session, payload: dict[str, Any], now: datetime) -> Outcome:
    return Outcome()


HANDLERS: dict[str, Callable[[Session, dict[str, Any], datetime], Outcome]] = {
    "workflow_run": on_workflow_run,
    "workflow_job": on_workflow_job,
    "installation": on_installation,
    "installation_repositories": on_installation_repositories,
    "ping": on_ping,
}


def process(session: Session, *, event: str, payload: dict[str, Any], now: datetime) -> Outcome:
    handler = HANDLERS.get(event)
    if handler is None:
        return Outcome("ignored")
    return handler(session, payload, now)
