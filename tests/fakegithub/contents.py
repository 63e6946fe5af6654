"""``GET /repos/{o}/{r}/contents/{path}?ref=`` of the fake GitHub, for workflow files.

Files are registered per repository and path, for one commit or for every commit
(``ref=None``); anything else is GitHub's 404. The body has the shape of GitHub's
``content-file`` answer: base64 in lines of 60 characters, as GitHub sends it.

    gh.files.put("octo-org/hello-world", ".github/workflows/ci.yml", real_workflow("remix..."))
"""

from __future__ import annotations

import base64
import hashlib
import threading
from pathlib import Path
from urllib.parse import quote

from tests.fakegithub import bodies
from tests.fakegithub.messages import Answer, Ctx, NotFound

REAL_WORKFLOWS = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "real" / "workflows"


def real_workflow(file_name: str) -> str:
    """The text of one of the real workflow files in ``shared/fixtures/real/workflows``."""
    return (REAL_WORKFLOWS / file_name).read_text(encoding="utf-8")


class Files:
    """Workflow files by (repository, path, commit); thread-safe, editable while serving."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._files: dict[tuple[str, str, str | None], bytes] = {}

    def put(self, repo: str, path: str, text: str | bytes, *, ref: str | None = None) -> None:
        data = text.encode("utf-8") if isinstance(text, str) else text
        with self._lock:
            self._files[(repo.lower(), path.strip("/"), ref)] = data

    def get(self, repo: str, path: str, ref: str | None) -> bytes | None:
        key = (repo.lower(), path.strip("/"))
        with self._lock:
            found = self._files.get((*key, ref)) if ref else None
            return found if found is not None else self._files.get((*key, None))


def answer(files: Files, ctx: Ctx, api_url: str) -> Answer:
    """The file as GitHub's contents API returns it, or 404."""
    path = ctx.request.path_params["path"].strip("/")
    ref = ctx.query.get("ref") or None
    data = files.get(ctx.repo.full_name, path, ref)
    if data is None:
        raise NotFound
    encoded = base64.b64encode(data).decode()
    content = "\n".join(encoded[i : i + 60] for i in range(0, len(encoded), 60)) + "\n"
    blob = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # noqa: S324 (git's id)
    repo_url = f"{api_url}/repos/{ctx.repo.full_name}"
    html = f"https://github.com/{ctx.repo.full_name}/blob/{ref or ctx.repo.default_branch}"
    quoted = quote(path)
    body: bodies.Json = {
        "type": "file",
        "encoding": "base64",
        "size": len(data),
        "name": path.rsplit("/", 1)[-1],
        "path": path,
        "content": content,
        "sha": blob,
        "url": f"{repo_url}/contents/{quoted}?ref={ref or ctx.repo.default_branch}",
        "git_url": f"{repo_url}/git/blobs/{blob}",
        "html_url": f"{html}/{quoted}",
        "download_url": f"https://raw.githubusercontent.com/{ctx.repo.full_name}/{ref}/{quoted}",
        "_links": {
            "self": f"{repo_url}/contents/{quoted}",
            "git": f"{repo_url}/git/blobs/{blob}",
            "html": f"{html}/{quoted}",
        },
    }
    return Answer(200, body)
