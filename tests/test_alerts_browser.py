"""The alert email as a mail client shows it, and the alerts page, in headless Chromium.

A real server with a real SMTP server (aiosmtpd): main breaks, the HTML mail that arrives is
rendered in the browser and screenshotted (``test-artifacts/alerts-mail-*.png``); then the alerts
page shows the incident, the history with each delivery, a switched-off channel with its reason,
and "Send test alert" reports the result. Light, dark and phone screenshots for a human look.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from cipulse.db import Database
from cipulse.settings import Settings
from tests import test_browser as shared
from tests.test_alerts import History, Inbox, Receiver
from tests.test_email import wait_for

browser = shared.browser
console_errors = shared.console_errors
page = shared.page
shot = shared.shot

pytestmark = [
    pytest.mark.browser,
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    from aiosmtpd.controller import Controller

    from tests.test_email import free_port

    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


@pytest.fixture
def make_settings(
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    smtp: tuple[Inbox, int],
    receiver: Receiver,
) -> Callable[..., Settings]:
    receiver.answers["/revoked"] = [404]
    path = tmp_path / "alerts.json"
    path.write_text(
        json.dumps(
            {
                "channels": [
                    {"name": "team-mail", "kind": "email", "config": {"to": ["team@example.org"]}},
                    {
                        "name": "old-slack",
                        "kind": "slack",
                        "config": {"url": f"{receiver.url}/revoked"},
                    },
                    {"name": "dev-null", "kind": "null"},
                ],
                "rules": [{"name": "main broken", "kind": "branch"}],
            }
        )
    )

    def build(**overrides: object) -> Settings:
        return make_settings(
            alerts_file=path,
            smtp_host="127.0.0.1",
            smtp_port=smtp[1],
            smtp_security="none",
            smtp_from="cipulse@example.org",
            base_url="http://ci.example.org",
            alert_evaluate_seconds=0.2,
            **overrides,
        )

    return build


server = shared.server


def test_alert_mail_in_a_browser_and_the_alerts_page(
    server: str, page: Page, db_url: str, smtp: tuple[Inbox, int]
) -> None:
    inbox, _ = smtp
    db = Database(db_url)
    now = datetime.now(UTC)
    history = History(db)
    history.run("success", at=now - timedelta(hours=5), actor="alice")
    history.run(
        "failure",
        at=now - timedelta(hours=3),
        actor="dependabot[bot]",
        sha="9fceb02d0ae598e95dc970b74767f19372d61af8",
        jobs={"build": "success", "unit tests (3.12)": "failure", "lint": "timed_out"},
        error_lines={
            "unit tests (3.12)": "FAILED tests/test_api.py::test_login - "
            "AssertionError: assert 500 == 200"
        },
    )
    assert wait_for(lambda: len(inbox.messages) == 1, timeout=20)
    history.run("success", at=now - timedelta(minutes=20), actor="alice")
    assert wait_for(lambda: len(inbox.messages) == 2, timeout=20)

    # The HTML mail, as a mail client would render it.
    for name, mail in zip(("broken", "fixed"), inbox.messages, strict=True):
        html = mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
        page.set_content(html)
        shot(page, f"alerts-mail-{name}")
    page.set_content(inbox.messages[0].get_body(("html",)).get_content())  # type: ignore[union-attr]
    expect(page.locator("h1")).to_have_text("octo-org/hello-world: main is broken")
    link = page.get_by_role("link", name="unit tests (3.12)")
    expect(link).to_have_attribute(
        "href", "https://github.com/octo-org/hello-world/actions/runs/1002/job/1"
    )
    expect(page.get_by_text("dependabot[bot]").first).to_be_visible()
    expect(page.locator("pre")).to_have_text(
        "FAILED tests/test_api.py::test_login - AssertionError: assert 500 == 200"
    )
    expect(page.get_by_text("step “Run unit tests (3.12)”")).to_be_visible()
    page.set_content(inbox.messages[1].get_body(("html",)).get_content())  # type: ignore[union-attr]
    expect(page.locator("h1")).to_have_text("octo-org/hello-world: main is fixed")
    expect(page.get_by_text("Broken for", exact=True)).to_be_visible()

    # The alerts page: the revoked Slack hook is switched off, with the reason.
    page.goto(f"{server}/alerts")
    slack = page.locator('[data-name="old-slack"]')
    expect(slack.locator("[data-disabled-reason]")).to_contain_text("HTTP 404")
    events = page.locator(".alert-event")
    expect(events).to_have_count(2)
    expect(events.first).to_have_attribute("data-kind", "fixed")
    mail_result = events.first.locator(".delivery-result", has_text="team-mail")
    expect(mail_result).to_have_attribute("data-state", "sent")
    expect(page.locator("[data-none-broken]")).to_be_visible()
    shot(page, "alerts-page-light")

    # "Send test alert" says how it went.
    null = page.locator('[data-name="dev-null"]')
    null.get_by_role("button", name="Send test alert").click()
    expect(null.locator("[data-test-result]")).to_have_text(
        "Test alert delivered to dev-null.", timeout=15_000
    )
    page.reload()
    expect(page.locator(".alert-event").first).to_have_attribute("data-kind", "test")

    # A channel and a rule added from the page.
    page.get_by_text("Add a channel").click()
    form = page.locator("#add-channel")
    form.locator("input[name=name]").fill("ops-hook")
    form.locator("select[name=kind]").select_option("webhook")
    expect(form.locator("input[name=to]")).to_be_hidden()
    form.locator("input[name=url]").fill("https://hooks.example.org/ci/s3cr3t-path")
    form.get_by_role("button", name="Add channel").click()
    added = page.locator('[data-name="ops-hook"]')
    expect(added).to_contain_text("JSON webhook https://hooks.example.org/… (unsigned)")
    assert "s3cr3t-path" not in page.content()
    page.get_by_text("Add a rule").click()
    rule_form = page.locator("#add-rule")
    rule_form.locator("input[name=name]").fill("release")
    rule_form.locator("input[name=channels]").fill("ops-hook")
    rule_form.locator("textarea[name=params]").fill('{"branches": ["release"]}')
    rule_form.get_by_role("button", name="Add rule").click()
    expect(page.locator("tr", has_text="release")).to_contain_text("branches release")
    rule_form = page.locator("#add-rule")
    page.get_by_text("Add a rule").click()
    rule_form.locator("input[name=name]").fill("bad")
    rule_form.locator("textarea[name=params]").fill('{"branches": ')
    rule_form.get_by_role("button", name="Add rule").click()
    expect(page.locator("#alerts-status")).to_contain_text("not valid JSON")

    page.emulate_media(color_scheme="dark")
    shot(page, "alerts-page-dark")
    page.set_viewport_size({"width": 390, "height": 844})
    # The page's own content fits a phone (the shared header is the navigation's concern).
    wide = page.evaluate(
        "() => [...document.querySelectorAll('#alerts-page *')].filter(e =>"
        " !e.closest('.table-wrap') && e.getBoundingClientRect().right > innerWidth + 1)"
        ".map(e => e.tagName + '.' + e.className)"
    )
    assert wide == []
    shot(page, "alerts-page-phone")
    db.dispose()
