"""Overview, Compare and the jobs heatmap in headless Chromium on a generated busy history.

Charts must render (ECharts marks its box), no script may log an error, and every filter must
round-trip through the URL: changed in the page, pushed to the address bar by htmx, and shown
again when that URL is opened. Screenshots (light, dark, phone) go to ``test-artifacts/``.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import Browser, Page, expect

from cipulse.db import Database
from cipulse.models import utcnow
from cipulse.stats import generate
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
REPO = "acme9/service-1"


@pytest.fixture
def seeded(db_url: str) -> None:
    """Written before the server starts (its fixture comes after this one in each test)."""
    db = Database(db_url)
    generate.generate(db.engine, runs=900, days=40, now=utcnow(), repositories=2, seed=9)
    db.dispose()


def test_overview_charts_filters_and_themes(
    seeded: None, server: str, page: Page, browser: Browser
) -> None:
    page.goto(f"{server}/overview")
    expect(page.locator("#daily-chart")).to_have_attribute("data-rendered", "true")
    expect(page.locator("#daily-chart svg")).to_have_count(1)
    expect(page.locator(".kpi")).to_have_count(7)
    expect(page.locator('.kpi[data-kpi="failure_rate"] .kpi-note')).not_to_be_empty()
    assert page.locator(".branch-list li").count() == 4  # main and release of two repositories
    expect(page.locator('a[data-export="csv"]').first).to_have_attribute(
        "href", re.compile(r"^/api/stats/overview\?days=30&format=csv$")
    )
    shot(page, "overview-light")

    # A filter change swaps the body through htmx and pushes the URL.
    page.select_option('select[name="repo"]', REPO)
    expect(page).to_have_url(re.compile(r"/overview\?repo=acme9%2Fservice-1.*days=30"))
    expect(page.locator("#daily-chart")).to_have_attribute("data-rendered", "true")
    page.locator("label", has_text="7 d").click()
    expect(page).to_have_url(re.compile(r"days=7"))
    page.locator("#wf-title").scroll_into_view_if_needed()
    page.get_by_role("link", name="CI", exact=True).click()
    expect(page).to_have_url(re.compile(r"workflow=CI"))
    url = page.url

    # The same URL opened afresh shows the same filters.
    page.goto(url)
    expect(page.locator('select[name="repo"]')).to_have_value(REPO)
    expect(page.locator('select[name="workflow"]')).to_have_value("CI")
    expect(page.locator('input[name="days"][value="7"]')).to_be_checked()
    expect(page.locator("#daily-chart")).to_have_attribute("data-rendered", "true")
    api = page.request.get(f"{server}/api/stats/overview?repo={REPO}&workflow=CI&days=7").json()
    runs = page.locator("#daily-title + p").inner_text()
    assert runs.startswith(f"{api['kpis']['runs']:,} runs")

    dark = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme="dark")
    dark_page = dark.new_page()
    dark_page.goto(url)
    expect(dark_page.locator("#daily-chart")).to_have_attribute("data-rendered", "true")
    shot(dark_page, "overview-dark")
    dark.close()
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    phone_page = phone.new_page()
    phone_page.goto(f"{server}/overview")
    expect(phone_page.locator("#daily-chart")).to_have_attribute("data-rendered", "true")
    # The page's own content fits the phone (wide tables scroll inside their panel).
    right = phone_page.evaluate(
        "() => Math.max(...[...document.querySelectorAll('#overview-body > *, form.filters')]"
        ".map(e => e.getBoundingClientRect().right))"
    )
    assert right <= 390 + 1, "the overview must not scroll sideways on a phone"
    shot(phone_page, "overview-phone")
    phone.close()


def test_unknown_repository_and_empty_window(
    seeded: None, server: str, page: Page, console_errors: list[str]
) -> None:
    page.goto(f"{server}/overview?repo=nobody/nothing")
    expect(page.locator("[data-error-state]")).to_contain_text("nobody/nothing")
    console_errors.clear()  # the browser logs the page's own 404 status
    page.goto(f"{server}/overview?branch=no-such-branch")
    expect(page.locator("[data-empty-state]").first).to_contain_text("No runs")


def test_compare_periods_round_trip(seeded: None, server: str, page: Page) -> None:
    page.goto(f"{server}/compare?days=7")
    expect(page.locator("#compare-chart")).to_have_attribute("data-rendered", "true")
    b_to = page.locator('input[name="b_to"]').input_value()
    a_from = str(utcnow().date() - timedelta(days=20))
    page.locator('input[name="a_from"]').fill(a_from)
    expect(page).to_have_url(re.compile(f"a_from={a_from}"), timeout=20_000)
    expect(page.locator('input[name="b_to"]')).to_have_value(b_to)
    page.reload()
    expect(page.locator('input[name="a_from"]')).to_have_value(a_from)
    expect(page.locator(".compare-kpis tbody tr")).to_have_count(8)
    shot(page, "compare-light")
    href = page.locator('a[data-export="csv"]').first.get_attribute("href")
    assert href is not None and "format=csv" in href
    csv_text = page.request.get(f"{server}{href}").text()
    assert csv_text.startswith("key,a.success")


def test_jobs_heatmap_renders(seeded: None, server: str, page: Page) -> None:
    page.goto(f"{server}/jobs?repo={REPO}&days=14")
    expect(page.locator("#jobs-heatmap")).to_have_attribute("data-rendered", "true")
    cells = page.evaluate(
        "() => echarts.getInstanceByDom(document.getElementById('jobs-heatmap'))"
        ".getOption().series[0].data.length"
    )
    assert cells > 0
    expect(page.locator('a[data-export="csv"]')).to_have_attribute(
        "href", re.compile(r"/api/stats/jobs\?repo=acme9%2Fservice-1&days=14&format=csv")
    )
    shot(page, "jobs-heatmap-light")
