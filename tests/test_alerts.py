"""Alerts on transitions, on SQLite and PostgreSQL: a simulated history gives one "broken" and
one "fixed" per incident; reminders, failure rate, flaky jobs and duration regressions; real
SMTP (aiosmtpd) and a real local HTTP receiver for Slack, Teams and the signed webhook.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from sqlalchemy import select

from cipulse.alerts import config as alert_config
from cipulse.alerts import evaluate
from cipulse.alerts.schemas import AlertsFile
from cipulse.app import create_app
from cipulse.db import Database
from cipulse.models import (
    AlertChannel,
    AlertDelivery,
    AlertEvent,
    Job,
    Repository,
    Step,
    Workflow,
    WorkflowRun,
)
from cipulse.models.log import JobLog
from cipulse.settings import Settings, SettingsError, load_settings
from tests.test_email import free_port, wait_for

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
SECRET = "whsec-test-0123"


# --- factories ---------------------------------------------------------------------------


class History:
    """GitHub rows as the sync stores them: one repository, workflows, runs, jobs, steps."""

    def __init__(self, db: Database, *, repo: str = "octo-org/hello-world") -> None:
        self.db = db
        self.next_id = 1000
        owner, name = repo.split("/")
        with db.write() as uow:
            row = Repository(
                owner=owner,
                name=name,
                full_name=repo,
                default_branch="main",
                html_url=f"https://github.com/{repo}",
                tracked=True,
            )
            uow.session.add(row)
            uow.session.flush()
            self.repo_id = row.id
        self.workflows: dict[str, int] = {}

    def workflow(self, name: str) -> int:
        if name not in self.workflows:
            with self.db.write() as uow:
                wf = Workflow(
                    github_id=len(self.workflows) + 1, repository_id=self.repo_id, name=name
                )
                uow.session.add(wf)
                uow.session.flush()
                self.workflows[name] = wf.id
        return self.workflows[name]

    def run(
        self,
        conclusion: str,
        *,
        at: datetime,
        workflow: str = "CI",
        branch: str = "main",
        sha: str | None = None,
        actor: str = "alice",
        jobs: dict[str, str] | None = None,
        attempt: int = 1,
        github_id: int | None = None,
        minutes: float = 5,
        error_lines: dict[str, str] | None = None,
    ) -> int:
        self.next_id += 1
        gh = github_id or self.next_id
        sha = sha or f"{self.next_id * 7919:040x}"
        jobs = jobs if jobs is not None else {"build": "success", "test": conclusion}
        with self.db.write() as uow:
            run = WorkflowRun(
                github_id=gh,
                run_attempt=attempt,
                repository_id=self.repo_id,
                workflow_id=self.workflow(workflow),
                name=workflow,
                run_number=gh - 1000,
                event="push",
                status="completed",
                conclusion=conclusion,
                head_branch=branch,
                head_sha=sha,
                actor_login=actor,
                html_url=f"https://github.com/octo-org/hello-world/actions/runs/{gh}",
                created_at=at,
                run_started_at=at,
                updated_at=at + timedelta(minutes=minutes),
                jobs_synced_for="completed",
            )
            uow.session.add(run)
            uow.session.flush()
            for n, (name, result) in enumerate(jobs.items()):
                job = Job(
                    github_id=gh * 100 + attempt * 10 + n,
                    run_id=run.id,
                    run_attempt=attempt,
                    name=name,
                    workflow_name=workflow,
                    status="completed",
                    conclusion=result,
                    head_sha=sha,
                    head_branch=branch,
                    html_url=f"https://github.com/octo-org/hello-world/actions/runs/{gh}/job/{n}",
                    started_at=at,
                    completed_at=at + timedelta(minutes=minutes),
                )
                uow.session.add(job)
                uow.session.flush()
                if error_lines and name in error_lines:
                    uow.session.add(
                        JobLog(job_id=job.id, state="stored", first_error_text=error_lines[name])
                    )
                uow.session.add(
                    Step(
                        job_id=job.id,
                        number=1,
                        name=f"Run {name}",
                        status="completed",
                        conclusion=result,
                    )
                )
            return run.id


def configure(db: Database, settings: Settings, config: dict[str, Any]) -> None:
    with db.write() as uow:
        alert_config.apply(uow.session, config=AlertsFile.model_validate(config), now=T0)


def run_evaluator(db: Database, settings: Settings, now: datetime) -> evaluate.Result:
    with db.write() as uow:
        return evaluate.evaluate(uow.session, settings=settings, now=now, holder="test:1")


def events(db: Database) -> list[tuple[str, str]]:
    with db.read() as s:
        return [(e.kind, e.subject) for e in s.scalars(select(AlertEvent).order_by(AlertEvent.id))]


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    yield database
    database.dispose()


NULL_CONFIG = {
    "channels": [{"name": "dev", "kind": "null"}],
    "rules": [{"name": "main", "kind": "branch", "remind_after_minutes": 0}],
}


# --- the state machine on a simulated history ----------------------------------------------


def test_simulated_history_gives_one_broken_and_one_fixed_per_incident(
    db: Database, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(alert_lookback_hours=24 * 400)
    configure(db, settings, NULL_CONFIG)
    history = History(db)
    pattern = "SSFFFSSSFSSFFFFSS"  # three incidents
    for i, letter in enumerate(pattern):
        history.run("success" if letter == "S" else "failure", at=T0 + timedelta(hours=i))
        if i % 4 == 0:  # the evaluator runs now and then, not after every run
            run_evaluator(db, settings, T0 + timedelta(hours=i, minutes=30))
    history.run("cancelled", at=T0 + timedelta(hours=30))  # says nothing
    run_evaluator(db, settings, T0 + timedelta(days=2))
    subject = "octo-org/hello-world@main"
    assert events(db) == [("broken", subject), ("fixed", subject)] * 3
    # Evaluating again finds nothing new.
    assert run_evaluator(db, settings, T0 + timedelta(days=2)).events == 0
    with db.read() as s:
        deliveries = s.scalars(select(AlertDelivery)).all()
        assert len(deliveries) == 6  # one per alert on the one channel
        first, fixed = s.scalars(select(AlertEvent).order_by(AlertEvent.id).limit(2)).all()
    assert first.title == ("[cipulse] octo-org/hello-world: main is broken (CI failed)")
    assert first.context["failing"][0]["name"] == "test"
    assert first.context["failing"][0]["step"] == "Run test"
    assert first.context["author"] == "alice"
    assert fixed.context["broken_for"] == 3 * 3600  # failed at 2 h, green again at 5 h
    assert "after 3 h" in fixed.title


def test_other_branches_late_runs_and_two_workflows(
    db: Database, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(alert_lookback_hours=24 * 400)
    configure(db, settings, NULL_CONFIG)
    history = History(db)
    history.run("success", at=T0)
    history.run("failure", at=T0 + timedelta(hours=1), branch="feature/x")  # not tracked
    history.run("failure", at=T0 + timedelta(hours=2), workflow="Docs")
    history.run("failure", at=T0 + timedelta(hours=3), workflow="CI")
    run_evaluator(db, settings, T0 + timedelta(hours=4))
    assert [k for k, _ in events(db)] == ["broken"]  # one alert while main stays broken
    history.run("success", at=T0 + timedelta(hours=5), workflow="CI")
    # An older run synced late changes nothing: Docs' newest run is still the failure.
    history.run("success", at=T0 + timedelta(hours=1, minutes=30), workflow="Docs")
    run_evaluator(db, settings, T0 + timedelta(hours=6))
    assert [k for k, _ in events(db)] == ["broken"]
    history.run("success", at=T0 + timedelta(hours=7), workflow="Docs")
    run_evaluator(db, settings, T0 + timedelta(hours=8))
    assert [k for k, _ in events(db)] == ["broken", "fixed"]


def test_history_older_than_the_lookback_builds_state_without_alerting(
    db: Database, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(alert_lookback_hours=24)
    configure(db, settings, NULL_CONFIG)
    history = History(db)
    history.run("failure", at=T0 - timedelta(days=10))  # never looked at: days too old
    history.run("success", at=T0)
    history.run("failure", at=T0 + timedelta(hours=1))  # broken 2 days ago: no alert now
    now = T0 + timedelta(days=2)
    run_evaluator(db, settings, now)
    assert events(db) == []
    history.run("success", at=now - timedelta(minutes=30))  # fixed now: that is news
    run_evaluator(db, settings, now)
    assert [k for k, _ in events(db)] == ["fixed"]
    with db.read() as s:
        fixed = s.scalars(select(AlertEvent)).one()
    # broken at the end of the failed run (T0 + 1 h 5 min), fixed at its end (now - 25 min)
    assert fixed.context["broken_for"] == timedelta(days=2, minutes=-90).total_seconds()


def test_reminders_at_most_every_remind_after(
    db: Database, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(alert_lookback_hours=24 * 400)
    configure(
        db,
        settings,
        {
            "channels": [{"name": "dev", "kind": "null"}],
            "rules": [{"name": "main", "kind": "branch", "remind_after_minutes": 60}],
        },
    )
    history = History(db)
    history.run("failure", at=T0)
    broken_at = T0 + timedelta(minutes=10)
    run_evaluator(db, settings, broken_at)
    for minutes in (20, 40, 69, 71, 100, 131, 140):
        history.run("failure", at=T0 + timedelta(minutes=minutes - 5))
        run_evaluator(db, settings, broken_at + timedelta(minutes=minutes))
    # broken at +0, reminders at +71 and +131 (each at least 60 min after the one before)
    assert [k for k, _ in events(db)] == ["broken", "reminder", "reminder"]
    history.run("success", at=T0 + timedelta(minutes=150))
    run_evaluator(db, settings, broken_at + timedelta(minutes=500))
    assert [k for k, _ in events(db)][-1] == "fixed"
    assert [k for k, _ in events(db)].count("reminder") == 2  # none once fixed


def test_failure_rate_flaky_job_and_duration_rules(
    db: Database, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(alert_lookback_hours=24 * 400)
    configure(
        db,
        settings,
        {
            "channels": [{"name": "dev", "kind": "null"}],
            "rules": [
                {
                    "name": "rate",
                    "kind": "failure_rate",
                    "params": {"last_runs": 10, "min_runs": 5, "threshold_pct": 30},
                },
                {"name": "flaky", "kind": "flaky_job"},
                {
                    "name": "slow",
                    "kind": "duration",
                    "params": {"period_days": 1, "threshold_pct": 50, "min_runs": 3},
                },
            ],
        },
    )
    history = History(db)
    # Day 0: five 5-minute runs, "test" passing. Day 1: 12-minute runs, "test" failing 2 of 5.
    for i in range(5):
        history.run("success", at=T0 + timedelta(hours=i), minutes=5)
    for i, result in enumerate(["success", "failure", "success", "failure", "success"]):
        history.run(
            "success",
            at=T0 + timedelta(days=1, hours=i),
            minutes=12,
            jobs={"build": "success", "test": result},
        )
    # A re-run: attempt 1 failed, attempt 2 passed, same run id and commit.
    history.run(
        "failure", at=T0 + timedelta(days=1, hours=6), github_id=7777, sha="f" * 40, minutes=12
    )
    history.run(
        "success",
        at=T0 + timedelta(days=1, hours=6),
        github_id=7777,
        attempt=2,
        sha="f" * 40,
        minutes=12,
    )
    run_evaluator(db, settings, T0 + timedelta(days=1, hours=8))
    by_rule: dict[str, list[str]] = {}
    with db.read() as s:
        for e in s.scalars(select(AlertEvent).order_by(AlertEvent.id)):
            by_rule.setdefault(e.rule_name, []).append(e.kind)
            if e.rule_name == "slow":
                assert "+140 %" in e.title  # 5 min -> 12 min
    assert by_rule["rate"] == ["broken"]  # 3 failures in the last 10 runs of "test"
    assert by_rule["flaky"] == ["flaky"]  # "test" failed, then passed on the re-run
    assert by_rule["slow"] == ["broken"]
    # The same job flaky again soon after is not new.
    history.run("failure", at=T0 + timedelta(days=1, hours=7), github_id=8888, minutes=12)
    history.run(
        "success", at=T0 + timedelta(days=1, hours=7), github_id=8888, attempt=2, minutes=12
    )
    run_evaluator(db, settings, T0 + timedelta(days=1, hours=9))
    with db.read() as s:
        kinds = s.scalars(select(AlertEvent.kind).where(AlertEvent.rule_name == "flaky")).all()
    assert kinds == ["flaky"]


# --- channels, end to end --------------------------------------------------------------------


class Receiver:
    """A local HTTP server standing in for Slack, Teams and a webhook consumer."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.answers: dict[str, list[int]] = {}  # path -> statuses to answer, then 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                queue = receiver.answers.get(self.path, [])
                code = queue.pop(0) if queue else 200
                if code == 200:
                    receiver.requests.append((self.path, dict(self.headers.items()), body))
                self.send_response(code)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok" if code == 200 else b"no_service")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def at(self, path: str) -> list[tuple[dict[str, str], Any]]:
        return [(h, json.loads(b)) for p, h, b in self.requests if p == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))  # type: ignore[arg-type]
        return "250 OK"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


def alert_settings(make_settings: Callable[..., Settings], path: Path, port: int) -> Settings:
    return make_settings(
        alerts_file=path,
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_security="none",
        smtp_from="cipulse@example.org",
        base_url="http://ci.example.org",
        alert_evaluate_seconds=0.2,
        mail_retry_seconds=0.2,
    )


def settle() -> None:
    time.sleep(0.6)  # a second (wrong) alert would have arrived by now


def test_break_main_one_alert_per_channel_then_one_recovery(
    make_settings: Callable[..., Settings],
    db_url: str,
    tmp_path: Path,
    receiver: Receiver,
    smtp: tuple[Inbox, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CIPULSE_TEST_HOOK_SECRET", SECRET)
    inbox, port = smtp
    path = tmp_path / "alerts.yaml"
    path.write_text(
        f"""
channels:
  - name: team-mail
    kind: email
    config: {{to: [team@example.org]}}
  - name: slack
    kind: slack
    config: {{url: "{receiver.url}/slack"}}
  - name: teams
    kind: teams
    config: {{url: "{receiver.url}/teams"}}
  - name: hook
    kind: webhook
    config: {{url: "{receiver.url}/hook", secret: "env:CIPULSE_TEST_HOOK_SECRET"}}
rules:
  - name: main broken
    kind: branch
    remind_after_minutes: 0
"""
    )
    settings = alert_settings(make_settings, path, port)
    db = Database(db_url)
    now = datetime.now(UTC)
    with TestClient(create_app(settings)) as client:
        history = History(db)
        history.run("success", at=now - timedelta(hours=3))
        history.run(
            "failure",
            at=now - timedelta(hours=2),
            actor="bob",
            sha="abc1234" + "0" * 33,
            error_lines={"test": "E   AssertionError: expected 200, got 500"},
        )
        history.run("failure", at=now - timedelta(hours=1))  # still broken: no second alert

        def all_four(count: int) -> Callable[[], bool]:
            return lambda: (
                len(inbox.messages) >= count
                and all(len(receiver.at(p)) >= count for p in ("/slack", "/teams", "/hook"))
            )

        assert wait_for(all_four(1))
        settle()
        assert len(inbox.messages) == 1
        assert [len(receiver.at(p)) for p in ("/slack", "/teams", "/hook")] == [1, 1, 1]

        history.run("success", at=now - timedelta(minutes=30))
        assert wait_for(all_four(2))
        settle()
        assert len(inbox.messages) == 2
        assert [len(receiver.at(p)) for p in ("/slack", "/teams", "/hook")] == [2, 2, 2]
        log = client.get("/api/alerts/history").json()

    broken_mail, fixed_mail = inbox.messages
    assert broken_mail["Subject"] == ("[cipulse] octo-org/hello-world: main is broken (CI failed)")
    text = broken_mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "bob" in text and "abc1234" in text and "test" in text
    assert "E   AssertionError: expected 200, got 500" in text  # from the stored job log
    assert "https://github.com/octo-org/hello-world/actions/runs/" in text
    html = broken_mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "Failing jobs" in html
    assert "fixed after 1 h 30 min" in fixed_mail["Subject"]

    headers, body = receiver.at("/hook")[0]
    raw = next(b for p, _, b in receiver.requests if p == "/hook")
    stamp = headers["X-Cipulse-Timestamp"]
    expected = hmac.new(SECRET.encode(), stamp.encode() + b"." + raw, hashlib.sha256)
    assert headers["X-Cipulse-Signature-256"] == "sha256=" + expected.hexdigest()
    assert headers["X-Cipulse-Event"] == "alert.broken"
    assert body["event"] == "broken" and body["author"] == "bob"
    _, slack = receiver.at("/slack")[0]
    assert slack["text"].startswith("[cipulse]") and slack["blocks"][0]["type"] == "header"
    _, teams = receiver.at("/teams")[1]
    card = teams["attachments"][0]["content"]
    assert card["type"] == "AdaptiveCard" and "fixed" in card["body"][0]["text"]

    assert [e["kind"] for e in log] == ["fixed", "broken"]
    for event in log:
        assert sorted(d["channel"] for d in event["deliveries"]) == [
            "hook",
            "slack",
            "team-mail",
            "teams",
        ]
        assert {d["state"] for d in event["deliveries"]} == {"sent"}
    db.dispose()


def test_permanent_error_disables_the_channel_temporary_ones_retry(
    make_settings: Callable[..., Settings],
    db_url: str,
    tmp_path: Path,
    receiver: Receiver,
) -> None:
    receiver.answers["/gone"] = [404]
    receiver.answers["/busy"] = [503, 500]
    path = tmp_path / "alerts.json"
    path.write_text(
        json.dumps(
            {
                "channels": [
                    {"name": "gone", "kind": "slack", "config": {"url": f"{receiver.url}/gone"}},
                    {"name": "busy", "kind": "webhook", "config": {"url": f"{receiver.url}/busy"}},
                ],
                "rules": [{"name": "main", "kind": "branch"}],
            }
        )
    )
    settings = make_settings(alerts_file=path, alert_evaluate_seconds=0.2, mail_retry_seconds=0.1)
    db = Database(db_url)
    now = datetime.now(UTC)
    with TestClient(create_app(settings)) as client:
        History(db).run("failure", at=now - timedelta(minutes=10))
        assert wait_for(lambda: len(receiver.at("/busy")) == 1)

        def gone_disabled() -> bool:
            channels = {c["name"]: c for c in client.get("/api/alerts/channels").json()}
            return not channels["gone"]["enabled"]

        assert wait_for(gone_disabled)
        channels = {c["name"]: c for c in client.get("/api/alerts/channels").json()}
        assert "HTTP 404" in channels["gone"]["disabled_reason"]
        assert (
            channels["gone"]["target"]
            == f"Slack webhook http://127.0.0.1:{receiver.url.rsplit(':', 1)[1]}/…"
        )
        assert "/gone" not in json.dumps(channels)  # the webhook URL is the secret
        (event,) = client.get("/api/alerts/history").json()
        states = {d["channel"]: (d["state"], d["attempts"]) for d in event["deliveries"]}
        assert states == {"gone": ("failed", 1), "busy": ("sent", 3)}

        # The page says so.
        page = client.get("/alerts").text
        assert "Switched off" in page and "HTTP 404" in page

        # Re-enabled, a test alert goes through.
        gone_id = channels["gone"]["id"]
        assert client.post(f"/api/alerts/channels/{gone_id}/enable").json()["enabled"]
        test = client.post(f"/api/alerts/channels/{gone_id}/test")
        assert test.status_code == 202
        delivery = test.json()["delivery_id"]
        assert wait_for(
            lambda: client.get(f"/api/alerts/deliveries/{delivery}").json()["state"] == "sent"
        )
        assert receiver.at("/gone")[0][1]["text"] == "[cipulse] test alert to gone"
        # The alert it missed can be sent again from the history.
        failed = next(d for d in event["deliveries"] if d["channel"] == "gone")
        retried = client.post(f"/api/alerts/deliveries/{failed['id']}/retry")
        assert retried.status_code == 200 and retried.json()["state"] == "pending"
        assert wait_for(lambda: len(receiver.at("/gone")) == 2)
        assert receiver.at("/gone")[1][1]["text"].endswith("main is broken (CI failed)")
        assert wait_for(
            lambda: client.get(f"/api/alerts/deliveries/{failed['id']}").json()["state"] == "sent"
        )
        again = client.post(f"/api/alerts/deliveries/{failed['id']}/retry")
        assert again.status_code == 409 and "sent" in again.json()["detail"]
    db.dispose()


def test_admin_token_guards_changes_and_bad_input_is_refused(
    make_settings: Callable[..., Settings], receiver: Receiver
) -> None:
    settings = make_settings(admin_token="s3cret", alert_evaluate_seconds=60)
    auth = {"Authorization": "Bearer s3cret"}
    with TestClient(create_app(settings)) as client:
        new = {"name": "hooks", "kind": "webhook", "config": {"url": f"{receiver.url}/h"}}
        assert client.post("/api/alerts/channels", json=new).status_code == 401
        created = client.post("/api/alerts/channels", json=new, headers=auth)
        assert created.status_code == 201
        assert "/h" not in created.text
        assert client.post("/api/alerts/channels", json=new, headers=auth).status_code == 409
        bad = client.post(
            "/api/alerts/channels",
            json={"name": "x", "kind": "slack", "config": {"url": "ftp://nope"}},
            headers=auth,
        )
        assert bad.status_code == 422 and "http(s) URL" in bad.json()["message"]
        bad_rule = client.post(
            "/api/alerts/rules",
            json={"name": "r", "kind": "failure_rate", "params": {"threshold_pct": 250}},
            headers=auth,
        )
        assert bad_rule.status_code == 422 and "threshold_pct" in bad_rule.json()["message"]
        unknown = client.post(
            "/api/alerts/rules",
            json={"name": "r", "kind": "branch", "channels": ["nope"]},
            headers=auth,
        )
        assert unknown.status_code == 409
        rules = client.get("/api/alerts/rules").json()
        default = next(r for r in rules if r["name"] == "default branches")
        assert default["source"] == "config"
        edit = client.put(
            f"/api/alerts/rules/{default['id']}",
            json={"name": "x", "kind": "branch"},
            headers=auth,
        )
        assert edit.status_code == 409 and "alerts file" in edit.json()["detail"]
        off = client.post(f"/api/alerts/rules/{default['id']}/disable", headers=auth)
        assert off.json()["enabled"] is False
        rule = client.post(
            "/api/alerts/rules",
            json={
                "name": "release",
                "kind": "branch",
                "params": {"branches": ["release"]},
                "channels": ["hooks"],
            },
            headers=auth,
        )
        assert rule.status_code == 201
        assert client.delete(f"/api/alerts/rules/{rule.json()['id']}").status_code == 401
        assert (
            client.delete(f"/api/alerts/rules/{rule.json()['id']}", headers=auth).status_code == 204
        )
        assert client.get("/api/alerts/deliveries/999").status_code == 404


def test_a_bad_alerts_file_stops_start_up_with_a_clear_message(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    path = tmp_path / "alerts.yaml"
    path.write_text("channels:\n  - name: s\n    kind: slack\n    config: {}\nrules: []\n")
    with pytest.raises(alert_config.ConfigError, match=r"channels\.0.*url"):
        alert_config.load_file(path)
    path.write_text("rules:\n  - name: r\n    kind: branch\n    channels: [nowhere]\n")
    with pytest.raises(alert_config.ConfigError, match="unknown channel 'nowhere'"):
        alert_config.load_file(path)
    path.write_text("channels: [\n")
    with pytest.raises(SettingsError, match=r"CIPULSE_ALERTS_FILE: .*not YAML or JSON"):
        load_settings(database_url="sqlite://", alerts_file=path)


def test_config_rows_follow_the_file(db: Database, make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    configure(db, settings, NULL_CONFIG)
    configure(db, settings, {"channels": [], "rules": []})
    with db.read() as s:
        channel = s.scalars(select(AlertChannel)).one()
    assert not channel.enabled and channel.disabled_reason == alert_config.REMOVED
    configure(db, settings, NULL_CONFIG)
    with db.read() as s:
        assert s.scalars(select(AlertChannel)).one().enabled


def test_new_flaky_test_from_junit_reports(
    db: Database, make_settings: Callable[..., Settings]
) -> None:
    from cipulse.models.testreport import TestCase, TestReport, TestResult

    settings = make_settings(alert_lookback_hours=24)
    configure(
        db,
        settings,
        {
            "channels": [{"name": "dev", "kind": "null"}],
            "rules": [{"name": "flaky tests", "kind": "flaky_test"}],
        },
    )
    now = datetime.now(UTC)

    def report(n: int, at: datetime, *, flaky: bool) -> None:
        with db.write() as uow:
            s = uow.session
            rep = TestReport(dedup_key=f"r{n}", project="octo", source="api", reported_at=at)
            s.add(rep)
            case = s.scalar(select(TestCase).where(TestCase.key == "k1"))
            if case is None:
                case = TestCase(
                    key="k1",
                    project="octo",
                    classname="tests.test_api",
                    name="test_login",
                    first_seen_at=at,
                    last_seen_at=at,
                    last_outcome="passed",
                )
                s.add(case)
            s.flush()
            s.add(
                TestResult(
                    report_id=rep.id,
                    test_case_id=case.id,
                    outcome="passed",
                    flaky=flaky,
                    attempts=2 if flaky else 1,
                    reported_at=at,
                )
            )

    report(1, now - timedelta(hours=2), flaky=False)
    run_evaluator(db, settings, now)
    assert events(db) == []
    report(2, now - timedelta(hours=1), flaky=True)
    run_evaluator(db, settings, now + timedelta(minutes=6))  # checked every 5 minutes
    assert events(db) == [("flaky", "octo · tests.test_api.test_login")]
    report(3, now - timedelta(minutes=30), flaky=True)  # flaky again soon after: not new
    run_evaluator(db, settings, now + timedelta(minutes=12))
    assert len(events(db)) == 1
    with db.read() as s:
        event = s.scalars(select(AlertEvent)).one()
    assert event.title == "[cipulse] new flaky test: tests.test_api.test_login"
    assert "passed after a failing retry in 1 report(s)" in event.context["summary"]


# --- email with STARTTLS and a login, as with Gmail -----------------------------------------


@pytest.fixture
def tls_smtp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Inbox, int]]:
    """aiosmtpd requiring STARTTLS, then a login; its self-signed certificate is trusted through
    ``SSL_CERT_FILE`` like a private CA would be."""
    import ssl
    import subprocess

    from aiosmtpd.smtp import AuthResult, LoginPassword

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            b"bot@example.org",
            b"app-password",
        )
        return AuthResult(success=ok, handled=False)  # aiosmtpd answers 535 itself

    inbox = Inbox()
    port = free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        auth_required=True,
        authenticator=authenticator,
        auth_exclude_mechanism=["LOGIN"],  # PLAIN only, as Gmail's first choice
    )
    controller.start()
    yield inbox, port
    controller.stop()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # no database involved
@pytest.mark.filterwarnings("ignore::ResourceWarning")  # see the end of the test
def test_email_over_starttls_with_a_login_and_a_refused_login(
    make_settings: Callable[..., Settings], tls_smtp: tuple[Inbox, int]
) -> None:
    import asyncio

    from cipulse.alerts.channels.base import Message, PermanentError
    from cipulse.alerts.channels.email import EmailChannel, server_for

    inbox, port = tls_smtp
    settings = make_settings(
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_security="starttls",
        smtp_username="bot@example.org",
        smtp_password="app-password",
        smtp_from="bot@example.org",
    )
    message = Message(
        event_id=1, delivery_id=1, kind="test", subject="[cipulse] hi", text="hi", html="<p>hi</p>"
    )
    channel = EmailChannel(
        to=["team@example.org"], server=server_for({}, settings), base_url=settings.base_url
    )
    asyncio.run(channel.send(message))
    assert [m["Subject"] for m in inbox.messages] == ["[cipulse] hi"]

    wrong = server_for({"password": "not-it"}, settings)
    with pytest.raises(PermanentError, match="SMTPAuthenticationError") as refused:
        asyncio.run(EmailChannel(to=["team@example.org"], server=wrong, base_url="").send(message))
    assert refused.value.disable and "not-it" not in str(refused.value)
    plain = server_for({"security": "none"}, settings)  # the server insists on STARTTLS first
    with pytest.raises(PermanentError):
        asyncio.run(EmailChannel(to=["team@example.org"], server=plain, base_url="").send(message))
    assert len(inbox.messages) == 1
    # One socket of these refused TLS sessions is left to the garbage collector inside
    # aiosmtplib/asyncio even though the channel closes its client; collect it here, quietly,
    # so its ResourceWarning does not land on whichever test runs next.
    import gc
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
