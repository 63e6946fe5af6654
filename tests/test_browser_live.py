"""GitHub's live updates in headless Chromium against a real uvicorn server.

What only a browser can show: signed ``workflow_run``/``workflow_job`` deliveries posted to the
server reach the open dashboard's "Running now" panel over server-sent events, each within a
couple of seconds and without a reload; a card updated live reads exactly like the server's own
rendering of it; the webhooks page shows a failed delivery's error and replays it with the
admin token typed into the page. Screenshots land in ``test-artifacts/``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Locator, Page, Route, expect

from cipulse.app import create_app
from cipulse.settings import Settings
from tests import test_browser as shared
from tests.support import live_server
from tests.test_deliveries_page import JOB_DONE, put
from tests.test_live_panel import JOB_ID, REPO, RUN_ID, RUN_URL, job_event, run_event
from tests.test_webhooks import SECRET, sign

# The browser, page and screenshot helpers of the dashboard's browser tests, reused as they are.
browser = shared.browser
page = shared.page
console_errors = shared.console_errors
shot = shared.shot

pytestmark = [
    pytest.mark.browser,
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]

CHANGE_MS = 2_000  # a delivery shows on the open page within this, or the test fails
FADE_MS = 10_000  # a finished run shows its conclusion for 5 s, then fades out
ADMIN = "s3cret-admin"


@pytest.fixture
def make_settings(
    make_settings: Callable[..., Settings], request: pytest.FixtureRequest
) -> Callable[..., Settings]:
    """The shared settings factory, plus any settings a test asks for by indirect parameter."""
    preset: dict[str, object] = getattr(request, "param", {})

    def build(**overrides: object) -> Settings:
        return make_settings(**{**preset, **overrides})

    return build


@pytest.fixture
def server(make_settings: Callable[..., Settings]) -> Iterator[str]:
    """The whole app on a real socket, taking signed webhook deliveries."""
    with live_server(create_app(make_settings(webhook_secret=SECRET))) as base:
        yield base


def post_delivery(base: str, event: str, data: dict[str, Any]) -> None:
    raw = json.dumps(data).encode()
    response = httpx.post(
        f"{base}/webhooks/github",
        content=raw,
        headers={
            "Content-Type": "application/json",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-Hub-Signature-256": sign(raw),
        },
        timeout=10,
    )
    assert response.status_code == 202, response.text


def still(page: Page, name: str) -> None:
    """A screenshot with highlights played to their end and pulses at rest."""
    shared.ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(
        path=str(shared.ARTIFACTS / f"{name}.png"), full_page=True, animations="disabled"
    )


def card_parts(card: Locator) -> dict[str, Any]:
    """What a card says, part by part, as a person reads it."""
    return card.evaluate(
        """card => ({
          head: card.querySelector('.live-run-head').innerText,
          progress: card.querySelector('.live-progress').innerText,
          bar: card.querySelector('.live-bar span').style.width,
          jobs: [...card.querySelectorAll('.live-job')].map(row => ({
            id: row.dataset.jobId, state: row.dataset.state, text: row.innerText,
            links: [...row.querySelectorAll('a')].map(a => a.href),
          })),
          tone: card.dataset.tone,
          failing: card.hasAttribute('data-failing'),
        })"""
    )


class Stopwatch:
    """How long each change took to show, kept for the report (asserted only by the waits)."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}

    def post(self, base: str, event: str, data: dict[str, Any], name: str) -> Callable[[], None]:
        started = time.monotonic()
        post_delivery(base, event, data)

        def seen() -> None:
            self.times[name] = round(time.monotonic() - started, 3)

        return seen


def test_running_now_follows_a_job_without_reload(server: str, page: Page) -> None:
    shared.seed(server)  # a week of history, so the KPIs and chart are there too
    page.goto(f"{server}/?minutes=10080")
    shared.wait_until_live(page)  # the WebSocket and the event stream are both open
    page.evaluate("window.__loadedOnce = true")
    panel = page.locator("#live-panel")
    expect(panel).to_be_hidden()  # nothing runs, no repository known yet
    watch = Stopwatch()

    seen = watch.post(server, "workflow_run", run_event("in_progress"), "run in_progress")
    card = page.locator(f'.live-run[data-run-id="{RUN_ID}"]')
    expect(card.locator(".live-run-head .live-badge")).to_have_text(
        "in progress", timeout=CHANGE_MS
    )
    seen()
    expect(panel).to_be_visible()
    expect(card.locator(".live-progress-text")).to_have_text("No job has started yet")
    expect(card.locator(".live-repo")).to_have_text(REPO)
    # What the event leaves out comes from /api/runs/in-progress right after.
    expect(card.locator(".live-branch")).to_have_text("main", timeout=CHANGE_MS)
    expect(card.locator("a.live-run-link")).to_have_attribute("href", RUN_URL)
    expect(page.locator("[data-live-count]")).to_have_text("1 run in progress")

    row = card.locator(f'.live-job[data-job-id="{JOB_ID}"]')
    seen = watch.post(server, "workflow_job", job_event("queued"), "job queued")
    expect(row.locator(".live-badge")).to_have_text("queued", timeout=CHANGE_MS)
    seen()
    expect(row.locator(".live-job-note")).to_have_text("Waiting for a runner")
    expect(card.locator(".live-progress-text")).to_have_text("0 of 1 job finished")

    running = job_event("in_progress")
    steps = [s["name"] for s in running["workflow_job"]["steps"]]
    seen = watch.post(server, "workflow_job", running, "job in_progress")
    expect(row.locator(".live-badge")).to_have_text("in progress", timeout=CHANGE_MS)
    seen()
    expect(row.locator(".live-job-note")).to_have_text(f"Step 3 of 9: {steps[2]}")
    expect(row.locator(".live-steps li")).to_have_count(9)
    expect(row.locator('.live-steps li[data-state="in_progress"]')).to_contain_text(steps[2])
    pulse = "el => getComputedStyle(el, '::before').animationName"
    assert row.locator(".live-badge").evaluate(pulse) == "live-pulse"  # the running dot breathes
    still(page, "live-running-light")
    page.locator("[data-theme-toggle]").click()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    still(page, "live-running-dark")
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_function("document.documentElement.scrollWidth <= 390", timeout=2000)
    still(page, "live-running-phone-dark")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.locator("[data-theme-toggle]").click()

    seen = watch.post(server, "workflow_job", job_event("completed"), "job completed")
    expect(row.locator(".live-badge")).to_have_text("success", timeout=CHANGE_MS)
    seen()
    expect(row.locator(".live-job-note")).to_have_text("Took 20s")
    expect(row.locator(".live-steps")).to_have_count(0)
    expect(card.locator(".live-progress-text")).to_have_text("1 of 1 job finished")
    assert page.evaluate("window.__loadedOnce") is True, "the page was reloaded"

    # The script draws a card exactly as the server does on first paint.
    live = card_parts(card)
    page.reload()
    shared.wait_until_live(page)
    assert card_parts(card) == live
    page.evaluate("window.__loadedOnce = true")

    seen = watch.post(server, "workflow_run", run_event("completed", "success"), "run completed")
    expect(card.locator(".live-run-head .live-badge")).to_have_text("success", timeout=CHANGE_MS)
    seen()
    expect(card).to_have_attribute("data-tone", "success")
    still(page, "live-finished-light")
    expect(card).to_have_count(0, timeout=FADE_MS)
    expect(page.locator("[data-live-empty]")).to_have_text(
        "Nothing is running on GitHub right now."
    )
    expect(page.locator("[data-live-count]")).to_have_text("")
    assert page.evaluate("window.__loadedOnce") is True, "the page was reloaded"
    shared.ARTIFACTS.mkdir(exist_ok=True)
    (shared.ARTIFACTS / "live-latency.json").write_text(json.dumps(watch.times, indent=2) + "\n")


def test_a_refused_stream_is_retried(server: str, page: Page, console_errors: list[str]) -> None:
    attempts: list[str] = []

    def refuse_first(route: Route) -> None:
        attempts.append(route.request.url)
        if len(attempts) == 1:
            route.fulfill(status=503, body="restarting")
        else:
            route.continue_()

    page.route("**/api/stream", refuse_first)
    page.goto(f"{server}/")
    status = page.locator("#live-status")
    expect(status).to_have_attribute("data-state", "paused")
    expect(status).to_have_text("live updates paused, reconnecting…")
    expect(status).to_have_attribute("data-state", "live", timeout=10_000)
    assert len(attempts) == 2
    assert console_errors and all("503" in e for e in console_errors), console_errors
    console_errors.clear()

    post_delivery(server, "workflow_run", run_event("in_progress"))
    post_delivery(server, "workflow_job", job_event("in_progress"))
    card = page.locator(f'.live-run[data-run-id="{RUN_ID}"]')
    expect(card.locator(".live-steps li")).to_have_count(9, timeout=CHANGE_MS)
    expect(page.locator("[data-empty-state]")).to_be_visible()  # no run reported to /api/events
    still(page, "live-empty-dashboard-light")


@pytest.mark.parametrize("make_settings", [{"admin_token": ADMIN}], indirect=True)
def test_failed_delivery_shows_its_error_and_replays(server: str, page: Page, db_url: str) -> None:
    failed = put(db_url, JOB_DONE, state="failed", error="OperationalError: database is locked")
    post_delivery(server, "workflow_run", run_event("in_progress"))
    page.goto(f"{server}/webhooks")
    expect(page.locator("#deliveries")).to_contain_text("Deliveries are shown to admins only.")
    shot(page, "webhooks-locked-light")

    page.get_by_label("Admin token").fill(ADMIN)
    page.get_by_role("button", name="Use for this tab").click()
    row = page.locator(f'tbody.delivery[data-delivery="{failed}"]')
    expect(row.locator(".state .pill")).to_have_text("failed")
    expect(row.locator("[data-last-error]")).to_contain_text(
        "Failed after 8 attempts: OperationalError: database is locked"
    )
    expect(page.locator("tbody.delivery")).to_have_count(2)
    shot(page, "webhooks-failed-light")

    row.get_by_role("button", name="Replay").click()
    expect(page.locator("#replay-status")).to_contain_text("replayed: processed.")
    expect(row.locator(".state .pill")).to_have_text("processed")
    expect(row.locator("[data-last-error]")).to_have_count(0)
    expect(row.locator(".attempts")).to_have_text("1")
    shot(page, "webhooks-replayed-light")

    # The state filter is in the URL; the token kept for this tab loads the filtered table.
    page.get_by_role("link", name="Failed").click()
    expect(page).to_have_url(f"{server}/webhooks?state=failed")
    expect(page.locator("[data-empty-filter]")).to_have_text(
        "No failed delivery among the newest 100. Show all deliveries"
    )
    page.get_by_role("link", name="All", exact=True).click()
    expect(page.locator("tbody.delivery")).to_have_count(2)
    page.locator("[data-theme-toggle]").click()
    shot(page, "webhooks-dark")
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_function("document.documentElement.scrollWidth <= 390", timeout=2000)
    shot(page, "webhooks-phone-dark")


def test_empty_webhooks_page(server: str, page: Page) -> None:
    page.goto(f"{server}/webhooks")
    expect(page.locator("[data-empty-state] h2")).to_have_text("No webhook delivery yet")
    expect(page.locator("[data-empty-state]")).to_contain_text(f"{server}/webhooks/github")
    expect(page.locator('nav.sections a[aria-current="true"]')).to_have_text("Webhooks")
    shot(page, "webhooks-empty-light")
