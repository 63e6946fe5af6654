"""The server-rendered dashboard (``GET /``) on SQLite and PostgreSQL.

The page is read the way a person reads it: the text of the KPI cards and of the table rows.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cipulse.app import create_app
from cipulse.settings import Settings
from cipulse.web import formatting

FRAGMENT = {"HX-Request": "true", "HX-Target": "recent-runs"}
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


class Dashboard(HTMLParser):
    """Collects the text of each KPI card, each table row's cells and each link's attributes."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.kpis: dict[str, str] = {}
        self.rows: list[list[str]] = []
        self.links: list[dict[str, str | None]] = []
        self._kpi: str | None = None
        self._depth = 0
        self._hidden = 0
        self._in_body = False
        self._cell: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if self._hidden or "hidden" in attributes:
            self._hidden += 1  # not shown, so not read
        if tag == "a":
            self.links.append(attributes)
        if self._kpi is not None:
            self._depth += 1
        elif tag == "article" and (kpi := attributes.get("data-kpi")):
            self._kpi, self._depth = kpi, 1
            self.kpis[kpi] = ""
        if tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self.rows.append([])
        elif tag == "td" and self._in_body:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if self._hidden:
            self._hidden -= 1
        if self._kpi is not None:
            self._depth -= 1
            if self._depth == 0:
                self.kpis[self._kpi] = " ".join(self.kpis[self._kpi].split())
                self._kpi = None
        if tag == "tbody":
            self._in_body = False
        elif tag == "td" and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._hidden:
            return
        if self._kpi is not None:
            self.kpis[self._kpi] += data
        if self._cell is not None:
            self._cell.append(data)


def post(client: TestClient, **body: object) -> None:
    response = client.post("/api/events/run", json=body)
    assert response.status_code == 201, response.text


def ago(**delta: float) -> str:
    return (datetime.now(UTC) - timedelta(**delta)).isoformat()


def test_empty_database_explains_how_to_send_the_first_run(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert "No runs yet" in page.text
    assert "curl -X POST http://testserver/api/events/run" in page.text
    assert "cipulse demo" in page.text
    assert "Authorization" not in page.text
    assert Dashboard(page.text).kpis == {}


def test_curl_hint_names_the_token_when_ingest_needs_one(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(ingest_token="s3cret-token")
    with TestClient(create_app(settings)) as client:
        page = client.get("/").text
    assert "Authorization: Bearer $CIPULSE_INGEST_TOKEN" in page
    assert "s3cret-token" not in page


def test_runs_show_in_cards_and_table(client: TestClient) -> None:
    post(
        client,
        pipeline="build",
        status="success",
        started_at=ago(minutes=30),
        duration_sec=372,
        branch="main",
        commit="3f2c1ab9d0e8f7",
        triggered_by="alice",
    )
    post(client, pipeline="test", status="success", started_at=ago(minutes=20), duration_sec=60)
    post(
        client,
        pipeline="deploy",
        status="failure",
        started_at=ago(minutes=10),
        finished_at=ago(minutes=5),
        branch="release/2.0",
        commit="9e8d7c6b5a4f",
        triggered_by="bob",
    )
    post(client, pipeline="nightly", status="running", started_at=ago(seconds=10))

    page = Dashboard(client.get("/").text)
    assert page.kpis == {
        "total": "Total runs 4 Last 24 hours · 1 running",
        "success": "Succeeded 2 Finished green",
        "failure": "Failed 1 Finished red",
        "success_rate": "Success rate 66.7% Of 3 finished runs",
        "avg_duration": "Average duration 4m 4s Per finished run",
        "last_status": "Last status failure Finished 5 min ago",
    }
    assert page.rows == [
        ["nightly", "running", "—", "—", "—", "just now", "in progress", "—"],
        ["deploy", "failure", "release/2.0", "9e8d7c6", "5m 0s", "10 min ago", "5 min ago", "bob"],
        ["test", "success", "—", "—", "1m 0s", "20 min ago", "19 min ago", "—"],
        ["build", "success", "main", "3f2c1ab", "6m 12s", "30 min ago", "23 min ago", "alice"],
    ]


def test_times_carry_the_exact_utc_moment(client: TestClient) -> None:
    started = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    post(client, pipeline="old", status="success", started_at=started.isoformat(), duration_sec=9)
    html = client.get("/").text
    assert (
        '<time datetime="2026-01-02T03:04:05Z" title="2026-01-02 03:04:05 UTC" data-relative>'
        in html
    )


def test_fragment_request_returns_only_the_table(client: TestClient) -> None:
    post(client, pipeline="build", status="success", duration_sec=5)
    fragment = client.get("/", headers=FRAGMENT)
    assert fragment.status_code == 200
    assert fragment.text.lstrip().startswith("<table")
    assert "<html" not in fragment.text
    assert "data-kpi" not in fragment.text
    assert Dashboard(fragment.text).rows[0][:2] == ["build", "success"]
    assert "HX-Request" in fragment.headers["vary"]

    # Any other target gets the whole page: the layout follows both headers.
    other = client.get("/", headers={"HX-Request": "true", "HX-Target": "elsewhere"})
    assert "<html" in other.text


@pytest.mark.parametrize(("query", "selected", "phrase"), [
    ("?minutes=10080", "10080", "Last 7 days"),
    ("?minutes=43200", "43200", "Last 30 days"),
    ("?minutes=1440", "1440", "Last 24 hours"),
    ("?minutes=999", "1440", "Last 24 hours"),
    ("?minutes=soon", "1440", "Last 24 hours"),
    ("", "1440", "Last 24 hours"),
])  # fmt: skip
def test_window_selector_round_trips(
    client: TestClient, query: str, selected: str, phrase: str
) -> None:
    post(client, pipeline="recent", status="success", started_at=ago(hours=2), duration_sec=1)
    post(client, pipeline="older", status="failure", started_at=ago(days=3), duration_sec=1)
    page = client.get(f"/{query}")
    assert page.status_code == 200
    parsed = Dashboard(page.text)
    current = [link for link in parsed.links if link.get("aria-current") == "page"]
    assert [link["data-window"] for link in current] == [selected]
    assert current[0]["href"] == f"/?minutes={selected}"
    assert f'data-minutes="{selected}"' in page.text  # the live socket asks for the same window
    expected_total = "1" if selected == "1440" else "2"
    assert parsed.kpis["total"] == f"Total runs {expected_total} {phrase}"


def test_pipeline_names_are_escaped(client: TestClient) -> None:
    evil = "<script>alert('pwned')</script>"
    post(client, pipeline=evil, status="failure", branch="<b>main</b>", duration_sec=3)
    for response in (client.get("/"), client.get("/", headers=FRAGMENT)):
        assert evil not in response.text
        assert "<b>main</b>" not in response.text
        assert "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;" in response.text
    assert Dashboard(client.get("/").text).rows[0][0] == evil


def test_unreadable_database_answers_503_with_a_retry(tmp_path: Path) -> None:
    # A database that was never migrated: every read fails the way a broken database does.
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'unmigrated.db'}",
        data_dir=tmp_path,
        auto_migrate=False,
    )
    with TestClient(create_app(settings)) as client:
        page = client.get("/?minutes=10080")
        fragment = client.get("/", headers=FRAGMENT)
    assert page.status_code == 503
    assert "The dashboard could not read its database" in page.text
    assert "<title>" in page.text
    retry = [link for link in Dashboard(page.text).links if link.get("class") == "button"]
    assert retry == [{"class": "button", "href": "/?minutes=10080"}]
    assert fragment.status_code == 503
    assert "<html" not in fragment.text


def test_static_assets_are_local() -> None:
    """No CDN, no web font: the page must work on a machine without internet access."""
    templates = Path(formatting.__file__).parent / "templates"
    for template in templates.glob("*.html"):
        text = template.read_text(encoding="utf-8")
        assert "https://" not in text, template.name
        assert "//cdn" not in text, template.name


@pytest.mark.parametrize(("seconds", "text"), [
    (None, "—"),
    (0.42, "0.4s"),
    (3.0, "3s"),
    (42.4, "42s"),
    (372, "6m 12s"),
    (3599.6, "1h 0m"),
    (7380, "2h 3m"),
    (90000, "1d 1h"),
])  # fmt: skip
def test_duration(seconds: float | None, text: str) -> None:
    assert formatting.duration(seconds) == text


@pytest.mark.parametrize(("delta", "text"), [
    (timedelta(seconds=5), "just now"),
    (timedelta(seconds=59), "just now"),
    (timedelta(minutes=3, seconds=59), "3 min ago"),
    (timedelta(hours=5, minutes=59), "5 h ago"),
    (timedelta(days=1, hours=3), "yesterday"),
    (timedelta(days=12), "12 days ago"),
    (timedelta(days=45), "2026-10-09"),
])  # fmt: skip
def test_relative(delta: timedelta, text: str) -> None:
    assert formatting.relative(NOW - delta, NOW) == text


@pytest.mark.parametrize(("rate", "text"), [
    (None, "—"),
    (100.0, "100%"),
    (66.67, "66.7%"),
    (0.0, "0%"),
])  # fmt: skip
def test_percent(rate: float | None, text: str) -> None:
    assert formatting.percent(rate) == text
