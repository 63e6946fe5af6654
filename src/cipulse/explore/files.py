"""A run's workflow file at its commit, from GitHub's contents API, cached in the database.

A file at a commit never changes, so it is fetched once; a 404 is remembered too. Anything
else (no token, rate limit, GitHub slow or down) answers None without caching, so the page
falls back to start times now and tries again on the next view. The fetch is bounded in time:
a run page never waits long on GitHub.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from typing import Any
from urllib.parse import quote

from cipulse.context import AppContext
from cipulse.explore import repository as repo_q
from cipulse.explore import service as explore
from cipulse.explore.parse import MAX_FILE_BYTES
from cipulse.explore.schemas import RunOut
from cipulse.explore.service import RunSource
from cipulse.github import errors
from cipulse.models import utcnow

log = logging.getLogger(__name__)

FETCH_TIMEOUT_SECONDS = 5.0


def decode_content(data: Any) -> str | None:
    """The text of a contents-API answer for a file; None for a directory or anything odd."""
    if not isinstance(data, dict) or data.get("type", "file") != "file":
        return None
    content = data.get("content")
    if not isinstance(content, str) or data.get("encoding") != "base64":
        return None  # files over 1 MB come with encoding "none" and no content
    try:
        raw = base64.b64decode(content, validate=False)
    except (binascii.Error, ValueError):
        return None
    if len(raw) > MAX_FILE_BYTES:
        return None
    return raw.decode("utf-8", "replace")


def _cached(ctx: AppContext, source: RunSource) -> tuple[bool, str | None]:
    assert source.path is not None and source.sha is not None
    with ctx.db.read() as session:
        row = repo_q.cached_file(session, repo_id=source.repo_id, path=source.path, ref=source.sha)
        if row is None:
            return False, None
        return True, row.content if row.found else None


def _store(ctx: AppContext, source: RunSource, content: str | None) -> None:
    assert source.path is not None and source.sha is not None
    with ctx.db.write() as uow:
        repo_q.store_file(
            uow.session,
            repo_id=source.repo_id,
            path=source.path,
            ref=source.sha,
            content=content,
            fetched_at=utcnow(),
        )


async def workflow_text(
    ctx: AppContext, source: RunSource, *, wait_seconds: float = FETCH_TIMEOUT_SECONDS
) -> str | None:
    """The workflow file of a run at its commit, or None when it cannot be had now."""
    if not source.path or not source.sha or not source.path.startswith(".github/"):
        return None  # "dynamic/..." workflows (Dependabot, Pages) have no file to read
    known, content = await asyncio.to_thread(_cached, ctx, source)
    if known:
        return content
    path = f"/repos/{source.full_name}/contents/{quote(source.path)}"
    try:
        client = await ctx.sync.client_for(source.full_name)
        page = await asyncio.wait_for(
            client.get(path, {"ref": source.sha}, conditional=False), wait_seconds
        )
    except errors.NotFound:
        await asyncio.to_thread(_store, ctx, source, None)
        return None
    except (errors.GitHubError, TimeoutError) as exc:
        log.info("workflow file of %s not read now: %s", source.full_name, exc)
        return None
    text = decode_content(page.data)
    if text is not None:
        await asyncio.to_thread(_store, ctx, source, text)
    return text


async def run_data(
    ctx: AppContext, full_name: str, run_id: int, attempt: int | None
) -> RunOut | None:
    """A run with its job graph: the workflow file is read (cache, else GitHub) first."""

    def source() -> explore.RunSource | None:
        with ctx.db.read() as session:
            return explore.run_source(session, full_name=full_name, run_id=run_id)

    found = await asyncio.to_thread(source)
    if found is None:
        return None
    text = await workflow_text(ctx, found)

    def read() -> RunOut | None:
        with ctx.db.read() as session:
            return explore.run_detail(
                session, full_name=full_name, run_id=run_id, attempt=attempt, workflow_text=text
            )

    return await asyncio.to_thread(read)
