"""The Overview and Compare pages rendered on the server: states, fragments, filters in the URL."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from cipulse.app import create_app
from cipulse.db import Database
from cipulse.models import utcnow
from cipulse.settings import Settings
from cipulse.stats import generate


def has(html: str, pattern: str) -> bool:
    return re.search(pattern, html, re.S) is not None


@pytest.fixture
def seeded(db_url: str, settings: Settings) -> Iterator[TestClient]:
    db = Database(db_url)
    generate.generate(db.engine, runs=250, days=20, now=utcnow(), repositories=2, seed=4)
    db.dispose()
    with TestClient(create_app(settings)) as client:
        yield client


def test_without_repositories_the_overview_says_how_to_start(client: TestClient) -> None:
    page = client.get("/overview")
    assert page.status_code == 200
    assert has(page.text, r"data-empty-state.*cipulse repo add OWNER/NAME")
    compare = client.get("/compare")
    assert compare.status_code == 200 and "No GitHub repository synced yet" in compare.text


def test_overview_numbers_match_the_api_and_filters_stay_in_links(seeded: TestClient) -> None:
    html = seeded.get("/overview?repo=acme4/service-2&branch=main&days=14").text
    api = seeded.get("/api/stats/overview?repo=acme4/service-2&branch=main&days=14").json()
    assert has(
        html, rf'id="daily-title">Runs per day</h2>\s*<p class="muted">{api["kpis"]["runs"]} runs'
    )
    assert '<option value="acme4/service-2" selected>' in html
    assert has(html, r'name="branch" value="main"')
    assert has(html, r'value="14" checked')
    assert has(
        html,
        r'href="/overview\?repo=acme4%2Fservice-2&amp;branch=main&amp;workflow=CI&amp;days=14"',
    )
    assert (
        "/api/stats/overview?repo=acme4%2Fservice-2&amp;branch=main&amp;days=14&amp;format=csv"
        in html
    )
    assert html.count('class="kpi"') == 7 and 'data-trend=""' not in html


def test_htmx_gets_only_the_body(seeded: TestClient) -> None:
    fragment = seeded.get("/overview?days=7", headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert fragment.text.lstrip().startswith('<div id="overview-body"')
    assert "<html" not in fragment.text and "HX-Request" in fragment.headers["Vary"]
    body = seeded.get("/compare?days=7", headers={"HX-Request": "true"}).text
    assert body.lstrip().startswith('<div id="compare-body"') and "compare-data" in body


def test_unknown_repository_and_bad_periods(seeded: TestClient) -> None:
    missing = seeded.get("/overview?repo=nobody/nothing")
    assert missing.status_code == 404 and "nobody/nothing is not a known repository" in missing.text
    backwards = seeded.get("/compare?a_from=2026-11-20&a_to=2026-11-01")
    assert backwards.status_code == 200
    assert has(backwards.text, r'role="alert".*a_to: must not be before a_from')
    junk = seeded.get("/overview?days=banana")
    assert junk.status_code == 200  # an unknown window falls back to 30 days
    assert has(junk.text, r'value="30" checked')
