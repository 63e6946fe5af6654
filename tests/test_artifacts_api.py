"""Design D's APIs, artifact file serving (security headers) and the viewer pages, on both
databases, over files extracted from an artifact served by the fake GitHub."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cipulse.app import create_app
from tests.fakegithub import FakeGitHub, Scenario
from tests.fakegithub import artifacts_extra as zips
from tests.test_artifacts import REPO, github_settings, one_run, process


@pytest.fixture
def served(make_settings, db_url: str) -> Iterator[tuple[TestClient, dict[str, Any]]]:  # type: ignore[no-untyped-def]
    scenario = Scenario()
    run = one_run(scenario)
    scenario.add_artifact(run.id, "results", zip_bytes=zips.normal_zip())
    with FakeGitHub(scenario) as gh:
        process(github_settings(make_settings, gh))
    workflow = next(iter(scenario.workflows.values()))
    with TestClient(create_app(make_settings())) as client:
        listed = client.get("/api/files", params={"run_id": run.id}).json()
        info = {"run": run, "workflow": workflow, "files": {f["path"]: f for f in listed}}
        yield client, info


def test_workflows_and_their_runs(served) -> None:  # type: ignore[no-untyped-def]
    client, info = served
    workflows = client.get("/api/workflows").json()
    assert [(w["id"], w["name"], w["repo"], w["runs"]) for w in workflows] == [
        (info["workflow"].id, "CI", REPO, 1)
    ]
    assert client.get("/api/workflows", params={"repo": REPO}).json() == workflows
    missing = client.get("/api/workflows", params={"repo": "nobody/nothing"})
    assert missing.status_code == 404 and "nobody/nothing" in missing.json()["detail"]

    runs = client.get(f"/api/workflows/{info['workflow'].id}/runs").json()
    assert len(runs) == 1
    run = runs[0]
    assert run["id"] == info["run"].id
    assert (run["status"], run["conclusion"], run["artifacts"], run["files"]) == (
        "completed", "failure", 1, 8,
    )  # fmt: skip
    unknown = client.get("/api/workflows/12345/runs")
    assert unknown.status_code == 404
    assert client.get("/api/workflows/x/runs").status_code == 422


def test_files_are_listed_with_filters(served) -> None:  # type: ignore[no-untyped-def]
    client, info = served
    assert len(info["files"]) == 8
    png = info["files"]["screenshots/home.png"]
    assert png["kind"] == "image" and png["content_type"] == "image/png"
    assert png["artifact_name"] == "results" and png["repo"] == REPO
    assert png["content_url"] == f"/api/files/{png['id']}/content"
    images = client.get("/api/files", params={"kind": "image"}).json()
    assert [f["path"] for f in images] == ["screenshots/home.png"]
    assert client.get("/api/files", params={"run_id": 1}).json() == []
    assert len(client.get("/api/files", params={"limit": 3}).json()) == 3
    bad = client.get("/api/files", params={"kind": "video"})
    assert bad.status_code == 422 and "kind" in bad.json()["message"]
    assert client.get(f"/api/files/{png['id']}").json() == png
    assert client.get("/api/files/999999").status_code == 404


@pytest.mark.parametrize(
    ("path", "media", "disposition"),
    [
        ("screenshots/home.png", "image/png", "inline"),
        ("report.json", "application/json", "inline"),
        ("logs/build.log", "text/plain; charset=utf-8", "inline"),
        ("coverage/index.html", "text/plain; charset=utf-8", "attachment"),
        ("badge.svg", "text/plain; charset=utf-8", "attachment"),
        ("junit/results.xml", "text/plain; charset=utf-8", "attachment"),
        ("bin/tool.bin", "application/octet-stream", "attachment"),
    ],
)
def test_content_is_served_so_nothing_runs_in_our_origin(
    served, path: str, media: str, disposition: str
) -> None:  # type: ignore[no-untyped-def]
    client, info = served
    answer = client.get(info["files"][path]["content_url"])
    assert answer.status_code == 200
    assert answer.content == zips.normal_files()[path]
    assert answer.headers["content-type"] == media
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["content-security-policy"].startswith("sandbox")
    assert "script-src" not in answer.headers["content-security-policy"]
    assert answer.headers["content-disposition"].startswith(disposition)
    forced = client.get(info["files"][path]["content_url"], params={"download": "true"})
    assert forced.headers["content-disposition"].startswith("attachment")


def test_file_pages(served) -> None:  # type: ignore[no-untyped-def]
    client, info = served
    by_path = info["files"]

    image = client.get(by_path["screenshots/home.png"]["page_url"])
    assert image.status_code == 200
    assert f'<img src="{by_path["screenshots/home.png"]["content_url"]}"' in image.text

    tree = client.get(by_path["report.json"]["page_url"]).text
    assert 'class="json-tree"' in tree and "<details" in tree
    assert '<span class="jkey">duration_sec</span>' in tree
    assert '<span class="jval" data-type="number">12.5</span>' in tree
    as_text = client.get(by_path["report.json"]["page_url"], params={"view": "text"}).text
    assert "json-tree" not in as_text and 'id="L1"' in as_text

    log_url = by_path["logs/build.log"]["page_url"]
    first = client.get(log_url).text
    assert 'id="L1"' in first and "step 500: ok" in first and "step 501: ok" not in first
    assert 'rel="next"' in first
    second = client.get(log_url, params={"page": 3}).text
    assert 'id="L1001"' in second and "step 1200: ok" in second and 'rel="next"' not in second

    html = client.get(by_path["coverage/index.html"]["page_url"]).text
    assert "&lt;script&gt;document.title" in html
    assert "<script>document.title" not in html

    binary = client.get(by_path["bin/tool.bin"]["page_url"]).text
    assert "Binary file" in binary and "?download=1" in binary

    assert client.get("/files/999999").status_code == 404
    assert client.get(log_url, params={"page": 0}).status_code == 422


def test_run_artifacts_page_and_service(served) -> None:  # type: ignore[no-untyped-def]
    client, info = served
    run = info["run"]
    page = client.get(f"/repos/{REPO}/runs/{run.id}/artifacts")
    assert page.status_code == 200
    assert 'data-artifact="results"' in page.text and "extracted" in page.text
    assert 'class="gallery"' in page.text
    assert client.get(f"/repos/other/repo/runs/{run.id}/artifacts").status_code == 404
    assert client.get(f"/repos/{REPO}/runs/1/artifacts").status_code == 404

    data = client.get(f"/api/runs/{run.id}/artifacts").json()
    assert data["scanned"] is True
    [artifact] = data["artifacts"]
    assert artifact["state"] == "done" and artifact["file_count"] == 8
    assert len(artifact["files"]) == 8
