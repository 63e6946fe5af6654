"""The test pages in headless Chromium against a real uvicorn server.

Reports are pushed over HTTP as a CI would push them; the pages are then read and clicked the
way a person would: tabs change the URL and the rows, a flaky test's page draws its chart and
unfolds its retries, and nothing sticks out sideways on a phone. Screenshots land in
``test-artifacts/``.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests import test_browser as shared

browser = shared.browser
server = shared.server
page = shared.page
console_errors = shared.console_errors
shot = shared.shot

pytestmark = [
    pytest.mark.browser,
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]

FIXTURES = Path(__file__).resolve().parent.parent.parent / "shared" / "fixtures" / "real" / "junit"


def push(server: str, path: str, **params: str) -> None:
    response = httpx.post(
        f"{server}/api/test-reports",
        content=(FIXTURES / path).read_bytes(),
        params=params,
        headers={"Content-Type": "application/xml"},
    )
    assert response.status_code == 201, response.text


def seed(server: str) -> None:
    push(server, "surefire/apache-surefire-TEST-org.acme.FlakyTest.xml", repository="acme/java")
    push(server, "surefire/mikepenz-TEST-EmailAddressTest.xml", repository="acme/java")
    push(server, "pytest/mikepenz-python-report-flaky.xml", repository="acme/py", commit="c1")
    push(server, "pytest/junitparser-pytest-success.xml", repository="acme/py", commit="c1")
    push(server, "go/gotestsum-junitxml-report.golden.xml", repository="acme/go", run_id="5")


def test_empty_state(server: str, page: Page) -> None:
    page.goto(f"{server}/tests")
    expect(page.locator("[data-empty-state]")).to_contain_text("No test reports")
    expect(page.locator('nav.sections a[data-section="tests"]')).to_have_attribute(
        "aria-current", "true"
    )
    shot(page, "tests-empty-light")


def test_tabs_filters_and_a_flaky_test(server: str, page: Page) -> None:
    seed(server)
    page.goto(f"{server}/tests")
    rows = page.locator("table.tests tbody tr")
    expect(page.locator(".page-sub")).to_contain_text("flaky")
    # Most failing first: the EmailAddressTest errors and failures lead.
    first = rows.first
    expect(first.locator('[data-col="failures"]')).to_have_text("1")
    expect(first.locator("[data-bad]")).to_have_count(1)
    shot(page, "tests-failing-light")

    page.get_by_role("link", name="Flaky").click()
    expect(page).to_have_url(f"{server}/tests?view=flaky&days=14")
    expect(rows.locator(".test-link")).to_have_text(["testFlaky"])
    shot(page, "tests-flaky-light")

    page.get_by_role("link", name="Slowest").click()
    expect(page).to_have_url(f"{server}/tests?view=slowest&days=14")
    page.get_by_label("Search").fill("TestParallel")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(f"{server}/tests?view=slowest&q=TestParallel&days=14")
    names = rows.locator(".test-link").all_inner_texts()
    assert names and all(name.startswith("TestParallel") for name in names)

    page.get_by_label("Project").select_option("acme/py")
    expect(page).to_have_url(
        f"{server}/tests?view=slowest&q=TestParallel&project=acme%2Fpy&days=14"
    )
    expect(page.locator("[data-empty-state]")).to_contain_text("No test matches")

    page.goto(f"{server}/tests?view=flaky")
    page.get_by_role("link", name="testFlaky").click()
    expect(page.locator("h1")).to_have_text("testFlaky")
    expect(page.locator("#test-chart svg")).to_be_visible()
    expect(page.locator('[data-kpi="flaky"]')).to_have_text("1")
    history = page.locator("table.history tbody tr")
    expect(history).to_have_count(1)
    expect(history.locator('.outcome[data-outcome="flaky"]')).to_be_visible()
    history.locator("summary").click()
    expect(history.locator("ol.retries li")).to_have_count(4)
    shot(page, "test-flaky-light")

    page.emulate_media(color_scheme="dark")
    page.reload()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    shot(page, "test-flaky-dark")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{server}/tests")
    # The page's own content never sticks out sideways; wide tables scroll inside their panel.
    # (The shared header's section links are laid out by base.css, not by these pages.)
    page.wait_for_function(
        "(() => { const p = document.querySelector('.page');"
        " return p.scrollWidth <= p.clientWidth && p.getBoundingClientRect().right <= 390; })()",
        timeout=2000,
    )
    shot(page, "tests-phone-dark")


def test_unknown_test_is_a_404_page(server: str, page: Page, console_errors: list[str]) -> None:
    response = page.goto(f"{server}/tests/424242")
    assert response is not None and response.status == 404
    expect(page.locator("h1")).to_contain_text("No test with id 424242")
    expect(page.get_by_role("link", name="See all tests")).to_have_attribute("href", "/tests")
    console_errors.clear()  # the browser logs the 404 itself
