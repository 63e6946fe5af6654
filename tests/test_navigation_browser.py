"""Design C's navigation in headless Chromium against a real server, with data synced from the
fake GitHub: clicking from /orgs down to a job, charts drawn with no console error, the run
graph's edges, filters kept in the URL, and a running run refreshed live by a webhook.
Screenshots (light, dark, phone) land in ``test-artifacts/``."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from cipulse.app import create_app
from cipulse.settings import Settings
from tests import test_browser as shared
from tests.fakegithub import FakeGitHub
from tests.fakegithub.contents import real_workflow
from tests.support import live_server
from tests.test_navigation import REMIX_JOBS, REPO, _scenario
from tests.test_sync import github_settings, run_sync

browser = shared.browser
page = shared.page
console_errors = shared.console_errors
shot = shared.shot

pytestmark = [
    pytest.mark.browser,
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]
SECRET = "navigation-webhook-secret"
WEBHOOKS = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "real" / "webhooks"


@pytest.fixture
def site(make_settings: Callable[..., Settings]) -> Iterator[tuple[str, FakeGitHub]]:
    scenario = _scenario()
    deploy = next(w for w in scenario.workflows.values() if w.name == "🚀 Deploy")
    scenario.add_run(
        deploy, jobs=["🚀 Deploy", *REMIX_JOBS], status="in_progress", head_sha="d" * 40
    )
    with FakeGitHub(scenario) as gh:
        gh.files.put(
            REPO, ".github/workflows/deploy.yml", real_workflow("remix-indie-stack.deploy.yml")
        )
        settings = github_settings(make_settings, gh, webhook_secret=SECRET)
        # Playwright's loop runs in this thread: the sync gets its own.
        with ThreadPoolExecutor(1) as pool:
            assert pool.submit(run_sync, settings).result().error is None
        with live_server(create_app(settings)) as url:
            yield url, gh


def charts_drawn(page: Page, selector: str) -> int:
    return int(
        page.evaluate(
            "(sel) => { const c = echarts.getInstanceByDom(document.querySelector(sel));"
            " return c ? c.getOption().series.length : 0; }",
            selector,
        )
    )


def test_click_from_orgs_down_to_a_job(site: tuple[str, FakeGitHub], page: Page) -> None:
    base, _gh = site
    page.goto(f"{base}/")
    page.get_by_role("link", name="Organizations").click()
    expect(page).to_have_url(f"{base}/orgs")
    expect(page.locator('[data-org="octo-org"]')).to_be_visible()
    shot(page, "nav-orgs-light")

    page.get_by_role("link", name="hello-world", exact=True).click()
    expect(page).to_have_url(f"{base}/repos/{REPO}")
    expect(page.locator(".crumbs")).to_contain_text("Organizations")
    expect(page.locator(".crumbs")).to_contain_text("octo-org")
    shot(page, "nav-repo-light")

    page.locator("ul.workflows").get_by_role("link", name="🚀 Deploy").click()
    expect(page.locator("h1")).to_have_text("🚀 Deploy")
    page.wait_for_function("() => document.querySelector('#duration-chart svg') !== null")
    assert charts_drawn(page, "#duration-chart") == 2  # p50 and p95
    assert charts_drawn(page, "#success-chart") == 2  # runs and success rate
    shot(page, "nav-workflow-light")

    page.locator("#runs").get_by_role("link", name="#1", exact=True).click()
    expect(page.locator("[data-order]")).to_have_attribute("data-order", "needs")
    stages = page.locator(".graph .stage")
    expect(stages).to_have_count(2)
    expect(stages.nth(1)).to_contain_text("🚀 Deploy")
    expect(page.locator(".graph-edges path")).to_have_count(4)  # fan-in from four jobs
    shot(page, "nav-run-light")

    page.get_by_role("link", name="⚡ Vitest").click()
    expect(page.locator("h1")).to_contain_text("⚡ Vitest")
    page.wait_for_function("() => document.querySelector('#steps-chart svg') !== null")
    assert charts_drawn(page, "#steps-chart") == 1
    expect(page.locator("#previous tbody tr")).to_have_count(8)
    crumbs = page.locator(".crumbs li")
    expect(crumbs.last).to_have_text("⚡ Vitest")
    shot(page, "nav-job-light")
    crumbs.nth(3).click()  # back up to the workflow by its breadcrumb
    expect(page.locator("h1")).to_have_text("🚀 Deploy")

    page.emulate_media(color_scheme="dark")
    page.reload()
    page.wait_for_function("() => document.querySelector('#duration-chart svg') !== null")
    shot(page, "nav-workflow-dark")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{base}/repos/{REPO}")
    # Wide tables scroll in their own box; nothing else sticks out (the shared header's own
    # width is the header's business, so the page may be as wide as it and no wider).
    sticking_out = page.evaluate(
        "() => Array.from(document.querySelectorAll('main *')).filter(e =>"
        " !e.closest('.table-wrap, .graph') && e.getBoundingClientRect().right > innerWidth + 1)"
        ".map(e => e.tagName + '.' + e.className)"
    )
    assert sticking_out == []
    header = page.evaluate("() => document.querySelector('header.topbar').scrollWidth")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= max(391, header)
    shot(page, "nav-repo-phone-dark")


def test_filters_round_trip_through_the_url(site: tuple[str, FakeGitHub], page: Page) -> None:
    base, _gh = site
    page.goto(f"{base}/repos/{REPO}")
    rows = page.locator("#runs tbody tr")
    expect(rows).to_have_count(10)
    page.locator("select[name=status]").select_option("failure")
    expect(page).to_have_url(f"{base}/repos/{REPO}?status=failure")
    expect(rows).to_have_count(1)
    page.locator("input[name=branch]").fill("dev")
    page.locator("input[name=branch]").press("Enter")
    expect(page).to_have_url(f"{base}/repos/{REPO}?branch=dev&status=failure")
    expect(page.locator("#runs")).to_contain_text("No runs match these filters")
    page.reload()
    expect(page.locator("select[name=status]")).to_have_value("failure")
    expect(page.locator("input[name=branch]")).to_have_value("dev")
    page.go_back()  # the back button walks the filters back, as htmx pushed them
    expect(page).to_have_url(f"{base}/repos/{REPO}?status=failure")
    expect(rows).to_have_count(1)
    page.go_back()
    expect(page).to_have_url(f"{base}/repos/{REPO}")
    page.reload()
    expect(rows).to_have_count(10)
    page.locator("label", has_text="30 d").click()
    expect(page).to_have_url(f"{base}/repos/{REPO}?days=30")
    shot(page, "nav-repo-filtered")


def _signed(body: bytes) -> dict[str, str]:
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={digest}", "Content-Type": "application/json"}


def test_running_run_updates_live(site: tuple[str, FakeGitHub], page: Page) -> None:
    base, gh = site
    run = next(r for r in gh.scenario.runs.values() if r.head_sha == "d" * 40)
    repo = gh.scenario.repo_named(REPO)
    assert repo is not None
    job = next(j for j in run.all_jobs() if j.name == "⚡ Vitest")
    page.goto(f"{base}/repos/{REPO}/runs/{run.id}")
    node = page.locator(f"#job-{job.id}")
    expect(node).to_have_attribute("data-tone", "running")
    expect(page.locator("[data-live-badge]")).to_be_visible()

    payload = json.loads(
        (WEBHOOKS / "workflow_job" / "completed.failure.with-organization.payload.json").read_text()
    )
    payload.pop("installation", None)
    payload["repository"].update(id=repo.id, full_name=REPO, name=repo.name)
    payload["workflow_job"].update(
        id=job.id,
        run_id=run.id,
        run_attempt=1,
        name=job.name,
        status="completed",
        conclusion="failure",
        head_sha=run.head_sha,
        head_branch=run.head_branch,
    )
    body = json.dumps(payload).encode()
    headers = {**_signed(body), "X-GitHub-Event": "workflow_job", "X-GitHub-Delivery": "nav-1"}
    answer = httpx.post(f"{base}/webhooks/github", content=body, headers=headers)
    assert answer.status_code < 300, answer.text
    expect(node).to_have_attribute("data-tone", "failure", timeout=10_000)
    shot(page, "nav-run-live")
