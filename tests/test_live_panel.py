"""The dashboard's "Running now" panel on first paint, on SQLite and PostgreSQL.

Runs and jobs are stored as webhooks store them: with the sync stage's ``apply_run_event`` and
``apply_job_event`` on GitHub's real ``workflow_run``/``workflow_job`` payloads (ids unified,
times moved to now), or by posting the signed deliveries themselves. The panel is read the way
a person reads it: the text of each card, job row and step.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from cipulse.app import create_app
from cipulse.db import Database
from cipulse.github.schemas import parse_job, parse_run
from cipulse.settings import Settings
from cipulse.sync import repository as sync_repository
from tests.test_jobs_page import Node, parse
from tests.test_webhooks import HOOKS, SECRET, all_done, deliver, payload, wait_until

RUN_ID = 18436407157
JOB_ID = 9747952373
REPO = "derekg1729/test-repo"  # the repository of the real workflow_run delivery
RUN_URL = f"https://github.com/{REPO}/actions/runs/{RUN_ID}"


# -- GitHub's payloads, made one run of one repository, happening now -------------------------


def _iso(moment: datetime) -> str:
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def run_event(
    status: str,
    conclusion: str | None = None,
    *,
    run_id: int = RUN_ID,
    name: str = "CI",
    branch: str = "main",
    started: datetime | None = None,
) -> dict[str, Any]:
    """A ``workflow_run`` delivery (the real in-progress one) with this run's state."""
    data = copy.deepcopy(
        payload(HOOKS / "workflow_run" / "in_progress.from-signed-delivery.payload.json")
    )
    now = datetime.now(UTC)
    start = started or now - timedelta(seconds=40)
    data["action"] = "completed" if status == "completed" else status
    data["workflow_run"].update(
        id=run_id,
        run_attempt=1,
        status=status,
        conclusion=conclusion,
        name=name,
        display_title=name,
        head_branch=branch,
        html_url=f"https://github.com/{REPO}/actions/runs/{run_id}",
        created_at=_iso(start),
        run_started_at=_iso(start),
        updated_at=_iso(now),
    )
    return data


JOB_FIXTURES = {
    "queued": "queued.payload.json",
    "in_progress": "in_progress.with-queued-steps.payload.json",
    "completed": "completed.success.with-organization.payload.json",
    "failure": "completed.failure.with-organization.payload.json",
}


def job_event(
    state: str,
    *,
    run_id: int = RUN_ID,
    job_id: int = JOB_ID,
    name: str = "build",
    started: datetime | None = None,
) -> dict[str, Any]:
    """A real ``workflow_job`` delivery (queued, in_progress with steps, completed) made one
    job of this run, in this repository, with its times moved to now."""
    data = copy.deepcopy(payload(HOOKS / "workflow_job" / JOB_FIXTURES[state]))
    data["repository"] = payload(
        HOOKS / "workflow_run" / "in_progress.from-signed-delivery.payload.json"
    )["repository"]
    job = data["workflow_job"]
    now = datetime.now(UTC)
    start = started or now - timedelta(seconds=20)
    job.update(
        id=job_id,
        run_id=run_id,
        run_attempt=1,
        name=name,
        workflow_name="CI",
        head_branch="main",
        html_url=f"https://github.com/{REPO}/actions/runs/{run_id}/job/{job_id}",
        created_at=_iso(now - timedelta(seconds=30)),
        started_at=_iso(start) if job.get("started_at") else None,
        completed_at=_iso(now) if job.get("completed_at") else None,
    )
    return data


def store(db_url: str, *events: dict[str, Any]) -> None:
    """Apply deliveries' payloads as the webhook service does, in one transaction."""
    db = Database(db_url)
    with db.write() as uow:
        for data in events:
            repo = sync_repository.ensure_repo(uow.session, data["repository"]["full_name"])
            if "workflow_run" in data:
                run = parse_run(data["workflow_run"])
                sync_repository.apply_run_event(uow.session, repo.id, run, None)
            else:
                sync_repository.apply_job_event(
                    uow.session, repo.id, parse_job(data["workflow_job"])
                )
    db.dispose()


# -- reading the panel ---------------------------------------------------------------------------


@dataclass
class Card:
    node: Node

    def text(self, class_: str) -> str:
        return self.node.find(class_=class_).text

    @property
    def jobs(self) -> list[dict[str, Any]]:
        return [
            {
                "id": li.attrs["data-job-id"],
                "badge": li.find("span", class_="live-badge").text,
                "name": li.find(class_="live-job-name").text,
                "note": li.find(class_="live-job-note").text,
                "steps": [(s.attrs["data-state"], s.text) for s in steps[0].find_all("li")]
                if (steps := li.find_all("ol", class_="live-steps"))
                else [],
            }
            for li in self.node.find_all("li", class_="live-job")
        ]


def panel(html: str) -> Node:
    return parse(html).find("section", id="live-panel")


def cards(html: str) -> dict[str, Card]:
    return {
        c.attrs["data-run-id"] or "": Card(c)
        for c in panel(html).find_all("article", class_="live-run")
    }


# -- tests ---------------------------------------------------------------------------------------


def test_first_paint_shows_runs_in_progress_with_their_jobs(
    client: TestClient, db_url: str
) -> None:
    store(
        db_url,
        run_event("in_progress"),
        job_event("completed", job_id=1, name="lint"),
        job_event("in_progress", job_id=2, name="test"),
        job_event("queued", job_id=3, name="deploy"),
        # Not running: finished, or abandoned more than two days ago.
        run_event("completed", "success", run_id=501, name="Done"),
        run_event(
            "in_progress", run_id=502, name="Stale", started=datetime.now(UTC) - timedelta(days=3)
        ),
    )
    html = client.get("/").text
    found = cards(html)
    assert list(found) == [str(RUN_ID)]
    card = found[str(RUN_ID)]
    assert card.text("live-repo") == REPO
    assert card.text("live-workflow") == "CI"
    assert card.text("live-branch") == "main"
    assert card.node.find("a", class_="live-run-link").attrs["href"] == RUN_URL
    assert card.text("live-badge") == "in progress"
    assert card.text("live-progress-text") == "1 of 3 jobs finished"
    bar = card.node.find(class_="live-bar")
    assert (bar.attrs["aria-valuenow"], bar.attrs["aria-valuemax"]) == ("1", "3")
    assert bar.find("span").attrs["style"] == "width: 33.3%"
    assert panel(html).find("p", data_live_count=True).text == "1 run in progress"

    steps = [
        s["name"] for s in job_event("in_progress")["workflow_job"]["steps"]
    ]  # the real job's nine steps, the third one running
    assert card.jobs == [
        {"id": "1", "badge": "success", "name": "lint", "note": "Took 20s", "steps": []},
        {
            "id": "2",
            "badge": "in progress",
            "name": "test",
            "note": f"Step 3 of 9: {steps[2]}",
            "steps": list(zip(
                ["success", "success", "in_progress"] + ["queued"] * 6, steps, strict=True
            )),
        },
        {"id": "3", "badge": "queued", "name": "deploy", "note": "Waiting for a runner",
         "steps": []},
    ]  # fmt: skip
    job_link = card.node.find("a", class_="live-job-name")
    assert job_link.attrs["href"] == f"https://github.com/{REPO}/actions/runs/{RUN_ID}/job/1"
    assert job_link.attrs["target"] == "_blank"
    # The script starts from the same runs, as /api/runs/in-progress describes them.
    data = json.loads(
        "".join(str(c) for c in parse(html).find("script", id="live-runs-data").children)
    )
    assert data == client.get("/api/runs/in-progress?limit=20").json()
    assert 'data-stream-path="/api/stream"' in html


def test_a_failed_job_marks_its_run(client: TestClient, db_url: str) -> None:
    store(db_url, run_event("in_progress"), job_event("failure", job_id=7, name="lint"))
    card = cards(client.get("/").text)[str(RUN_ID)]
    assert "data-failing" in card.node.attrs
    assert card.jobs[0]["badge"] == "failure"
    assert card.node.find("li", class_="live-job").attrs["data-tone"] == "failure"


def test_signed_deliveries_reach_the_first_paint(
    make_settings: Callable[..., Settings], db_url: str
) -> None:
    with TestClient(create_app(make_settings(webhook_secret=SECRET))) as hooks:
        for event, data in [
            ("workflow_run", run_event("in_progress")),
            ("workflow_job", job_event("queued")),
            ("workflow_job", job_event("in_progress")),
        ]:
            assert deliver(hooks, event, data).status_code == 202
        wait_until(all_done(db_url))
        html = hooks.get("/").text
    card = cards(html)[str(RUN_ID)]
    assert card.text("live-progress-text") == "0 of 1 job finished"
    assert [(j["badge"], j["name"]) for j in card.jobs] == [("in progress", "build")]
    assert len(card.jobs[0]["steps"]) == 9


def test_names_from_github_are_escaped(client: TestClient, db_url: str) -> None:
    evil = "<script>alert(1)</script>"
    run = run_event("in_progress", name=f"CI {evil}", branch=f"x{evil}")
    run["workflow_run"]["html_url"] = "javascript:alert(1)"
    job = job_event("in_progress", name=f"build {evil}")
    job["workflow_job"]["steps"][2]["name"] = f"step {evil}"
    job["workflow_job"]["html_url"] = "javascript:alert(2)"
    store(db_url, run, job)
    html = client.get("/").text
    assert evil not in html
    assert 'href="javascript:' not in html  # not a link: the run's is left out, the job's is text
    card = cards(html)[str(RUN_ID)]
    assert card.text("live-workflow") == f"CI {evil}"
    assert card.jobs[0]["name"] == f"build {evil}"
    assert card.jobs[0]["note"] == f"Step 3 of 9: step {evil}"
    assert not card.node.find_all("a", class_="live-run-link")
    # The JSON for the script cannot close its <script> element early.
    assert "<\\/script>" in html or "\\u003c/script\\u003e" in html


def test_hidden_while_nothing_runs_and_no_repository_is_known(client: TestClient) -> None:
    html = client.get("/").text
    section = panel(html)
    assert "hidden" in section.attrs
    assert section.find("p", data_live_empty=True).text == "Nothing is running on GitHub right now."
    assert cards(html) == {}


def test_calm_line_when_a_repository_is_known_but_nothing_runs(
    client: TestClient, db_url: str
) -> None:
    store(db_url, run_event("completed", "success"))
    client.post("/api/events/run", json={"pipeline": "build", "status": "success"})
    html = client.get("/").text
    section = panel(html)
    assert "hidden" not in section.attrs
    empty = section.find("p", data_live_empty=True)
    assert "hidden" not in empty.attrs
    assert empty.text == "Nothing is running on GitHub right now."
    assert section.find("p", data_live_count=True).text == ""
    # The rest of the dashboard is as it was: KPIs, chart and the recent-runs table.
    tree = parse(html)
    assert tree.find("article", data_kpi="total").find(class_="kpi-value").text == "1"
    assert tree.find("div", id="recent-runs").find("td", class_="pipeline").text == "build"
