"""The jobs page (``GET /jobs``), the sync page (``GET /sync``) and the dashboard's GitHub line.

Runs and jobs are stored with the sync stage's own functions, as a sync from GitHub stores them,
on SQLite and PostgreSQL. Pages are read the way a person reads them: the text of table cells,
cards and links.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from itertools import count

import pytest
from fastapi.testclient import TestClient

from cipulse.app import create_app
from cipulse.db import Database
from cipulse.github.schemas import JobData, RunData
from cipulse.settings import Settings
from cipulse.sync import repository as sync_repository

REPO = "octo/app"
GITHUB = f"https://github.com/{REPO}"
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}

# -- reading HTML ---------------------------------------------------------------------------


@dataclass
class Node:
    tag: str
    attrs: dict[str, str | None]
    children: list[Node | str] = field(default_factory=list)

    def iter(self) -> Iterator[Node]:
        for child in self.children:
            if isinstance(child, Node):
                yield child
                yield from child.iter()

    def find_all(self, tag: str | None = None, **attrs: str | bool) -> list[Node]:
        """Descendants by tag and attributes (``class_`` matches one class; True: present)."""
        found = []
        for node in self.iter():
            if tag is not None and node.tag != tag:
                continue
            ok = True
            for name, want in attrs.items():
                if name == "class_":
                    ok &= str(want) in (node.attrs.get("class") or "").split()
                else:
                    key = name.replace("_", "-")
                    ok &= key in node.attrs if want is True else node.attrs.get(key) == want
            if ok:
                found.append(node)
        return found

    def find(self, tag: str | None = None, **attrs: str | bool) -> Node:
        found = self.find_all(tag, **attrs)
        assert found, f"no <{tag} {attrs}>"
        return found[0]

    @property
    def text(self) -> str:
        """What a sighted reader sees: screen-reader-only text is left out."""
        parts: list[str] = []

        def walk(node: Node) -> None:
            if "visually-hidden" in (node.attrs.get("class") or "").split():
                return
            for child in node.children:
                if isinstance(child, str):
                    parts.append(child)
                elif child.tag not in ("title", "script", "style"):
                    walk(child)

        walk(self)
        return " ".join("".join(parts).split())


class TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, dict(attrs))
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(html: str) -> Node:
    builder = TreeBuilder()
    builder.feed(html)
    builder.close()
    return builder.root


def job_rows(html: str) -> list[dict[str, str]]:
    """One dict per job: its name and the text of each cell by column."""
    rows = []
    for body in parse(html).find_all("tbody", class_="job"):
        row = body.find("tr", class_="job-row")
        cells = {"name": row.find("th").text}
        cells.update({td.attrs["data-col"] or "": td.text for td in row.find_all("td")})
        rows.append(cells)
    return rows


def names(html: str) -> list[str]:
    return [row["name"] for row in job_rows(html)]


def job_body(html: str, name: str) -> Node:
    return next(
        b for b in parse(html).find_all("tbody", class_="job") if b.attrs["data-job"] == name
    )


# -- storing runs as a sync does --------------------------------------------------------------

_ids = count(5000)


@dataclass
class Seeded:
    now: datetime
    # job name -> moments of the runs where it counted (for the sparkline's days)
    counted_at: dict[str, list[datetime]] = field(default_factory=dict)


def run_data(
    github_id: int,
    created: datetime,
    *,
    attempt: int = 1,
    branch: str = "main",
    url: str | None = None,
) -> RunData:
    return RunData(
        github_id=github_id,
        run_attempt=attempt,
        repository_github_id=None,
        workflow_github_id=None,
        name="CI",
        run_number=github_id - 90,
        event="push",
        status="completed",
        conclusion=None,
        head_branch=branch,
        head_sha="3f2c1ab9d0e8f7",
        actor_login="alice",
        html_url=url or f"{GITHUB}/actions/runs/{github_id}",
        created_at=created,
        run_started_at=created,
        updated_at=created + timedelta(minutes=5),
    )


def job_data(run: RunData, name: str, conclusion: str) -> JobData:
    job_id = next(_ids)
    return JobData(
        github_id=job_id,
        run_github_id=run.github_id,
        run_attempt=run.run_attempt,
        name=name,
        status="completed",
        conclusion=conclusion,
        head_sha=None,
        head_branch=None,
        workflow_name="CI",
        html_url=f"{GITHUB}/actions/runs/{run.github_id}/job/{job_id}",
        created_at=run.created_at,
        started_at=run.created_at,
        completed_at=run.created_at + timedelta(minutes=3),
        runner_name=None,
        runner_group_name=None,
    )


def store(
    db_url: str,
    runs: list[tuple[RunData, list[tuple[str, str]]]],
    *,
    repo: str = REPO,
    tracked: bool = True,
) -> None:
    db = Database(db_url)
    with db.write() as uow:
        found = sync_repository.ensure_repo(uow.session, repo)
        if tracked:
            sync_repository.track_repo(uow.session, repo, [])
        found.default_branch = "main"
        found.html_url = f"https://github.com/{repo}"
        for run, jobs in runs:
            sync_repository.upsert_runs(uow.session, found.id, [(run, None)])
            sync_repository.store_jobs(
                uow.session,
                repo_id=found.id,
                run=run,
                workflow_id=None,
                jobs=[job_data(run, name, conclusion) for name, conclusion in jobs],
            )
    db.dispose()


def set_state(db_url: str, repo: str = REPO, **values: object) -> None:
    db = Database(db_url)
    with db.write() as uow:
        found = sync_repository.ensure_repo(uow.session, repo)
        state = sync_repository.state(uow.session, found.id)
        for key, value in values.items():
            setattr(state, key, value)
    db.dispose()


def seed_history(db_url: str) -> Seeded:
    """Four runs over 20 days; run 101 failed ``test`` in attempt 1 and passed it in attempt 2.

    Counted (30 days, all branches): build 5 runs / 3 failed, e2e 2 / 1, test 4 / 2 (flaky 1),
    lint 1 / 0 (its cancelled run does not count), docs nothing (skipped only).
    """
    now = datetime.now(UTC)
    a1 = run_data(
        101, now - timedelta(days=2, hours=1), url=f"{GITHUB}/actions/runs/101/attempts/1"
    )
    a2 = run_data(101, now - timedelta(days=2), attempt=2)
    b = run_data(102, now - timedelta(days=10))
    c = run_data(103, now - timedelta(days=1), branch="feature/cache")
    d = run_data(104, now - timedelta(days=20))
    plan = [
        (a1, [("build", "success"), ("test", "failure"),
              ("lint", "cancelled"), ("docs", "skipped")]),
        (a2, [("build", "success"), ("test", "success")]),
        (b, [("build", "failure"), ("test", "success"), ("lint", "success"), ("e2e", "failure")]),
        (c, [("build", "failure"), ("test", "failure")]),
        (d, [("build", "timed_out"), ("e2e", "success")]),
    ]  # fmt: skip
    store(db_url, plan)
    set_state(db_url, last_success_at=now - timedelta(minutes=12), last_started_at=now)
    seeded = Seeded(now=now)
    for run, jobs in plan:
        for name, conclusion in jobs:
            if conclusion not in ("cancelled", "skipped"):
                seeded.counted_at.setdefault(name, []).append(run.created_at)
    return seeded


# -- the jobs page ----------------------------------------------------------------------------

COLUMNS = ("name", "totalRuns", "failures", "successes", "failureRate", "last7Days", "flaky")


def numbers(html: str) -> list[tuple[str, ...]]:
    return [tuple(row[c] for c in COLUMNS) for row in job_rows(html)]


def test_counts_follow_the_counting_rule(client: TestClient, db_url: str) -> None:
    seed_history(db_url)
    page = client.get(f"/jobs?repo={REPO}")
    assert page.status_code == 200
    assert numbers(page.text) == [
        ("build", "5", "3", "2", "60%", "33.3%", "0"),
        ("e2e", "2", "1", "1", "50%", "—", "0"),  # ties on rate go by name
        ("test", "4", "2", "2", "50%", "66.7%", "1"),  # failed in attempt 1, passed in 2
        ("lint", "1", "0", "1", "0%", "—", "0"),  # its cancelled run is not counted
    ]  # docs only ever skipped: not listed
    tree = parse(page.text)
    assert "last synced 12 min ago" in tree.find("p", class_="freshness").text
    assert "4 workflow runs · 1 flaky re-run" in tree.find("section", class_="panel").text

    # The JSON API counts the same way.
    api = client.get("/api/ci-data", params={"repo": REPO}).json()["jobStats"]
    assert {name: (s["totalRuns"], s["failures"], s["flaky"]) for name, s in api.items()} == {
        "build": (5, 3, 0),
        "e2e": (2, 1, 0),
        "test": (4, 2, 1),
        "lint": (1, 0, 0),
    }


def test_the_only_tracked_repository_is_the_default(client: TestClient, db_url: str) -> None:
    seed_history(db_url)
    store(db_url, [], repo="octo/zzz-untracked", tracked=False)
    tree = parse(client.get("/jobs").text)
    assert tree.find("option", selected=True).attrs["value"] == REPO
    options = [o.text for o in tree.find("select").find_all("option")]
    assert options == [REPO, "octo/zzz-untracked (not tracked)"]
    assert tree.find("a", data_sort="name").attrs["href"].startswith("/jobs?repo=octo%2Fapp&")


@pytest.mark.parametrize(("sort", "direction", "expected"), [
    ("failureRate", "desc", ["build", "e2e", "test", "lint"]),
    ("failureRate", "asc", ["lint", "e2e", "test", "build"]),  # ties still A to Z
    ("name", "asc", ["build", "e2e", "lint", "test"]),
    ("name", "desc", ["test", "lint", "e2e", "build"]),
    ("totalRuns", "desc", ["build", "test", "e2e", "lint"]),
    ("last7Days", "desc", ["test", "build", "e2e", "lint"]),  # no runs this week: last
    ("last7Days", "asc", ["build", "test", "e2e", "lint"]),
    ("lastFailure", "desc", ["build", "test", "e2e", "lint"]),
    ("nonsense", "sideways", ["build", "e2e", "test", "lint"]),  # the default order
])  # fmt: skip
def test_sorting(
    client: TestClient, db_url: str, sort: str, direction: str, expected: list[str]
) -> None:
    seed_history(db_url)
    page = client.get("/jobs", params={"repo": REPO, "sort": sort, "dir": direction})
    assert names(page.text) == expected
    tree = parse(page.text)
    sorted_by = tree.find_all("th", aria_sort=True)
    key = sort if sort != "nonsense" else "failureRate"
    assert [th.find("a").attrs["data-sort"] for th in sorted_by] == [key]
    state = "descending" if direction in ("desc", "sideways") else "ascending"
    assert sorted_by[0].attrs["aria-sort"] == state
    # A second click on the same header turns the order round; the other headers keep the rest.
    flip = "asc" if state == "descending" else "desc"
    assert (
        sorted_by[0].find("a").attrs["href"]
        == f"/jobs?repo=octo%2Fapp&days=30&sort={key}&dir={flip}"
    )
    by_name = tree.find("a", data_sort="name").attrs["href"]
    assert by_name == "/jobs?repo=octo%2Fapp&days=30&sort=name&dir=" + (
        flip if key == "name" else "asc"
    )


def test_branch_and_window_round_trip_in_the_url(client: TestClient, db_url: str) -> None:
    seed_history(db_url)
    page = client.get("/jobs", params={"repo": REPO, "branch": "main", "days": "7", "sort": "name"})
    assert numbers(page.text) == [
        ("build", "2", "0", "2", "0%", "0%", "0"),
        ("test", "2", "1", "1", "50%", "50%", "1"),
    ]  # run 103 is on another branch; 102 and 104 are older than 7 days
    tree = parse(page.text)
    assert tree.find("input", name="branch").attrs["value"] == "main"
    assert tree.find("input", name="days", checked=True).attrs["value"] == "7"
    assert tree.find("input", name="sort").attrs["value"] == "name"
    assert [o.attrs["value"] for o in tree.find("datalist").find_all("option")] == ["main"]
    assert "branch main · last 7 days" in tree.find("p", class_="page-sub").text
    link = tree.find("a", data_sort="failures").attrs["href"]
    assert link == "/jobs?repo=octo%2Fapp&branch=main&days=7&sort=failures&dir=desc"
    assert names(client.get(link).text) == ["test", "build"]

    wider = client.get("/jobs", params={"repo": REPO, "branch": "main", "days": "30"})
    assert numbers(wider.text) == [
        ("build", "4", "2", "2", "50%", "0%", "0"),
        ("e2e", "2", "1", "1", "50%", "—", "0"),
        ("test", "3", "1", "2", "33.3%", "50%", "1"),
        ("lint", "1", "0", "1", "0%", "—", "0"),
    ]
    # A window that is not offered falls back to 30 days; an empty branch means all branches.
    fallback = parse(client.get("/jobs", params={"repo": REPO, "days": "5", "branch": ""}).text)
    assert fallback.find("input", name="days", checked=True).attrs["value"] == "30"
    assert "all branches · last 30 days" in fallback.find("p", class_="page-sub").text


def test_sparkline_has_one_point_per_day_with_runs(client: TestClient, db_url: str) -> None:
    seeded = seed_history(db_url)
    page = client.get(f"/jobs?repo={REPO}")
    api = client.get("/api/ci-data", params={"repo": REPO}).json()["jobStats"]
    for name, moments in seeded.counted_at.items():
        if name == "docs":
            continue
        days_with_runs = len({m.date() for m in moments})
        daily = api[name]["dailyFailureRate"]
        assert len(daily) == 31
        assert sum(v is not None for v in daily) == days_with_runs
        svg = job_body(page.text, name).find("svg", class_="spark")
        assert svg.attrs["data-points"] == str(days_with_runs)
        vertices = [
            (float(x), float(y))
            for path in svg.find_all("path", class_="spark-line")
            for x, y in re.findall(r"[ML]([\d.]+),([\d.]+)", path.attrs["d"] or "")
        ]
        vertices += [
            (float(c.attrs["cx"] or 0), float(c.attrs["cy"] or 0))
            for c in svg.find_all("circle", class_="spark-dot")
        ]
        assert len(vertices) == days_with_runs, name
        assert all(0 <= x <= 120 and 3 <= y <= 25 for x, y in vertices)
    # build failed on three of its days and passed on one: drawn at the top and the bottom.
    build = job_body(page.text, "build").find("svg")
    heights = {c.attrs["cy"] for c in build.find_all("circle")}
    heights |= set(re.findall(r",([\d.]+)", build.find_all("path")[-1].attrs["d"] or ""))
    assert {"3.0", "3"} & heights and {"25.0", "25"} & heights


def test_recent_failures_link_to_github(client: TestClient, db_url: str) -> None:
    seed_history(db_url)
    page = client.get(f"/jobs?repo={REPO}")
    build = job_body(page.text, "build")
    details = build.find("details")
    assert "open" not in details.attrs  # folded until asked for
    assert details.find("summary").text == "Last 3 failures"
    items = details.find_all("li")
    assert [li.find("span", class_="failure-run").text for li in items] == [
        "run #13",
        "run #12",
        "run #14",
    ]  # newest first
    assert items[2].find("span", class_="badge").text == "timed out"
    for li, run_id in zip(items, (103, 102, 104), strict=True):
        run_link, job_link = li.find_all("a")
        assert run_link.attrs["href"] == f"{GITHUB}/actions/runs/{run_id}"
        assert (job_link.attrs["href"] or "").startswith(f"{GITHUB}/actions/runs/{run_id}/job/")
        for link in (run_link, job_link):
            assert link.attrs["target"] == "_blank"
            assert "noopener" in (link.attrs["rel"] or "").split()
    last = build.find("td", data_col="lastFailure")
    assert last.text == "yesterday run #13 job"
    assert last.find("a").attrs["href"] == f"{GITHUB}/actions/runs/103"

    # The failed first attempt keeps its own link.
    test_items = job_body(page.text, "test").find("details").find_all("li")
    assert test_items[1].find("a").attrs["href"] == f"{GITHUB}/actions/runs/101/attempts/1"
    assert job_body(page.text, "lint").find_all("details") == []


def test_unknown_repository_is_a_404_page(client: TestClient, db_url: str) -> None:
    seed_history(db_url)
    page = client.get("/jobs?repo=nobody/nothing")
    assert page.status_code == 404
    tree = parse(page.text)
    assert tree.find("header", class_="topbar")  # in the layout, with the navigation
    assert "nobody/nothing is not a known repository" in tree.find("h1").text
    assert [a.attrs["href"] for a in tree.find("ul", class_="repo-list").find_all("a")] == [
        "/jobs?repo=octo%2Fapp"
    ]


def test_no_repository_explains_how_to_add_one(
    client: TestClient, make_settings: Callable[..., Settings]
) -> None:
    page = client.get("/jobs")
    assert page.status_code == 200
    text = parse(page.text).find("main").text
    assert "No repository yet" in text
    for hint in ("cipulse repo add OWNER/NAME", "cipulse sync", "CIPULSE_REPOS"):
        assert hint in text
    assert "No GitHub token is set on this server yet: set CIPULSE_GITHUB_TOKEN" in text
    nav = parse(page.text).find("nav", class_="sections")
    links = [(a.text, a.attrs.get("aria-current")) for a in nav.find_all("a")]
    assert [name for name, current in links if current] == ["Jobs"]  # one section is current
    names = [name for name, _ in links]
    assert {"Dashboard", "Overview", "Jobs", "Compare", "Sync", "Webhooks"} <= set(names)
    with TestClient(create_app(make_settings(github_token="ghp_example"))) as other:
        assert "A GitHub token is set on this server." in other.get("/jobs").text


def test_repository_without_counted_jobs(client: TestClient, db_url: str) -> None:
    now = datetime.now(UTC)
    run = run_data(301, now - timedelta(hours=3))
    store(db_url, [(run, [("deploy", "cancelled"), ("docs", "skipped")])], tracked=False)
    page = client.get(f"/jobs?repo={REPO}")
    assert page.status_code == 200
    tree = parse(page.text)
    assert job_rows(page.text) == []
    empty = tree.find("section", data_empty_state=True).text
    assert "No jobs counted for octo/app" in empty
    assert "cipulse repo add octo/app" in empty  # not tracked yet
    assert "cipulse sync octo/app" in empty
    assert "Cancelled and skipped jobs do not count" in empty
    assert "never synced" in tree.find("p", class_="freshness").text


def test_names_are_escaped_and_unicode_is_kept(client: TestClient, db_url: str) -> None:
    evil = "<script>alert('pwned')</script>"
    now = datetime.now(UTC)
    run = run_data(401, now - timedelta(hours=2), branch="feature/ü")
    store(db_url, [(run, [(evil, "failure"), ("Тесты 🚀", "success")])])
    page = client.get("/jobs", params={"repo": REPO, "branch": "feature/ü", "sort": "name"})
    assert evil not in page.text
    assert "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;" in page.text
    assert names(page.text) == [evil, "Тесты 🚀"]
    link = parse(page.text).find("a", data_sort="failures").attrs["href"]
    assert link == "/jobs?repo=octo%2Fapp&branch=feature%2F%C3%BC&days=30&sort=failures&dir=desc"
    assert names(client.get(link).text) == [evil, "Тесты 🚀"]


# -- the sync page and the dashboard's GitHub line ---------------------------------------------

ERROR = "GitHub rejected the token (401 Bad credentials): check CIPULSE_GITHUB_TOKEN"


def failing_sync(db_url: str) -> datetime:
    """octo/app synced 2 h ago, failed 3 min ago; returns when the rate limit resets."""
    seed_history(db_url)
    now = datetime.now(UTC)
    reset = now + timedelta(minutes=40)
    set_state(
        db_url,
        last_success_at=now - timedelta(hours=2),
        last_started_at=now - timedelta(minutes=3),
        last_error=ERROR + "\nsecond line of detail",
        last_error_at=now - timedelta(minutes=3),
        last_requests=12,
        last_not_modified=9,
        rate_limit=5000,
        rate_remaining=4870,
        rate_reset_at=reset,
    )
    store(db_url, [], repo="octo/quiet", tracked=False)
    return reset


def card(html: str, repo: str) -> Node:
    return next(a for a in parse(html).find_all("article") if a.attrs.get("data-repo") == repo)


def test_sync_page_shows_last_error_and_budget(client: TestClient, db_url: str) -> None:
    reset = failing_sync(db_url)
    page = client.get("/sync")
    assert page.status_code == 200
    app = card(page.text, REPO)
    assert "data-error" in app.attrs
    callout = app.find("div", data_last_error=True)
    assert callout.find("p", class_="callout-line").text == f"Last sync failed 3 min ago: {ERROR}"
    assert "The 4 runs stored before still show on the Jobs page, as of 2 h ago." in callout.text
    facts = {div.find("dt").text: div.find("dd").text for div in app.find("dl").find_all("div")}
    assert facts == {
        "Last success": "2 h ago",
        "Branches": "all (default main)",
        "Runs stored": "4",  # runs, not attempts: one of them was re-run
        "Last sync spent": "12 requests, 9 free (304 Not Modified)",
        "GitHub API budget": f"4,870 / 5,000 left · resets at {reset:%H:%M} UTC",
    }
    meter = app.find("span", role="meter")
    assert (meter.attrs["aria-valuenow"], meter.attrs["aria-valuemax"]) == ("4870", "5000")
    assert app.find("span", class_="pill").text == "tracked"
    assert "hidden" in app.find("span", data_syncing_badge=True).attrs
    assert app.find("button", data_sync_now=True).text == "Sync now"

    quiet = card(page.text, "octo/quiet")
    assert "data-error" not in quiet.attrs
    facts = {div.find("dt").text: div.find("dd").text for div in quiet.find("dl").find_all("div")}
    assert facts["Last success"] == "never"
    assert facts["GitHub API budget"] == "not read yet"
    assert quiet.find("span", class_="pill").text == "not tracked"
    tree = parse(page.text)
    assert "hidden" in tree.find("form", id="admin-token").attrs  # no admin token needed
    assert tree.find("div", class_="budget-summary").text == "API calls left 4,870 / 5,000"


def test_sync_page_marks_a_repository_being_synced(
    client: TestClient, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_history(db_url)
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    monkeypatch.setattr(ctx.sync, "syncing", lambda: {REPO})
    app = card(client.get("/sync").text, REPO)
    assert app.attrs["data-syncing"] == "true"
    assert "hidden" not in app.find("span", data_syncing_badge=True).attrs
    assert "disabled" in app.find("button", data_sync_now=True).attrs


def test_sync_page_asks_for_the_admin_token_when_one_is_set(
    make_settings: Callable[..., Settings], db_url: str
) -> None:
    seed_history(db_url)
    with TestClient(create_app(make_settings(admin_token="s3cret"))) as client:
        page = client.get("/sync").text
        refused = client.post(f"/api/refresh?repo={REPO}")
    form = parse(page).find("form", id="admin-token")
    assert "hidden" not in form.attrs
    assert "s3cret" not in page
    assert refused.status_code == 401  # what the page's script tells the user about


def test_sync_page_empty_state(client: TestClient) -> None:
    page = client.get("/sync")
    assert page.status_code == 200
    text = parse(page.text).find("main").text
    assert "No repository is synced yet" in text
    assert "cipulse repo add OWNER/NAME" in text
    assert "CIPULSE_REPOS=owner/name" in text
    assert "No GitHub token is set" in text


def github_line(client: TestClient) -> Node | None:
    found = parse(client.get("/").text).find_all("p", data_github_line=True)
    return found[0] if found else None


def test_dashboard_has_no_github_line_without_a_tracked_repository(
    client: TestClient, db_url: str
) -> None:
    store(db_url, [], tracked=False)
    assert github_line(client) is None


def test_dashboard_github_line_when_syncs_succeed(client: TestClient, db_url: str) -> None:
    seed_history(db_url)
    set_state(db_url, rate_limit=5000, rate_remaining=4870)
    line = github_line(client)
    assert line is not None
    assert line.attrs["data-tone"] == "ok"
    assert line.text == "GitHub: octo/app synced 12 min ago · 4,870/5,000 API calls left"
    assert line.find("a").attrs["href"] == "/sync"


def test_dashboard_github_line_when_the_last_sync_failed(client: TestClient, db_url: str) -> None:
    failing_sync(db_url)
    line = github_line(client)
    assert line is not None
    assert line.attrs["data-tone"] == "failure"
    assert line.text == (
        f"octo/app: last sync failed — {ERROR} · showing data from 2 h ago "
        "· 4,870/5,000 API calls left"
    )


def test_dashboard_github_line_before_the_first_sync(client: TestClient, db_url: str) -> None:
    store(db_url, [])
    line = github_line(client)
    assert line is not None
    assert line.text == "GitHub: octo/app not synced yet"
