"""The jobs and sync pages in headless Chromium against a real uvicorn server.

What only a browser can show: sorting by a header click changes the URL and the order, a job's
recent failures unfold, "Sync now" shows the API's answer in the card, and no script logs an
error. Screenshots (light, dark, phone) land in ``test-artifacts/`` for a human look.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from cipulse.settings import Settings
from tests import test_browser as shared
from tests.test_jobs_page import REPO, seed_history, set_state, store

# The browser, server and page fixtures of the dashboard's browser tests, reused as they are.
browser = shared.browser
server = shared.server
page = shared.page
console_errors = shared.console_errors
shot = shared.shot

pytestmark = [
    pytest.mark.browser,
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]


@pytest.fixture
def make_settings(
    make_settings: Callable[..., Settings], request: pytest.FixtureRequest
) -> Callable[..., Settings]:
    """The shared settings factory, plus any settings a test asks for by indirect parameter."""
    preset: dict[str, object] = getattr(request, "param", {})

    def build(**overrides: object) -> Settings:
        return make_settings(**{**preset, **overrides})

    return build


def job_names(page: Page) -> list[str]:
    return page.locator("tbody.job th.name").all_inner_texts()


def test_sort_expand_and_themes(server: str, page: Page, db_url: str) -> None:
    seed_history(db_url)
    set_state(db_url, rate_limit=5000, rate_remaining=4870)
    page.goto(f"{server}/jobs?repo={REPO}")
    assert job_names(page) == ["build", "e2e", "test", "lint"]
    expect(page.locator('th[aria-sort="descending"]')).to_have_text("Failure rate")
    expect(page.locator(".freshness")).to_have_text("last synced 12 min ago")
    # Every job with runs has its sparkline drawn: a line or dots, never an empty box.
    for svg in page.locator("svg.spark").all():
        assert svg.locator(".spark-line, .spark-dot").count() >= 1
    shot(page, "jobs-light")

    page.get_by_role("link", name="Job", exact=True).click()
    expect(page).to_have_url(f"{server}/jobs?repo=octo%2Fapp&days=30&sort=name&dir=asc")
    assert job_names(page) == ["build", "e2e", "lint", "test"]
    page.get_by_role("link", name="Job", exact=True).click()
    expect(page).to_have_url(f"{server}/jobs?repo=octo%2Fapp&days=30&sort=name&dir=desc")
    assert job_names(page) == ["test", "lint", "e2e", "build"]

    build = page.locator('tbody.job[data-job="build"]')
    failures = build.locator("ol.failures li")
    expect(failures.first).to_be_hidden()
    build.locator("summary").click()
    expect(failures).to_have_count(3)
    expect(failures.first).to_be_visible()
    expect(failures.first.get_by_role("link", name="Run on GitHub")).to_have_attribute(
        "href", "https://github.com/octo/app/actions/runs/103"
    )
    shot(page, "jobs-expanded-light")

    # Choosing a window applies at once and keeps the sort.
    page.locator("label", has_text="7 d").click()
    expect(page).to_have_url(f"{server}/jobs?repo=octo%2Fapp&days=7&sort=name&dir=desc")
    assert job_names(page) == ["test", "build"]
    page.locator('input[name="branch"]').fill("main")
    page.locator('input[name="branch"]').press("Enter")
    expect(page).to_have_url(f"{server}/jobs?repo=octo%2Fapp&branch=main&days=7&sort=name&dir=desc")
    page.go_back()  # the form is usable again, even when the page comes from the cache
    expect(page).to_have_url(f"{server}/jobs?repo=octo%2Fapp&days=7&sort=name&dir=desc")
    expect(page.locator('input[name="branch"]')).to_be_enabled()
    page.goto(f"{server}/jobs?repo={REPO}")

    page.locator("[data-theme-toggle]").click()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    shot(page, "jobs-dark")
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_function("document.documentElement.scrollWidth <= 390", timeout=2000)
    shot(page, "jobs-phone-dark")
    page.locator("[data-theme-toggle]").click()
    shot(page, "jobs-phone-light")

    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{server}/")
    expect(page.locator("[data-github-line]")).to_have_text(
        "GitHub: octo/app synced 12 min ago · 4,870/5,000 API calls left"
    )
    shot(page, "dashboard-github-line")


def test_sync_now_without_a_github_token_says_so(
    server: str, page: Page, db_url: str, console_errors: list[str]
) -> None:
    seed_history(db_url)
    set_state(
        db_url,
        last_error="GitHub rejected the token (401 Bad credentials): check CIPULSE_GITHUB_TOKEN",
        last_requests=12,
        last_not_modified=9,
        rate_limit=5000,
        rate_remaining=4870,
    )
    store(db_url, [], repo="octo/quiet", tracked=False)
    page.goto(f"{server}/sync")
    card = page.locator(f'.sync-card[data-repo="{REPO}"]')
    expect(card.locator("[data-last-error]")).to_contain_text("GitHub rejected the token")
    shot(page, "sync-light")

    card.get_by_role("button", name="Sync now").click()
    message = card.locator("[data-sync-message]")
    expect(message).to_contain_text("no GitHub token: set CIPULSE_GITHUB_TOKEN")
    expect(message).to_have_attribute("data-tone", "failure")
    expect(card.get_by_role("button", name="Sync now")).to_be_enabled()
    # The browser logs the 400 answer itself; nothing else may be logged.
    assert all("400" in e for e in console_errors), console_errors
    console_errors.clear()
    shot(page, "sync-after-sync-now-light")

    page.locator("[data-theme-toggle]").click()
    shot(page, "sync-dark")
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_function("document.documentElement.scrollWidth <= 390", timeout=2000)
    shot(page, "sync-phone-dark")
    page.goto(f"{server}/")
    shot(page, "dashboard-github-error-phone-dark")


@pytest.mark.parametrize("make_settings", [{"admin_token": "s3cret-admin"}], indirect=True)
def test_sync_now_asks_for_the_admin_token(
    server: str, page: Page, db_url: str, console_errors: list[str]
) -> None:
    seed_history(db_url)
    page.goto(f"{server}/sync")
    token_form = page.locator("#admin-token")
    expect(token_form).to_be_visible()  # the server needs one
    expect(page.get_by_role("button", name="Forget")).to_be_hidden()  # nothing to forget yet
    card = page.locator(f'.sync-card[data-repo="{REPO}"]')
    message = card.locator("[data-sync-message]")

    card.get_by_role("button", name="Sync now").click()
    expect(message).to_have_text("An admin token is needed to sync: enter it above.")
    expect(token_form).to_have_attribute("data-needed", "")
    expect(page.get_by_label("Admin token")).to_be_focused()
    shot(page, "sync-admin-token-needed-light")

    page.get_by_label("Admin token").fill("s3cret-admin")
    page.get_by_role("button", name="Use for this tab").click()
    assert page.evaluate("sessionStorage.getItem('cipulse-admin-token')") == "s3cret-admin"
    card.get_by_role("button", name="Sync now").click()
    # Past the admin check: now the missing GitHub token is what stops the sync.
    expect(message).to_contain_text("no GitHub token")
    assert len(console_errors) == 2, console_errors
    assert "401" in console_errors[0] and "400" in console_errors[1], console_errors
    console_errors.clear()

    page.reload()
    expect(page.get_by_role("button", name="Forget")).to_be_visible()
    page.get_by_role("button", name="Forget").click()
    assert page.evaluate("sessionStorage.getItem('cipulse-admin-token')") is None
    expect(page.get_by_role("button", name="Forget")).to_be_hidden()


def test_empty_pages(server: str, page: Page, db_url: str, console_errors: list[str]) -> None:
    page.goto(f"{server}/jobs")
    expect(page.locator("[data-empty-state] h1")).to_have_text("No repository yet")
    shot(page, "jobs-empty-light")
    page.goto(f"{server}/sync")
    expect(page.locator("[data-empty-state] h2")).to_have_text("No repository is synced yet")
    shot(page, "sync-empty-light")
    page.goto(f"{server}/jobs?repo=nobody/nothing")
    expect(page.locator("h1")).to_have_text("nobody/nothing is not a known repository")
    shot(page, "jobs-404-light")
    assert [e for e in console_errors if "404" not in e] == []  # the browser logs the 404
    console_errors.clear()

    store(db_url, [], repo="octo/new", tracked=False)
    page.goto(f"{server}/jobs?repo=octo/new&branch=main")
    expect(page.locator("[data-empty-state] h2")).to_have_text("No jobs counted for octo/new")
    page.get_by_role("link", name="all branches").click()
    expect(page).to_have_url(f"{server}/jobs?repo=octo%2Fnew&days=30&sort=failureRate&dir=desc")
    shot(page, "jobs-no-counted-light")
