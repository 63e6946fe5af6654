"""Issue 6's "Done when", end to end, as a user meets it.

A repository is synced from the fake GitHub over real HTTP by the running app (``POST
/api/refresh``); its failing run has a failed job with a real log, an artifact holding a real
JUnit report with failures, a PNG and a JSON file, and a path-traversal artifact. The app's own
background workers fetch the log and process the artifacts. Then, in headless Chromium: the run
page lists the failing tests and says why the hostile artifact was refused, the job's log link
opens at the error, the image is decoded and the JSON shows as a tree, and nothing outside the
storage folder changed. Screenshots: ``test-artifacts/e2e-*.png``.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from cipulse.app import create_app
from cipulse.settings import Settings
from tests import test_browser as shared
from tests.fakegithub import FakeGitHub, Scenario
from tests.fakegithub import artifacts_extra as zips
from tests.support import live_server
from tests.test_logs import FULL

browser = shared.browser
page = shared.page
console_errors = shared.console_errors
shot = shared.shot

pytestmark = [
    pytest.mark.browser,
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]

REPO = "octo-org/e2e-app"
JUNIT = Path(__file__).resolve().parent.parent.parent / (
    "shared/fixtures/real/junit/pytest/dorny-python-xunit-pytest.xml"
)
FAILING = ("tests.test_lib.test_always_fail", "tests.test_lib.test_error")
SUMMARY = {"suite": "e2e", "summary": {"passed": 11, "failed": 2, "duration_sec": 0.019}}
# Deep enough to leave the storage folder and its parent from the artifact's folder.
ESCAPE = "../" * 9 + "cipulse-e2e-pwned.txt"
SETTLE_SECONDS = 45.0  # a ceiling for the workers on a busy machine, not a timed assertion


@dataclass
class Site:
    url: str
    run_id: int
    job_id: int
    data_dir: Path
    before: dict[str, str]
    error_line: int


def tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` with a hash of its bytes."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def settle(check: Callable[[], Any]) -> Any:
    """Poll until ``check`` returns something truthy (the background workers are at work)."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"the background workers did not finish: {check.__doc__}")
        time.sleep(0.2)


@pytest.fixture
def site(make_settings: Callable[..., Settings], tmp_path: Path) -> Iterator[Site]:
    scenario = Scenario()
    repo = scenario.add_repo(REPO)
    run = scenario.add_run(
        scenario.add_workflow(repo, "CI"), jobs=[("test", "failure"), ("lint", "success")]
    )
    job_id = next(j.id for j in run.attempts[0].jobs if j.name == "test")
    scenario.add_artifact(
        run.id,
        "test-results",
        zip_bytes=zips.make(
            {
                "reports/pytest.xml": JUNIT.read_bytes(),
                "screenshots/failure.png": zips.png(),
                "results/summary.json": json.dumps(SUMMARY).encode(),
            }
        ),
    )
    scenario.add_artifact(
        run.id, "evil", zip_bytes=zips.make({"fine.txt": b"innocent", ESCAPE: b"escaped"})
    )

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (tmp_path / "neighbour.txt").write_text("left alone\n")
    (data_dir / "keep.txt").write_text("also left alone\n")
    before = tree(tmp_path)

    with FakeGitHub(scenario) as gh:
        gh.job_logs[job_id] = FULL.read_bytes()
        settings = make_settings(
            data_dir=data_dir,
            github_token=gh.token,
            github_api_url=gh.api_url,
            poll_interval_minutes=0,
            reconcile_cron="",
            log_fetch_seconds=0.2,
        )
        with live_server(create_app(settings)) as url, httpx.Client(base_url=url) as api:
            synced = api.post("/api/refresh", params={"repo": REPO}, timeout=60)
            assert synced.status_code == 200, synced.text

            def artifacts_done() -> dict[str, Any] | None:
                """artifacts processed"""
                body = api.get(f"/api/runs/{run.id}/artifacts").json()
                states = {a["name"]: a for a in body["artifacts"]}
                busy = len(states) < 2 or any(a["state"] == "pending" for a in states.values())
                return None if busy else states

            def log_stored() -> dict[str, Any] | None:
                """job log stored"""
                body = api.get(f"/api/jobs/{job_id}/log", params={"limit": 1}).json()
                return body if body.get("state") == "stored" else None

            arts = settle(artifacts_done)
            assert arts["test-results"]["state"] == "done", arts["test-results"]
            assert arts["evil"]["state"] == "refused", arts["evil"]
            log_page = settle(log_stored)
            assert log_page["errors"] >= 1
            error_line = log_page["first_error_line"]
            assert error_line is not None
            yield Site(url, run.id, job_id, data_dir, before, error_line)


def in_view(page: Page, selector: str) -> bool:
    return bool(
        page.evaluate(
            """(sel) => { const r = document.querySelector(sel).getBoundingClientRect();
                return r.top >= 0 && r.bottom <= window.innerHeight; }""",
            selector,
        )
    )


def test_a_failing_runs_page_tests_log_artifacts_and_a_refused_zip(
    site: Site, page: Page, tmp_path: Path
) -> None:
    run_url = f"{site.url}/repos/{REPO}/runs/{site.run_id}"

    # The run page: the failing tests from the JUnit report, and why the hostile zip was refused.
    page.goto(run_url)
    failing = page.locator("#failing-tests")
    for name in FAILING:
        expect(failing.get_by_role("link", name=name)).to_be_visible()
    expect(failing.locator("li")).to_have_count(len(FAILING))
    expect(failing).to_contain_text("assert False")
    artifacts = page.locator("#run-artifacts")
    expect(artifacts.locator("li", has_text="test-results")).to_contain_text("done")
    evil = artifacts.locator("li", has_text="evil")
    expect(evil).to_contain_text("refused")
    expect(evil.locator("[data-reason]")).to_contain_text("climbs out of its folder with '..'")
    shot(page, "e2e-run")

    # The failed job's log, followed from the run page through the job page, opens at the error.
    page.locator(f"#job-{site.job_id} a").click()
    page.get_by_role("link", name="Log", exact=True).click()
    error = page.locator(f"#L{site.error_line}")
    expect(error).to_be_visible()
    expect(error).to_have_class("log-line log-error log-focus")
    expect(error).to_contain_text("Process completed with exit code 1.")
    assert in_view(page, f"#L{site.error_line}")
    assert f"/jobs/{site.job_id}/log" in page.url
    # the viewport, not the whole page: what the user sees on opening is the error
    page.screenshot(path=str(shared.ARTIFACTS / "e2e-log.png"))

    # The artifacts page: the PNG is decoded and drawn; the JSON file opens as a tree.
    page.goto(run_url)
    page.locator("#run-artifacts").get_by_role("link", name="browse files").click()
    thumb = page.locator(".gallery img").first
    expect(thumb).to_be_visible()
    page.wait_for_function("() => document.querySelector('.gallery img').complete")
    assert thumb.evaluate("img => img.naturalWidth") > 0
    expect(page.locator('[data-artifact="evil"] [data-reason]')).to_contain_text(
        "climbs out of its folder"
    )
    shot(page, "e2e-artifacts")
    page.get_by_role("link", name="results/summary.json").first.click()
    json_tree = page.locator(".json-tree")
    expect(json_tree).to_be_visible()
    expect(json_tree.locator("details.jnode").first).to_be_visible()
    expect(json_tree.get_by_text("duration_sec")).to_be_visible()
    shot(page, "e2e-json")

    # Nothing outside the storage folder changed: not the data folder, not its parent.
    after = tree(tmp_path)
    storage = "data/storage/"
    outside_before = {k: v for k, v in site.before.items() if not k.startswith(storage)}
    outside_after = {
        k: v
        for k, v in after.items()
        if not k.startswith(storage) and not k.startswith("data/tmp/")
    }
    assert outside_after == outside_before
    assert not [k for k in after if k.startswith("data/tmp/")]  # downloads cleaned up
    assert not [k for k in after if k.endswith("pwned.txt")]
    assert not any((d / "cipulse-e2e-pwned.txt").exists() for d in tmp_path.parents)
