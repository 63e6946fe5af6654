"""The webhook deliveries page (``GET /webhooks``) on SQLite and PostgreSQL.

Deliveries are GitHub's real ones, stored in the inbox with its own functions and brought to the
state a test needs (processed, ignored, pending after a failed try, failed for good). The page
is read the way a person reads it: the text of each row, its state and its error.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cipulse.app import create_app
from cipulse.db import Database
from cipulse.github.webhooks import parse_delivery
from cipulse.models import utcnow
from cipulse.settings import Settings
from cipulse.webhooks import repository as inbox
from tests.test_jobs_page import Node, parse
from tests.test_webhooks import HOOKS, SECRET

FRAGMENT = {"HX-Request": "true", "HX-Target": "deliveries"}
ADMIN = "s3cret-admin"
JOB_DONE = HOOKS / "workflow_job" / "completed.success.with-organization.payload.json"
RUN_DONE = HOOKS / "workflow_run" / "completed.payload.json"


def put(
    db_url: str,
    source: Path | dict[str, Any],
    *,
    event: str = "workflow_job",
    state: str = "processed",
    error: str = "KeyError: 'workflow_job'",
    tries: int = 1,
    repository: str | None = None,
) -> int:
    """Store a delivery as POST /webhooks/github does, then bring it to ``state``: ``pending``
    after ``tries`` failed tries (retried an hour later), ``failed`` after the last one."""
    data = json.loads(source.read_text()) if isinstance(source, Path) else source
    if repository is not None:
        data = {**data, "repository": {**data["repository"], "full_name": repository}}
    body = json.dumps(data).encode()
    headers = {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-GitHub-Hook-ID": "1",
        "Content-Type": "application/json",
    }
    db = Database(db_url)
    with db.write() as uow:
        now = utcnow()
        stored = inbox.store(uow.session, parse_delivery(headers, body), body, now=now)
        assert stored is not None
        if state in ("processed", "ignored"):
            inbox.finish(uow.session, [stored], state=state, now=now)
        else:
            for _ in range(inbox.MAX_ATTEMPTS if state == "failed" else tries):
                inbox.fail(uow.session, stored, error=error, now=now, base=3600)
    db.dispose()
    return stored


def rows(html: str) -> list[dict[str, str]]:
    """One dict per delivery: the text of each cell, and of its error callout if any."""
    found = []
    for body in parse(html).find_all("tbody", class_="delivery"):
        row = body.find("tr")
        cells = {(td.attrs["class"] or "").split()[-1]: td.text for td in row.find_all("td")}
        callouts = body.find_all("div", data_last_error=True)
        cells["error"] = callouts[0].text if callouts else ""
        cells["id"] = body.attrs["data-delivery"] or ""
        found.append(cells)
    return found


def main(html: str) -> Node:
    return parse(html).find("main")


def test_table_newest_first_with_states(client: TestClient, db_url: str) -> None:
    put(db_url, RUN_DONE, event="workflow_run")
    put(db_url, JOB_DONE, state="ignored")
    page = client.get("/webhooks")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    found = rows(page.text)
    assert [(r["event"].split()[0], r["state"], r["repo"]) for r in found] == [
        ("workflow_job", "ignored", "Codertocat/Hello-World"),
        ("workflow_run", "processed", "octo-org/octo-repo"),
    ]
    first = found[0]
    assert first["event"].startswith("workflow_job · completed ")
    assert (first["attempts"], first["received"], first["error"]) == ("1", "just now", "")
    tree = parse(page.text)
    button = tree.find("button", data_replay=True)
    assert button.attrs["data-replay"] == f"/api/webhooks/deliveries/{first['id']}/replay"
    assert tree.find("h2", id="deliveries-title").text == "2 deliveries"
    nav = tree.find("nav", class_="sections")
    assert [(a.text, a.attrs.get("aria-current")) for a in nav.find_all("a")][-1] == (
        "Webhooks",
        "true",
    )


def test_state_filter_round_trip(client: TestClient, db_url: str) -> None:
    put(db_url, RUN_DONE, event="workflow_run")
    failed = put(db_url, JOB_DONE, state="failed")
    put(db_url, JOB_DONE, state="pending")
    page = client.get("/webhooks?state=failed")
    assert [r["id"] for r in rows(page.text)] == [str(failed)]
    filters = parse(page.text).find("nav", class_="state-filter")
    links = {a.text: (a.attrs["href"], a.attrs.get("aria-current")) for a in filters.find_all("a")}
    assert links == {
        "All": ("/webhooks", None),
        "Pending": ("/webhooks?state=pending", None),
        "Processed": ("/webhooks?state=processed", None),
        "Ignored": ("/webhooks?state=ignored", None),
        "Failed": ("/webhooks?state=failed", "page"),
    }
    assert parse(page.text).find("h2", id="deliveries-title").text == "1 failed delivery"
    # Each link leads to what it says.
    stored = {"processed", "failed", "pending"}
    for label, (href, _) in links.items():
        states = {r["state"] for r in rows(client.get(href).text)}
        assert states == (stored if label == "All" else stored & {label.lower()})
    ignored = client.get("/webhooks?state=ignored").text
    assert "No ignored delivery among the newest 100." in main(ignored).text
    assert rows(client.get("/webhooks?state=bogus").text) == rows(client.get("/webhooks").text)


def test_errors_in_a_readable_callout(client: TestClient, db_url: str) -> None:
    put(db_url, JOB_DONE, state="failed", error="OperationalError: database is locked")
    put(db_url, JOB_DONE, state="pending", tries=2, error="TimeoutError: GitHub did not answer")
    trace = "ValueError: bad payload\n  in on_workflow_job\n  at line 3"
    put(db_url, RUN_DONE, event="workflow_run", state="pending", error=trace)
    put(db_url, RUN_DONE, event="workflow_run")
    found = rows(client.get("/webhooks").text)
    assert [r["error"] for r in found] == [
        "",
        "Attempt 1 failed: ValueError: bad payload Tried again in 59 min, or replay it now."
        " Whole error ValueError: bad payload in on_workflow_job at line 3",
        "Attempt 2 failed: TimeoutError: GitHub did not answer"
        " Tried again in 59 min, or replay it now.",
        "Failed after 8 attempts: OperationalError: database is locked"
        " Not retried any more: fix the cause, then replay it.",
    ]
    assert [r["state"] for r in found] == ["processed", "pending", "pending", "failed"]
    assert [r["attempts"] for r in found] == ["1", "1", "2", "8"]


def test_empty_state_says_where_to_point_github(client: TestClient) -> None:
    page = client.get("/webhooks")
    text = main(page.text).text
    assert "No webhook delivery yet" in text
    assert "Payload URL http://testserver/webhooks/github, content type application/json" in text
    assert "Secret: the value of CIPULSE_WEBHOOK_SECRET on this server." in text
    assert "so the endpoint answers 503 until it is" in text
    assert "Webhooks are off: CIPULSE_WEBHOOK_SECRET is not set." in text
    assert client.post("/webhooks/github", content=b"{}").status_code == 503  # as it says


def test_with_a_secret_the_page_does_not_warn(make_settings: Callable[..., Settings]) -> None:
    with TestClient(create_app(make_settings(webhook_secret=SECRET))) as client:
        text = main(client.get("/webhooks").text).text
    assert "No webhook delivery yet" in text
    assert "503" not in text
    assert "Webhooks are off" not in text
    assert "Deliveries are checked against CIPULSE_WEBHOOK_SECRET." in text


def test_what_github_sent_is_escaped(client: TestClient, db_url: str) -> None:
    evil = "<img src=x onerror=alert(1)>"
    put(db_url, JOB_DONE, repository=f"octo/{evil}", state="failed", error=f"KeyError: {evil}")
    html = client.get("/webhooks").text
    assert evil not in html
    row = rows(html)[0]
    assert row["repo"] == f"octo/{evil}"
    assert f"KeyError: {evil}" in row["error"]


@pytest.fixture
def admin_client(make_settings: Callable[..., Settings]) -> Any:
    with TestClient(create_app(make_settings(admin_token=ADMIN))) as client:
        yield client


def test_with_an_admin_token_the_table_needs_it(admin_client: TestClient, db_url: str) -> None:
    secret_repo = "octo/private-thing"
    one = put(db_url, JOB_DONE, repository=secret_repo, state="failed")
    put(db_url, RUN_DONE, event="workflow_run")
    page = admin_client.get("/webhooks")
    assert page.status_code == 200
    assert secret_repo not in page.text
    assert rows(page.text) == []
    tree = parse(page.text)
    assert "hidden" not in tree.find("form", id="admin-token").attrs
    assert "Deliveries are shown to admins only." in tree.find("div", id="deliveries").text
    assert "Vary" in page.headers and "Authorization" in page.headers["vary"]

    refused = admin_client.get("/webhooks", headers=FRAGMENT)
    assert refused.status_code == 401
    wrong = admin_client.get("/webhooks", headers={**FRAGMENT, "Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    bearer = {**FRAGMENT, "Authorization": f"Bearer {ADMIN}"}
    table = admin_client.get("/webhooks?state=failed", headers=bearer)
    assert table.status_code == 200
    assert "<html" not in table.text  # only the table
    assert [(r["repo"], r["state"]) for r in rows(table.text)] == [(secret_repo, "failed")]
    single = admin_client.get(f"/webhooks?delivery={one}", headers=bearer)
    assert [r["id"] for r in rows(single.text)] == [str(one)]
    assert admin_client.get("/webhooks?delivery=999999", headers=bearer).status_code == 404
