"""JUnit reports pushed over HTTP and read back as test history, on SQLite and PostgreSQL."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from cipulse.app import create_app
from cipulse.db import Database
from cipulse.models import Job, Repository, TestCase, TestReport, TestResult, WorkflowRun
from cipulse.testreports import parse
from cipulse.testreports import service as testreports

FIXTURES = Path(__file__).resolve().parent.parent.parent / "shared" / "fixtures" / "real" / "junit"
FLAKY = FIXTURES / "surefire" / "apache-surefire-TEST-org.acme.FlakyTest.xml"
PYTEST = FIXTURES / "pytest" / "mikepenz-python-report-flaky.xml"
XML = "application/xml"


def junit(outcome: str, *, name: str = "test_login", time: str = "0.5") -> bytes:
    body = {
        "passed": "",
        "failed": '<failure message="assert 1 == 2">trace</failure>',
        "error": '<error message="boom"/>',
        "skipped": "<skipped/>",
    }[outcome]
    return (
        f'<testsuite name="auth"><testcase classname="tests.test_auth" name="{name}" '
        f'time="{time}">{body}</testcase></testsuite>'
    ).encode()


def post(client: TestClient, data: bytes, **params: str):  # type: ignore[no-untyped-def]
    return client.post(
        "/api/test-reports", content=data, params=params, headers={"Content-Type": XML}
    )


def count(db_url: str, model: type) -> int:
    db = Database(db_url)
    try:
        with db.read() as session:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)
    finally:
        db.dispose()


def add_github_run(db_url: str, *, sha: str = "a" * 40) -> tuple[int, int, int]:
    """A repository with one run attempt and one job, as the sync stores them."""
    db = Database(db_url)
    try:
        with db.write() as uow:
            session = uow.session
            repo = Repository(owner="octo", name="app", full_name="octo/app", github_id=1)
            session.add(repo)
            session.flush()
            run = WorkflowRun(
                github_id=9001,
                run_attempt=1,
                repository_id=repo.id,
                name="CI",
                run_number=42,
                status="completed",
                conclusion="failure",
                head_branch="main",
                head_sha=sha,
                html_url="https://github.com/octo/app/actions/runs/9001",
                created_at=datetime.now(UTC) - timedelta(hours=1),
            )
            session.add(run)
            session.flush()
            job = Job(
                github_id=7001,
                run_id=run.id,
                name="tests (3.12)",
                status="completed",
                conclusion="failure",
                head_sha=sha,
            )
            session.add(job)
            session.flush()
            return repo.id, run.id, job.id
    finally:
        db.dispose()


def test_post_raw_xml_counts_and_is_idempotent(client: TestClient, db_url: str) -> None:
    data = PYTEST.read_bytes()
    first = post(client, data, repository="acme/web", commit="abc", branch="main")
    assert first.status_code == 201, first.text
    (report,) = first.json()["reports"]
    assert report["created"] is True
    assert (report["tests"], report["passed"], report["failed"]) == (4, 2, 2)

    again = post(client, data, repository="acme/web", commit="abc", branch="main")
    assert again.status_code == 200
    assert again.json()["reports"][0]["report_id"] == report["report_id"]
    assert again.json()["reports"][0]["created"] is False
    assert count(db_url, TestReport) == 1
    assert count(db_url, TestResult) == 4

    # The same bytes from another CI run are another report of the same tests.
    other = post(client, data, repository="acme/web", commit="def", run_id="77")
    assert other.status_code == 201
    assert count(db_url, TestReport) == 2
    assert count(db_url, TestCase) == 4


def test_metadata_from_headers(client: TestClient) -> None:
    response = client.post(
        "/api/test-reports",
        content=junit("failed"),
        headers={
            "Content-Type": XML,
            "X-Cipulse-Repository": "acme/api",
            "X-Cipulse-Commit": "c0ffee",
            "X-Cipulse-Branch": "feature/x",
        },
    )
    assert response.status_code == 201
    test_id = client.get("/api/tests", params={"project": "acme/api"}).json()["items"][0]["id"]
    (entry,) = client.get(f"/api/tests/{test_id}").json()["history"]
    assert (entry["commit_sha"], entry["branch"]) == ("c0ffee", "feature/x")


def test_multipart_and_gzip(client: TestClient, db_url: str) -> None:
    response = client.post(
        "/api/test-reports",
        files=[
            ("file", ("a.xml", junit("passed", name="a"), XML)),
            ("file", ("b.xml", junit("failed", name="b"), XML)),
        ],
        params={"repository": "acme/web"},
    )
    assert response.status_code == 201, response.text
    names = [r["name"] for r in response.json()["reports"]]
    assert names == ["a.xml", "b.xml"]

    zipped = client.post(
        "/api/test-reports",
        content=gzip.compress(FLAKY.read_bytes()),
        headers={"Content-Type": XML, "Content-Encoding": "gzip"},
    )
    assert zipped.status_code == 201, zipped.text
    assert zipped.json()["reports"][0]["flaky"] == 1
    assert count(db_url, TestReport) == 3


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "empty"),
        (b"<testsuites><testsuite><testcase name='x'>", "truncated"),
        (b"not xml at all", "not well-formed"),
        (b"<suites/>", "not a JUnit report"),
        (
            b'<!DOCTYPE x [<!ENTITY a "a"><!ENTITY b "&a;&a;">]><testsuite>&b;</testsuite>',
            "entities",
        ),
    ],
)
def test_broken_reports_are_refused_and_nothing_is_stored(
    client: TestClient, db_url: str, data: bytes, fragment: str
) -> None:
    response = post(client, data)
    assert response.status_code == 422
    assert fragment in response.json()["detail"]
    assert count(db_url, TestReport) == 0


def test_one_broken_part_stores_nothing(client: TestClient, db_url: str) -> None:
    response = client.post(
        "/api/test-reports",
        files=[
            ("file", ("good.xml", junit("passed"), XML)),
            ("file", ("bad.xml", b"<testsuite>", XML)),
        ],
    )
    assert response.status_code == 422
    assert response.json()["detail"].startswith("bad.xml:")
    assert count(db_url, TestReport) == 0


def test_multipart_without_a_file_part(client: TestClient) -> None:
    response = client.post("/api/test-reports", files={"note": (None, "hello")})
    assert response.status_code == 422
    assert "no file part" in response.json()["detail"]
    form = client.post("/api/test-reports", data={"report": "<testsuite/>"})
    assert form.status_code == 415


def test_size_cap(make_settings, db_url: str) -> None:  # type: ignore[no-untyped-def]
    app = create_app(make_settings(test_report_max_mb=0.001))
    with TestClient(app) as client:
        big = junit("passed", name="x" * 2000)
        response = post(client, big)
        assert response.status_code == 413
        assert "CIPULSE_TEST_REPORT_MAX_MB" in response.json()["detail"]
        bomb = gzip.compress(b"<testsuite>" + b" " * 5_000_000 + b"</testsuite>")
        response = client.post(
            "/api/test-reports",
            content=bomb,
            headers={"Content-Type": XML, "Content-Encoding": "gzip"},
        )
        assert response.status_code == 413
        assert post(client, junit("passed")).status_code == 201
    assert count(db_url, TestReport) == 1


def test_unsupported_encoding_and_bad_attempt(client: TestClient) -> None:
    response = client.post(
        "/api/test-reports",
        content=junit("passed"),
        headers={"Content-Type": XML, "Content-Encoding": "br"},
    )
    assert response.status_code == 415
    assert post(client, junit("passed"), run_attempt="first").status_code == 422


def test_ingest_token(make_settings) -> None:  # type: ignore[no-untyped-def]
    app = create_app(make_settings(ingest_token="s3cret"))
    with TestClient(app) as client:
        refused = post(client, junit("passed"))
        assert refused.status_code == 401
        assert "s3cret" not in refused.text
        ok = client.post(
            "/api/test-reports",
            content=junit("passed"),
            headers={"Content-Type": XML, "Authorization": "Bearer s3cret"},
        )
        assert ok.status_code == 201


def test_flaky_on_one_commit_and_not_across_commits(client: TestClient) -> None:
    post(client, junit("failed"), repository="acme/web", commit="abc", run_id="1")
    post(client, junit("passed"), repository="acme/web", commit="abc", run_id="2")
    post(client, junit("failed", name="test_other"), repository="acme/web", commit="abc")
    post(client, junit("passed", name="test_other"), repository="acme/web", commit="def")

    flaky = client.get("/api/tests/flaky").json()
    assert [t["name"] for t in flaky] == ["test_login"]
    assert flaky[0]["flaky_commits"] == 1 and flaky[0]["retry_passes"] == 0


def test_flaky_by_retry_inside_one_report(client: TestClient) -> None:
    post(client, FLAKY.read_bytes(), repository="acme/java")
    flaky = client.get("/api/tests/flaky", params={"project": "acme/java"}).json()
    assert [(t["classname"], t["name"], t["retry_passes"]) for t in flaky] == [
        ("org.acme.FlakyTest", "testFlaky", 1)
    ]
    assert client.get("/api/tests/flaky", params={"project": "other"}).json() == []
    detail = client.get(flaky[0]["url"].replace("/tests/", "/api/tests/")).json()
    (entry,) = detail["history"]
    assert entry["outcome"] == "passed" and entry["flaky"] and entry["attempts"] == 5
    assert [r["outcome"] for r in entry["retries"]] == ["failed", "failed", "failed", "error"]
    # Retries are evidence, not extra runs or passes.
    assert (detail["test"]["runs"], detail["test"]["passes"]) == (1, 1)


def test_flaky_window(client: TestClient, db_url: str) -> None:
    post(client, junit("failed"), repository="acme/web", commit="abc", run_id="1")
    post(client, junit("passed"), repository="acme/web", commit="abc", run_id="2")
    db = Database(db_url)
    try:
        with db.read() as session:
            now = datetime.now(UTC)
            assert testreports.flaky_tests(session, since=now - timedelta(days=14))
            assert testreports.flaky_tests(session, since=now + timedelta(minutes=1)) == []
    finally:
        db.dispose()


def test_history_most_failing_and_slowest(client: TestClient) -> None:
    for run, outcome in enumerate(["failed", "failed", "passed"]):
        post(client, junit(outcome, time="0.1"), repository="acme/web", run_id=str(run))
    for run in range(3):
        post(client, junit("passed", name="test_slow", time="9.5"), run_id=f"s{run}")

    failing = client.get("/api/tests", params={"sort": "failing"}).json()
    assert failing["total"] == 2
    top = failing["items"][0]
    assert (top["name"], top["runs"], top["failures"]) == ("test_login", 3, 2)
    assert top["failure_rate"] == pytest.approx(2 / 3, abs=1e-3)

    slowest = client.get("/api/tests", params={"sort": "slowest"}).json()["items"]
    assert slowest[0]["name"] == "test_slow"
    assert slowest[0]["avg_duration_seconds"] == pytest.approx(9.5)

    only = client.get("/api/tests", params={"failing_only": "true"}).json()["items"]
    assert [t["name"] for t in only] == ["test_login"]
    assert client.get("/api/tests", params={"q": "SLOW"}).json()["items"][0]["name"] == "test_slow"

    detail = client.get(f"/api/tests/{top['id']}").json()
    assert [h["outcome"] for h in detail["history"]] == ["passed", "failed", "failed"]
    assert detail["history"][-1]["message"] == "assert 1 == 2"


def test_bad_queries(client: TestClient) -> None:
    assert client.get("/api/tests/999999").status_code == 404
    assert client.get("/api/tests", params={"sort": "random"}).status_code == 422
    assert client.get("/api/tests", params={"days": "0"}).status_code == 422


def test_report_linked_to_a_github_run(client: TestClient, db_url: str) -> None:
    _repo_id, run_id, job_id = add_github_run(db_url)
    response = post(
        client,
        PYTEST.read_bytes(),
        repository="octo/app",
        run_id="9001",
        run_attempt="1",
        job="7001",
    )
    assert response.status_code == 201
    (report,) = response.json()["reports"]
    assert (report["workflow_run_id"], report["job_id"]) == (run_id, job_id)

    run = client.get(f"/api/workflow-runs/{run_id}/tests").json()
    assert (run["tests"], run["failed"]) == (4, 2)
    assert [r["outcome"] for r in run["results"][:2]] == ["failed", "failed"]
    failing = client.get(f"/api/workflow-runs/{run_id}/tests", params={"outcome": "failed"})
    assert {r["name"] for r in failing.json()["results"]} == {
        "test_which_fails",
        "test_with_error",
    }
    test_id = run["results"][0]["test_case_id"]
    (entry,) = client.get(f"/api/tests/{test_id}").json()["history"]
    assert entry["run_number"] == 42 and entry["job_name"] == "tests (3.12)"
    assert entry["commit_sha"] == "a" * 40 and entry["branch"] == "main"


def test_store_report_for_an_artifact(db_url: str) -> None:
    """The artifacts stage calls the service with database ids; the run fills in the rest."""
    repo_id, run_id, _job_id = add_github_run(db_url, sha="b" * 40)
    db = Database(db_url)
    try:
        with db.write() as uow:
            stored = testreports.store_report(
                uow.session,
                data=FLAKY.read_bytes(),
                repository_id=None,
                workflow_run_id=run_id,
                job_id=None,
                source="artifact",
                name="surefire-reports/TEST-org.acme.FlakyTest.xml",
            )
        assert stored.created and (stored.tests, stored.passed, stored.flaky) == (2, 2, 1)
        with db.write() as uow:
            again = testreports.store_report(
                uow.session,
                data=FLAKY.read_bytes(),
                repository_id=None,
                workflow_run_id=run_id,
                job_id=None,
                source="artifact",
                name="surefire-reports/TEST-org.acme.FlakyTest.xml",
            )
        assert not again.created and again.report_id == stored.report_id
        with db.read() as session:
            report = session.get(TestReport, stored.report_id)
            assert report is not None
            assert (report.repository_id, report.project) == (repo_id, "octo/app")
            assert report.commit_sha == "b" * 40
            assert testreports.failures_for_run(session, workflow_run_id=run_id) == []
        with db.write() as uow, pytest.raises(parse.JUnitParseError):
            testreports.store_report(
                uow.session,
                data=b"<testsuite>",
                repository_id=None,
                workflow_run_id=run_id,
                job_id=None,
                source="artifact",
            )
        with db.write() as uow, pytest.raises(ValueError, match="no workflow run"):
            testreports.store_report(
                uow.session,
                data=FLAKY.read_bytes(),
                repository_id=None,
                workflow_run_id=run_id + 1000,
                job_id=None,
                source="artifact",
            )
    finally:
        db.dispose()


def test_failures_for_run(client: TestClient, db_url: str) -> None:
    _repo_id, run_id, _job_id = add_github_run(db_url)
    post(client, PYTEST.read_bytes(), repository="octo/app", run_id="9001")
    db = Database(db_url)
    try:
        with db.read() as session:
            failures = testreports.failures_for_run(session, workflow_run_id=run_id)
    finally:
        db.dispose()
    assert [(f.classname, f.name, f.outcome) for f in failures] == [
        ("python.test_sample", "test_which_fails", "failed"),
        ("python.test_sample", "test_with_error", "failed"),
    ]
    assert failures[0].message is not None and "AssertionError" in failures[0].message


def test_older_report_does_not_move_last_outcome_back(client: TestClient, db_url: str) -> None:
    _repo, run_id, _job = add_github_run(db_url)
    post(client, junit("passed"), repository="octo/app")  # now
    # A report of an older run (an hour ago) arrives later.
    db = Database(db_url)
    try:
        with db.write() as uow:
            testreports.store_report(
                uow.session,
                data=junit("failed"),
                repository_id=None,
                workflow_run_id=run_id,
                job_id=None,
                source="artifact",
            )
        with db.read() as session:
            (test_case,) = session.scalars(select(TestCase)).all()
            assert test_case.last_outcome == "passed"
    finally:
        db.dispose()


def test_nul_bytes_and_huge_ids_are_answered_not_crashed(client: TestClient) -> None:
    """PostgreSQL text cannot hold NUL, and SQLite integers stop at 2**63 - 1."""
    stored = post(client, junit("failed"), repository="acme/\x00web", branch="ma\x00in")
    assert stored.status_code == 201
    assert (
        client.get("/api/tests", params={"q": "log\x00in", "project": "acme/\x00web"}).json()[
            "total"
        ]
        == 1
    )
    assert client.get("/api/tests/flaky", params={"project": "\x00"}).status_code == 200
    assert client.get(f"/api/tests/{2**64}").status_code == 422
    assert client.get(f"/api/workflow-runs/{2**64}/tests").status_code == 422
    assert client.get(f"/tests/{2**64}").status_code == 404


def test_pages_on_both_databases(client: TestClient) -> None:
    """The pages read the same services as the API; here on SQLite and PostgreSQL alike."""
    assert "No test reports" in client.get("/tests").text
    post(client, FLAKY.read_bytes(), repository="acme/java", commit="abc")
    post(client, junit("failed"), repository="acme/web", commit="abc", run_id="1")
    post(client, junit("passed"), repository="acme/web", commit="abc", run_id="2")
    failing = client.get("/tests", params={"view": "failing"})
    assert failing.status_code == 200
    assert "test_login" in failing.text and "testStable" not in failing.text
    flaky = client.get("/tests", params={"view": "flaky", "project": "acme/web"}).text
    assert "test_login" in flaky and "testFlaky" not in flaky
    everything = client.get("/tests", params={"view": "all", "q": "test"}).text
    assert "testStable" in everything and "test_login" in everything
    test_id = client.get("/api/tests/flaky", params={"project": "acme/java"}).json()[0]["id"]
    page = client.get(f"/tests/{test_id}")
    assert page.status_code == 200
    assert "testFlaky" in page.text and "expected: &lt;1&gt; but was: &lt;0&gt;" in page.text
    assert client.get("/tests/999999").status_code == 404
