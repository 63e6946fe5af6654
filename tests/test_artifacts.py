"""Artifacts end to end: listed and downloaded from the fake GitHub over real HTTP, extracted
into real storage, on SQLite and PostgreSQL; hostile zips refused with nothing written."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from cipulse.app import create_app
from cipulse.artifacts import tasks as artifact_tasks
from cipulse.artifacts.tasks import PassResult
from cipulse.context import AppContext
from cipulse.db import Database
from cipulse.github.client import GitHubClient
from cipulse.models import Artifact, ArtifactFile, ArtifactScan, utcnow
from cipulse.settings import Settings
from tests.fakegithub import FakeGitHub, Run, Scenario
from tests.fakegithub import artifacts_extra as zips

REPO = "octo-org/hello-world"


def github_settings(make_settings, gh: FakeGitHub, **extra: Any) -> Settings:  # type: ignore[no-untyped-def]
    return make_settings(  # type: ignore[no-any-return]
        github_token=gh.token,
        github_api_url=gh.api_url,
        poll_interval_minutes=0,
        reconcile_cron="",
        **extra,
    )


def process(settings: Settings, *, passes: int = 1, sync: bool = True) -> list[PassResult]:
    """Sync the repository, then run the artifact processor ``passes`` times."""

    async def go() -> list[PassResult]:
        ctx = AppContext.build(settings)
        worker = artifact_tasks.worker(ctx)
        try:
            if sync:
                result = await ctx.sync.sync(REPO)
                assert result.error is None, result.error
            return [await worker.run_once() for _ in range(passes)]
        finally:
            await worker.aclose()
            await ctx.sync.aclose()
            ctx.db.dispose()

    # In a thread of its own: the browser tests' Playwright holds this thread's event loop.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, go()).result()


def tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` with a hash of its bytes."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def one_run(scenario: Scenario) -> Run:
    repo = scenario.add_repo(REPO)
    workflow = scenario.add_workflow(repo, "CI")
    return scenario.add_run(workflow, jobs=[("test", "failure")])


def artifacts(db_url: str) -> dict[str, Artifact]:
    db = Database(db_url)
    try:
        with db.read() as session:
            return {a.name: a for a in session.scalars(select(Artifact))}
    finally:
        db.dispose()


def files(db_url: str) -> list[ArtifactFile]:
    db = Database(db_url)
    try:
        with db.read() as session:
            return list(session.scalars(select(ArtifactFile).order_by(ArtifactFile.path)))
    finally:
        db.dispose()


@pytest.fixture
def normal(make_settings, db_url: str) -> Iterator[tuple[Settings, Run, FakeGitHub]]:  # type: ignore[no-untyped-def]
    scenario = Scenario()
    run = one_run(scenario)
    scenario.add_artifact(run.id, "results", zip_bytes=zips.normal_zip())
    scenario.add_artifact(run.id, "old-build", expired=True)
    with FakeGitHub(scenario) as gh:
        settings = github_settings(make_settings, gh)
        yield settings, run, gh


def test_normal_artifact_is_extracted_and_classified(normal, db_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings, run, gh = normal
    [result] = process(settings)
    assert (result.scanned, result.new_artifacts, result.new_files) == (1, 2, 8)
    assert result.expired == 0  # expired in the listing: never downloaded at all

    stored = artifacts(db_url)
    assert stored["results"].state == "done"
    assert stored["results"].file_count == 8
    assert stored["old-build"].state == "expired"
    kinds = {f.path: f.kind for f in files(db_url)}
    assert kinds == {
        "badge.svg": "text",
        "bin/tool.bin": "binary",
        "coverage/index.html": "text",
        "junit/results.xml": "text",
        "logs/build.log": "text",
        "notes/README": "text",
        "report.json": "json",
        "screenshots/home.png": "image",
    }
    folder = tmp_path / "storage" / "artifacts"
    repo_dir = next(folder.iterdir())
    artifact_id = stored["results"].github_id
    extracted = repo_dir / str(run.id) / str(artifact_id)
    assert (extracted / "screenshots" / "home.png").read_bytes() == zips.png()
    assert set(tree(extracted)) == set(zips.normal_files())
    assert list((tmp_path / "tmp").iterdir()) == []  # the downloaded zip is gone

    downloads = [e for e in gh.stats.log if e.host == "download"]
    assert len(downloads) == 1
    assert not any(e.authorization for e in downloads)

    [again] = process(settings, sync=False)  # nothing left to do: no request, no new file
    assert (again.scanned, again.processed, again.new_files) == (0, 0, 0)


def test_junit_found_by_content_goes_to_test_reports(normal, db_url: str) -> None:  # type: ignore[no-untyped-def]
    from cipulse.artifacts import repository as artifacts_repo
    from cipulse.testreports import service as testreports

    settings, run, _gh = normal
    process(settings)
    db = Database(db_url)
    try:
        with db.read() as session:
            run_row = artifacts_repo.run_row_id(session, run.id)
            assert run_row is not None
            tests = testreports.run_tests(session, workflow_run_id=run_row)
    finally:
        db.dispose()
    assert (tests.tests, tests.passed, tests.failed) == (2, 1, 1)
    [failed] = [r for r in tests.results if r.outcome == "failed"]
    assert (failed.name, failed.message) == ("test_bad", "assert 1 == 2")


HOSTILE_REASONS = {
    "traversal": "climbs out of its folder",
    "absolute": "is an absolute path",
    "backslash": "uses a backslash",
    "drive": "names a drive",
    "symlink": "symbolic link",
    "lying-bomb": "zip bomb",
    "bomb": "zip bomb",
    "many-files": "more than 50 files",
    "oversized": "over the per-file limit",
}


def test_hostile_artifacts_are_refused_and_write_nothing(
    make_settings, db_url: str, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    scenario = Scenario()
    run = one_run(scenario)
    zips.add_hostile_artifacts(scenario, run.id, many_files=60, oversized_mb=2)
    scenario.add_artifact(run.id, "fine", zip_bytes=zips.make({"ok.txt": b"fine"}))
    outside = tmp_path.parent / "outside"
    with FakeGitHub(scenario) as gh:
        settings = github_settings(
            make_settings,
            gh,
            data_dir=tmp_path / "data",
            artifact_max_files=50,
            max_file_size_mb=1,
            max_concurrent_downloads=4,
        )
        (tmp_path / "data").mkdir()
        before = tree(tmp_path)
        [result] = process(settings)
    after = tree(tmp_path)
    assert result.refused == len(HOSTILE_REASONS)

    stored = artifacts(db_url)
    for name, reason in HOSTILE_REASONS.items():
        assert stored[name].state == "refused", (name, stored[name].last_error)
        assert reason in (stored[name].last_error or ""), name
        assert stored[name].file_count == 0
    assert stored["fine"].state == "done"

    # The only new file is the innocent artifact's. The traversal's innocent file was never
    # written (names are checked first); the ratio bomb wrote ~6 MB of files before it tripped,
    # and they were removed with its folder.
    new = {k for k in after if k not in before}
    assert all(k.startswith("data/storage/artifacts/") for k in new), new
    assert [k.rsplit("/", 1)[-1] for k in new] == ["ok.txt"]
    assert all(after[k] == v for k, v in before.items())
    assert not outside.exists()
    assert not Path("/tmp/cipulse-pwned.txt").exists()
    assert [f.path for f in files(db_url)] == ["ok.txt"]
    assert list((tmp_path / "data" / "tmp").iterdir()) == []

    # The run's artifacts page says why each was refused.
    with TestClient(create_app(make_settings(data_dir=tmp_path / "data"))) as client:
        page = client.get(f"/repos/{REPO}/runs/{run.id}/artifacts")
        assert page.status_code == 200
        assert page.text.count("data-reason") == len(HOSTILE_REASONS)
        assert "climbs out of its folder with &#39;..&#39;" in page.text
        data = client.get(f"/api/runs/{run.id}/artifacts").json()
        refused = {a["name"]: a["error"] for a in data["artifacts"] if a["state"] == "refused"}
        assert "inflates past the 1,000 bytes its header declares" in refused["lying-bomb"]


def test_expired_at_download_is_marked_not_retried(normal, db_url: str) -> None:  # type: ignore[no-untyped-def]
    settings, _run, gh = normal
    gh.fail_next(410, path_contains="/zip", body={"message": "Artifact has expired"})
    [first, second] = process(settings, passes=2)
    assert first.expired == 1
    assert artifacts(db_url)["results"].state == "expired"
    assert second.processed == 0
    assert gh.stats.by_route.get("actions/download-artifact") == 1
    assert "download/artifact" not in gh.stats.by_route


def test_failed_download_is_retried_later(normal, db_url: str) -> None:  # type: ignore[no-untyped-def]
    settings, _run, gh = normal
    gh.fail_next(503, host="download", path_contains="signedartifactscontent")
    [first, second] = process(settings, passes=2)
    row = artifacts(db_url)["results"]
    assert first.failed == 1 and second.processed == 0  # not due yet: backoff
    assert row.state == "pending" and row.attempts == 1
    assert "download failed" in (row.last_error or "")
    assert row.next_attempt_at > utcnow() + timedelta(seconds=30)

    db = Database(db_url)
    with db.write() as uow:  # the backoff has passed
        uow.session.execute(update(Artifact).values(next_attempt_at=utcnow()))
    db.dispose()
    [third] = process(settings, sync=False)
    assert third.new_files == 8
    done = artifacts(db_url)["results"]
    assert done.state == "done" and done.last_error is None


def test_at_most_the_configured_downloads_at_once(
    make_settings, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    scenario = Scenario()
    run = one_run(scenario)
    for i in range(7):
        scenario.add_artifact(run.id, f"part-{i}", zip_bytes=zips.make({"a.txt": b"%d" % i}))
    in_flight = 0
    most = 0
    real = GitHubClient.download

    async def counting(self: GitHubClient, path: str, dest: Path, **kw: Any) -> int:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        try:
            await asyncio.sleep(0.05)  # long enough for the others to start, were they allowed
            return await real(self, path, dest, **kw)
        finally:
            in_flight -= 1

    monkeypatch.setattr(GitHubClient, "download", counting)
    with FakeGitHub(scenario) as gh:
        settings = github_settings(make_settings, gh, max_concurrent_downloads=2)
        [result] = process(settings)
    assert result.new_files == 7
    assert most == 2


def test_completed_rerun_is_scanned_again(make_settings, db_url: str) -> None:  # type: ignore[no-untyped-def]
    scenario = Scenario()
    run = one_run(scenario)
    scenario.add_artifact(run.id, "first", zip_bytes=zips.make({"a.txt": b"1"}))
    with FakeGitHub(scenario) as gh:
        settings = github_settings(make_settings, gh)
        process(settings)
        scenario.rerun(run.id)
        scenario.complete_run(run.id, "success")
        scenario.add_artifact(run.id, "second", zip_bytes=zips.make({"b.txt": b"2"}))
        [result] = process(settings)
    assert result.scanned == 1 and result.new_artifacts == 1
    assert {a.state for a in artifacts(db_url).values()} == {"done"}
    db = Database(db_url)
    with db.read() as session:
        scan = session.scalars(select(ArtifactScan)).one()
        assert scan.run_attempt == 2
    db.dispose()


def test_cleanup_removes_old_files_and_marks_rows(normal, db_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings, run, _gh = normal
    process(settings)
    file_id = files(db_url)[0].id
    db = Database(db_url)
    with db.write() as uow:
        uow.session.execute(update(Artifact).values(created_at=utcnow() - timedelta(days=31)))
    db.dispose()

    ctx = AppContext.build(settings)
    try:
        removed = artifact_tasks.worker(ctx).cleanup()
    finally:
        ctx.db.dispose()
    assert removed == 1
    assert tree(tmp_path / "storage") == {}
    row = artifacts(db_url)["results"]
    assert row.state == "removed" and row.removed_at is not None
    assert all(f.removed_at is not None for f in files(db_url))

    with TestClient(create_app(settings.model_copy(update={"github_token": None}))) as client:
        assert client.get("/api/files", params={"run_id": run.id}).json() == []
        gone = client.get(f"/api/files/{file_id}/content")
        assert gone.status_code == 410
        assert "removed" in gone.json()["detail"]
        page = client.get(f"/files/{file_id}")
        assert page.status_code == 200 and "This file was removed" in page.text


def test_refresh_counts_new_files(normal) -> None:  # type: ignore[no-untyped-def]
    settings, run, _gh = normal
    with TestClient(create_app(settings)) as client:
        first = client.post("/api/refresh", params={"repo": REPO})
        assert first.status_code == 200, first.text
        assert first.json()["summary"]["newFiles"] == 8
        again = client.post("/api/refresh", params={"repo": REPO})
        assert again.json()["summary"] == {"newRuns": 0, "newFiles": 0, "updatedWorkflows": 0}
        assert len(client.get("/api/files", params={"run_id": run.id}).json()) == 8


def test_rate_limit_postpones_without_counting_an_attempt(normal, db_url: str) -> None:  # type: ignore[no-untyped-def]
    settings, _run, gh = normal
    process(settings, passes=0)  # the sync alone
    gh.set_rate_limit(0, reset_in_seconds=3600)
    [result] = process(settings, sync=False)
    assert (result.scanned, result.new_artifacts) == (1, 0)
    db = Database(db_url)
    with db.read() as session:
        scan = session.scalars(select(ArtifactScan)).one()
    db.dispose()
    assert scan.state == "pending" and scan.attempts == 0
    assert "rate limit" in (scan.last_error or "")
    assert scan.next_attempt_at > utcnow() + timedelta(minutes=50)  # at GitHub's reset
