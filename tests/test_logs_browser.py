"""The log viewer in headless Chromium against a real server: a failing job's real log (fetched
from the fake GitHub) opens at its error, a fold opens and closes, a search finds lines on other
pages, and a line link finds its page. Screenshots (light, dark, phone): ``test-artifacts/``."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Page, expect

from cipulse.app import create_app
from cipulse.settings import Settings
from tests import test_browser as shared
from tests.fakegithub import FakeGitHub, Scenario
from tests.support import live_server
from tests.test_logs import FULL, REPO, fetch, github_settings, jobs_of

browser = shared.browser
page = shared.page
console_errors = shared.console_errors
shot = shared.shot

pytestmark = [
    pytest.mark.browser,
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]


@pytest.fixture
def site(make_settings: Callable[..., Settings]) -> Iterator[tuple[str, int, int]]:
    scenario = Scenario()
    repo = scenario.add_repo(REPO)
    run = scenario.add_run(
        scenario.add_workflow(repo, "CI"), jobs=[("test", "failure"), ("lint", "success")]
    )
    job_id = jobs_of(run)["test"]
    with FakeGitHub(scenario) as gh:
        gh.job_logs[job_id] = FULL.read_bytes()
        settings = github_settings(make_settings, gh)
        assert fetch(settings)[0].stored == 1
        with live_server(create_app(settings)) as url:
            yield f"{url}/repos/{REPO}/jobs/{job_id}/log", job_id, jobs_of(run)["lint"]


def in_view(page: Page, selector: str) -> bool:
    return bool(
        page.evaluate(
            """(sel) => { const r = document.querySelector(sel).getBoundingClientRect();
                return r.top >= 0 && r.bottom <= window.innerHeight; }""",
            selector,
        )
    )


def test_log_opens_at_the_error_folds_and_searches(site: tuple[str, int, int], page: Page) -> None:
    url, _job_id, _lint = site
    page.goto(url)
    error = page.locator("#L3194")
    expect(error).to_have_class("log-line log-error log-focus")
    expect(error).to_contain_text("Process completed with exit code 1.")
    expect(page.locator(".log-range").first).to_contain_text("lines 3,001\u20134,000 of 4,768")
    assert in_view(page, "#L3194")
    expect(page.locator(".log-issue-list a")).to_have_count(2)
    shot(page, "log-error")

    # a fold: closed, opened by a click on its title, closed again
    group = page.locator("details.log-group:not([open])").first.get_attribute("data-group")
    fold = page.locator(f'details.log-group[data-group="{group}"]')
    inside = fold.locator(":scope > .log-line").first
    expect(inside).to_be_hidden()
    fold.locator("summary").click()
    expect(fold).to_have_attribute("open", "")
    expect(inside).to_be_visible()
    fold.locator("summary").click()
    expect(inside).to_be_hidden()

    # coloured output is drawn as colour, never as escape codes
    assert page.locator(".log .ansi-fg-1, .log [class*=ansi-]").count() > 0
    assert "\x1b" not in page.content()

    # search the whole log: the hits on another page are one click away
    page.fill("#log-q", "exit code 1")
    page.press("#log-q", "Enter")
    hits = page.locator("#search-results .log-hits a")
    expect(hits).to_have_count(2)
    expect(hits.nth(1)).to_contain_text("4047")
    expect(hits.nth(1).locator("mark")).to_have_text("exit code 1")
    hits.nth(1).click()
    expect(page.locator("#L4047")).to_be_visible()
    assert "line=4047" in page.url and page.url.endswith("#L4047")
    assert in_view(page, "#L4047")
    expect(page.locator(".log-range").first).to_contain_text("lines 4,001\u20134,768")
    expect(page.locator("#L4047 mark")).to_have_text("exit code 1")  # marked in the line too

    # a shared link to a line on another page finds its page
    page.goto(f"{url}#L12")
    expect(page.locator("#L12")).to_be_visible()
    assert "line=12" in page.url
    assert in_view(page, "#L12")


def test_log_in_dark_mode_and_on_a_phone(site: tuple[str, int, int], browser) -> None:  # type: ignore[no-untyped-def]
    url, _job_id, _lint = site
    for name, options in (
        ("log-dark", {"viewport": {"width": 1280, "height": 900}, "color_scheme": "dark"}),
        ("log-phone", {"viewport": {"width": 390, "height": 844}, "is_mobile": True}),
    ):
        context = browser.new_context(**options)
        phone = context.new_page()
        errors: list[str] = []
        phone.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
        phone.goto(url)
        expect(phone.locator("#L3194")).to_be_visible()
        # the log itself fits the screen: long lines wrap instead of widening the page
        width = phone.evaluate("() => document.getElementById('log-page').scrollWidth")
        assert width <= options["viewport"]["width"]  # type: ignore[index]
        shot(phone, name)
        context.close()
        assert errors == []


def test_a_passing_jobs_log_is_fetched_on_request(site: tuple[str, int, int], page: Page) -> None:
    url, job_id, lint_id = site
    lint_url = url.replace(f"/jobs/{job_id}/", f"/jobs/{lint_id}/")
    page.goto(lint_url)
    expect(page.locator("h2")).to_contain_text("This log was not fetched")
    shot(page, "log-not-fetched")
    page.click("[data-fetch-log]")
    expect(page.locator("#log-page")).to_have_attribute(
        "data-log-state", re.compile("pending|stored")
    )
