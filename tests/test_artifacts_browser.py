"""A run's artifacts and the file viewer in headless Chromium against a real uvicorn server.

What only a browser shows: the artifact's image is decoded and drawn, the JSON tree folds and
unfolds, a refused artifact says why, and no script logs an error. Screenshots (light, dark,
phone) land in ``test-artifacts/``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from cipulse.settings import Settings
from tests import test_browser as shared
from tests.fakegithub import FakeGitHub, Run, Scenario
from tests.fakegithub import artifacts_extra as zips
from tests.test_artifacts import REPO, github_settings, one_run, process

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
def seeded(make_settings, server: str) -> Iterator[Run]:  # type: ignore[no-untyped-def]
    scenario = Scenario()
    run = one_run(scenario)
    scenario.add_artifact(run.id, "results", zip_bytes=zips.normal_zip())
    scenario.add_artifact(run.id, "evil", zip_bytes=zips.hostile_zips()["traversal"])
    with FakeGitHub(scenario) as gh:
        settings: Settings = github_settings(make_settings, gh)
        process(settings)
    yield run


def test_image_and_foldable_json_from_an_artifact(server: str, page: Page, seeded: Run) -> None:
    page.goto(f"{server}/repos/{REPO}/runs/{seeded.id}/artifacts")
    evil = page.locator('[data-artifact="evil"]')
    expect(evil.locator(".state-badge")).to_have_text("refused")
    expect(evil.locator("[data-reason]")).to_contain_text("climbs out of its folder")
    thumb = page.locator(".gallery img").first
    expect(thumb).to_be_visible()
    page.wait_for_function("() => document.querySelector('.gallery img').naturalWidth > 0")
    shot(page, "artifacts-run-light")

    page.get_by_role("link", name="screenshots/home.png").last.click()
    image = page.locator(".image-viewer img")
    expect(image).to_be_visible()
    page.wait_for_function("() => document.querySelector('.image-viewer img').complete")
    assert image.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [48, 32]
    shot(page, "artifact-image-light")

    page.go_back()
    page.get_by_role("link", name="report.json").click()
    tree = page.locator(".json-tree")
    expect(tree).to_be_visible()
    duration = tree.get_by_text("duration_sec")
    expect(duration).to_be_visible()
    summary_node = tree.locator(
        "details.jnode", has=page.locator("> summary .jkey", has_text="summary")
    )
    summary_node.locator("> summary").click()  # fold it
    expect(duration).to_be_hidden()
    expect(summary_node.locator("> summary .jcount")).to_have_text("3 keys")
    summary_node.locator("> summary").click()  # and unfold
    expect(duration).to_be_visible()

    page.get_by_role("button", name="Collapse all").click()
    expect(tree.locator("details[open]")).to_have_count(1)  # the root stays open
    expect(duration).to_be_hidden()
    shot(page, "artifact-json-collapsed-light")
    page.get_by_role("button", name="Expand all").click()
    expect(duration).to_be_visible()
    shot(page, "artifact-json-light")


def wider_than_screen(page: Page) -> list[str]:
    """Elements of the main content reaching past the viewport (the shared header is not ours)."""
    return page.evaluate(  # type: ignore[no-any-return]
        """() => [...document.querySelectorAll('main *')]
            .filter(el => el.getBoundingClientRect().right > window.innerWidth + 1)
            .map(el => el.tagName + '.' + el.className)"""
    )


def test_dark_and_phone(server: str, browser: Browser, seeded: Run) -> None:
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, color_scheme="dark", is_mobile=True
    )
    phone = context.new_page()
    try:
        phone.goto(f"{server}/repos/{REPO}/runs/{seeded.id}/artifacts")
        expect(phone.locator(".gallery img").first).to_be_visible()
        assert wider_than_screen(phone) == [], "the content must not run off a phone's screen"
        shot(phone, "artifacts-run-dark-phone")
        # Followed, not clicked: the shared header (not this page) is wider than a phone, so
        # the mobile viewport is zoomed out and clicks land off target.
        href = phone.get_by_role("link", name="logs/build.log").get_attribute("href")
        phone.goto(f"{server}{href}")
        expect(phone.locator("ol.lines li")).to_have_count(500)
        expect(phone.locator("#L1")).to_contain_text("step 1: ok")
        assert wider_than_screen(phone) == []
        shot(phone, "artifact-text-dark-phone")
    finally:
        context.close()
