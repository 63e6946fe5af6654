"""Design E's failure emails through a real SMTP server (aiosmtpd), sent after the commit.

They are now the default email alert channel with the "pushed pipelines" rule: one email when a
pipeline breaks (not one per failed run), retried while the mail server is down.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from sqlalchemy import select

from cipulse.app import create_app
from cipulse.db import Database
from cipulse.models import AlertDelivery

pytestmark = pytest.mark.smtp


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def mail_settings(make_settings, port: int, **extra: object):  # type: ignore[no-untyped-def]
    return make_settings(
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_security="none",
        smtp_from="cipulse@example.org",
        smtp_to=["team@example.org", "lead@example.org"],
        base_url="http://ci.example.org",
        **extra,
    )


def test_failed_run_sends_one_email(make_settings, smtp_server) -> None:  # type: ignore[no-untyped-def]
    inbox, port = smtp_server
    with TestClient(create_app(mail_settings(make_settings, port))) as client:
        ok = client.post("/api/events/run", json={"pipeline": "build", "status": "success"})
        assert ok.status_code == 201
        failed = client.post(
            "/api/events/run",
            json={
                "pipeline": "deploy",
                "status": "failure",
                "branch": "main",
                "commit": "0123456789abcdef",
                "triggered_by": "alice",
                "duration_sec": 95,
            },
        )
        assert failed.status_code == 201
        assert wait_for(lambda: len(inbox.messages) >= 1)
        time.sleep(0.3)  # a second (wrong) email would arrive by now
    assert len(inbox.messages) == 1
    message = inbox.messages[0]
    assert message["Subject"] == "[cipulse] deploy failed on main (01234567)"
    assert inbox.envelopes[0] == ("cipulse@example.org", ["team@example.org", "lead@example.org"])
    assert message.is_multipart()  # plain text and HTML
    body = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "alice" in body
    assert "0123456789abcdef" in body
    assert "http://ci.example.org/" in body


def test_running_then_failure_sends_once_and_duplicates_send_nothing(
    make_settings, smtp_server
) -> None:  # type: ignore[no-untyped-def]
    inbox, port = smtp_server
    with TestClient(create_app(mail_settings(make_settings, port))) as client:
        client.post("/api/events/run", json={"pipeline": "p", "status": "running", "id": "r1"})
        client.post("/api/events/run", json={"pipeline": "p", "status": "failure", "id": "r1"})
        client.post("/api/events/run", json={"pipeline": "p", "status": "failure", "id": "r1"})
        assert wait_for(lambda: len(inbox.messages) >= 1)
        time.sleep(0.3)
    assert len(inbox.messages) == 1


def test_mail_server_down_keeps_the_run_and_retries(make_settings, db_url: str) -> None:  # type: ignore[no-untyped-def]
    port = free_port()  # nothing listens here yet
    settings = mail_settings(make_settings, port, mail_retry_seconds=0.3)
    db = Database(db_url)
    inbox = Inbox()
    with TestClient(create_app(settings)) as client:
        r = client.post("/api/events/run", json={"pipeline": "nightly", "status": "failure"})
        assert r.status_code == 201

        def failed_once() -> bool:
            with db.read() as s:
                mail = s.scalars(select(AlertDelivery)).first()  # written by the evaluator
                return mail is not None and mail.attempts >= 1 and mail.state == "pending"

        assert wait_for(failed_once)
        with db.read() as s:
            mail = s.scalars(select(AlertDelivery)).one()
            assert mail.last_error  # says why, for the operator
        assert client.get("/api/runs").json()[0]["status"] == "failure"

        controller = Controller(inbox, hostname="127.0.0.1", port=port)
        controller.start()
        try:
            assert wait_for(lambda: len(inbox.messages) == 1, timeout=15)

            def marked_sent() -> bool:
                with db.read() as s:
                    return s.scalars(select(AlertDelivery)).one().state == "sent"

            assert wait_for(marked_sent)  # the history says so once the server has answered
        finally:
            controller.stop()
    with db.read() as s:
        mail = s.scalars(select(AlertDelivery)).one()
        assert mail.state == "sent"
        assert mail.sent_at is not None
    db.dispose()


def test_password_never_in_error(make_settings, db_url: str) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    settings = mail_settings(
        make_settings, port, smtp_username="bot", smtp_password="hunter2-secret"
    )
    db = Database(db_url)
    with TestClient(create_app(settings)) as client:
        client.post("/api/events/run", json={"pipeline": "p", "status": "failure"})

        def errored() -> bool:
            with db.read() as s:
                mail = s.scalars(select(AlertDelivery)).first()
                return mail is not None and mail.last_error is not None

        assert wait_for(errored)
        health = client.get("/health").json()
        assert health["components"]["email"] == {"enabled": True, "pending": 1}
        assert "hunter2" not in client.get("/health").text
    with db.read() as s:
        assert "hunter2" not in (s.scalars(select(AlertDelivery)).one().last_error or "")
    db.dispose()
