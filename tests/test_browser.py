"""The dashboard in headless Chromium against a real uvicorn server.

What only a browser can show: the scripts run without console errors, the chart draws, and a run
posted to the API reaches the KPI cards, the table and the chart over the WebSocket without a
reload. Screenshots (light, dark, phone) land in ``test-artifacts/`` for a human look.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    Route,
    WebSocketRoute,
    expect,
    sync_playwright,
)

from cipulse.app import create_app
from cipulse.settings import Settings

# One real browser per worker is plenty; the server and the database are what vary.
pytestmark = [
    pytest.mark.browser,
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")  # Playwright's own download does not work here
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LIVE_TIMEOUT_MS = 10_000
KPIS = ("total", "success", "failure", "success_rate", "avg_duration", "last_status")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (`make chromium` installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def server(make_settings: Callable[..., Settings]) -> Iterator[str]:
    """The whole app on a real socket, as ``cipulse serve`` runs it, in a background thread."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))  # the kernel picks a free port; no race with other workers
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(make_settings()),
        host="127.0.0.1",
        port=port,
        log_level="warning",
    )
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uv.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        uv.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def console_errors() -> list[str]:
    """Console errors and uncaught exceptions of the page; a test may clear the ones it caused."""
    return []


@pytest.fixture
def page(browser: Browser, console_errors: list[str]) -> Iterator[Page]:
    """A fresh light-mode page; any console error or uncaught exception fails the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme="light")
    page = context.new_page()
    errors = console_errors

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(f"console: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    yield page
    context.close()
    assert errors == [], errors


def post_run(base: str, **body: object) -> None:
    response = httpx.post(f"{base}/api/events/run", json=body, timeout=10)
    response.raise_for_status()


def seed(base: str) -> None:
    """A week of history over three pipelines, some of it in the last 24 hours."""
    now = datetime.now(UTC)
    plan = [
        (0, "build", "success", 312),
        (0, "test", "failure", 541),
        (0, "build", "success", 298),
        (1, "deploy", "success", 95),
        (2, "test", "success", 502),
        (2, "build", "failure", 77),
        (4, "test", "success", 488),
        (6, "deploy", "failure", 120),
    ]
    for i, (days_ago, pipeline, status, seconds) in enumerate(plan):
        started = now - timedelta(days=days_ago, minutes=30 + 17 * i)
        post_run(
            base,
            pipeline=pipeline,
            status=status,
            started_at=started.isoformat(),
            finished_at=(started + timedelta(seconds=seconds)).isoformat(),
            branch="main" if i % 3 else "feature/faster-cache",
            commit=f"{i:02d}c0ffee1234567890",
            triggered_by="alice" if i % 2 else "bob",
        )


def kpi_texts(page: Page) -> dict[str, str]:
    return {key: page.locator(f'[data-kpi="{key}"]').inner_text() for key in KPIS}


def wait_until_live(page: Page) -> None:
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def today_failures(page: Page) -> int:
    return int(
        page.evaluate(
            "() => echarts.getInstanceByDom(document.getElementById('daily-chart'))"
            ".getOption().series[1].data.at(-1)"
        )
    )


def test_new_run_reaches_the_open_page_without_reload(server: str, page: Page) -> None:
    seed(server)
    page.goto(f"{server}/?minutes=10080")
    wait_until_live(page)
    page.evaluate("window.__loadedOnce = true")

    expect(page.locator("#daily-chart svg")).to_be_visible()
    assert page.locator("#daily-chart svg path").count() > 10  # axes, bars, legend
    expect(page.locator("#recent-runs tbody tr")).to_have_count(8)
    total = int(page.locator('[data-kpi="total"] .kpi-value').inner_text())
    assert total == 8
    failures_today = today_failures(page)
    shot(page, "dashboard-light")

    post_run(
        server,
        pipeline="release-live-check",
        status="failure",
        duration_sec=372,
        branch="main",
        commit="feedfacecafebeef",
        triggered_by="carol",
    )

    total_card = page.locator('[data-kpi="total"] .kpi-value')
    expect(total_card).to_have_text(str(total + 1), timeout=LIVE_TIMEOUT_MS)
    first_row = page.locator("#recent-runs tbody tr").first
    expect(first_row.locator(".pipeline")).to_have_text(
        "release-live-check", timeout=LIVE_TIMEOUT_MS
    )
    expect(first_row.locator(".badge")).to_have_text("failure")
    expect(first_row.locator("code")).to_have_text("feedfac")
    last = page.locator('[data-kpi="last_status"]')
    expect(last.locator(".kpi-value")).to_have_text("failure")
    expect(last.locator(".kpi-when")).to_have_text("Finished just now")
    page.wait_for_function(
        f"() => echarts.getInstanceByDom(document.getElementById('daily-chart'))"
        f".getOption().series[1].data.at(-1) === {failures_today + 1}",
        timeout=LIVE_TIMEOUT_MS,
    )
    assert page.evaluate("window.__loadedOnce") is True, "the page was reloaded"
    expect(page.locator("#runs-error")).to_be_hidden()

    # The script formats live values exactly as the server does on first paint.
    live = kpi_texts(page)
    page.reload()
    wait_until_live(page)
    assert kpi_texts(page) == live

    page.locator("[data-theme-toggle]").click()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    assert page.evaluate("localStorage.getItem('cipulse-theme')") == "dark"
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(13, 16, 21)"
    shot(page, "dashboard-dark")

    page.set_viewport_size({"width": 390, "height": 844})
    # Nothing may stick out sideways on a phone; the table scrolls inside its panel.
    page.wait_for_function("document.documentElement.scrollWidth <= 390", timeout=2000)
    shot(page, "dashboard-phone-dark")
    page.locator("[data-theme-toggle]").click()
    expect(page.locator("html")).to_have_attribute("data-theme", "light")
    shot(page, "dashboard-phone-light")


def test_first_run_replaces_the_empty_state(server: str, page: Page) -> None:
    page.goto(f"{server}/")
    expect(page.locator("[data-empty-state]")).to_be_visible()
    expect(page.locator("#curl-example")).to_contain_text(f"{server}/api/events/run")
    wait_until_live(page)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server)
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith(f"curl -X POST {server}/api/events/run")
    shot(page, "empty-light")
    page.emulate_media(color_scheme="dark")  # follows the system when nothing was chosen
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    shot(page, "empty-dark")
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, "empty-phone-dark")

    post_run(server, pipeline="first-pipeline", status="success", duration_sec=42)

    expect(page.locator('[data-kpi="total"] .kpi-value')).to_have_text("1", timeout=LIVE_TIMEOUT_MS)
    expect(page.locator("[data-empty-state]")).to_have_count(0)
    expect(page.locator("#recent-runs tbody tr .pipeline")).to_have_text("first-pipeline")
    expect(page.locator("#daily-chart svg")).to_be_visible()
    wait_until_live(page)


def test_failed_table_refresh_offers_a_retry(
    server: str, page: Page, console_errors: list[str]
) -> None:
    post_run(server, pipeline="build", status="success", duration_sec=30)
    page.goto(f"{server}/")
    wait_until_live(page)

    def fail_fragments(route: Route) -> None:
        if route.request.headers.get("hx-request") == "true":
            route.fulfill(status=503, body="database down")
        else:
            route.continue_()

    page.route(f"{server}/", fail_fragments)
    post_run(server, pipeline="after-outage", status="failure", duration_sec=12)
    expect(page.locator('[data-kpi="total"] .kpi-value')).to_have_text("2", timeout=LIVE_TIMEOUT_MS)
    expect(page.locator("#runs-error")).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    expect(page.locator("#recent-runs tbody tr")).to_have_count(1)  # the old rows stay
    shot(page, "runs-refresh-error")
    assert console_errors and all("503" in e for e in console_errors), console_errors
    console_errors.clear()

    page.unroute(f"{server}/")
    page.locator("#runs-error button").click()
    expect(page.locator("#runs-error")).to_be_hidden()
    expect(page.locator("#recent-runs tbody tr .pipeline").first).to_have_text("after-outage")


def test_lost_connection_is_shown_and_retried(server: str, page: Page) -> None:
    post_run(server, pipeline="build", status="success", duration_sec=30)
    connections: list[WebSocketRoute] = []

    def drop_first_connection(ws: WebSocketRoute) -> None:
        connections.append(ws)
        if len(connections) == 1:
            ws.close()  # as if the server went away
        else:
            ws.connect_to_server()

    page.route_web_socket("**/ws/metrics*", drop_first_connection)
    page.goto(f"{server}/")
    status = page.locator("#live-status")
    expect(status).to_have_attribute("data-state", "paused")
    expect(status).to_have_text("live updates paused, reconnecting…")
    expect(status).to_have_attribute("data-state", "live", timeout=LIVE_TIMEOUT_MS)
    assert len(connections) == 2

    post_run(server, pipeline="after-reconnect", status="success", duration_sec=5)
    expect(page.locator("#recent-runs tbody tr .pipeline").first).to_have_text(
        "after-reconnect", timeout=LIVE_TIMEOUT_MS
    )
