"""The artifact processor: lists the artifacts of completed runs, fetches and extracts them.

It claims work from the database, so several processes can share it, and needs no hook in the
sync or webhook paths: a completed run stored by either is found by ``discover_runs``. Each
pass: scan claimed runs (one listing request each), then download claimed artifacts, at most
``CIPULSE_MAX_CONCURRENT_DOWNLOADS`` at a time, each streamed to a temporary file and extracted
in a thread. Failures are retried with backoff (capped); expired artifacts are marked, not
retried. Once an hour, files older than ``CIPULSE_CLEANUP_OLD_FILES_DAYS`` are deleted.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cipulse.artifacts import extract, service
from cipulse.artifacts import repository as repo
from cipulse.db import Database
from cipulse.github import errors
from cipulse.github.client import GitHubClient
from cipulse.models import Artifact, ArtifactScan, utcnow
from cipulse.settings import Settings
from cipulse.storage import Storage

if TYPE_CHECKING:
    from cipulse.context import AppContext
    from cipulse.sync.tasks import SyncCoordinator

log = logging.getLogger(__name__)

IDLE_POLL_SECONDS = 60.0
CLEANUP_EVERY_SECONDS = 3600.0
DISCOVER_BATCH = 200
SCAN_BATCH = 20


@dataclass
class PassResult:
    scanned: int = 0
    new_artifacts: int = 0
    processed: int = 0
    new_files: int = 0
    refused: int = 0
    expired: int = 0
    failed: int = 0


@dataclass(frozen=True)
class ClaimedScan:
    scan_id: int
    repo_id: int
    run_github_id: int
    full_name: str


@dataclass(frozen=True)
class Claimed:
    """An artifact claimed for download, read out of its transaction."""

    row_id: int
    github_id: int
    repo_id: int
    run_github_id: int
    name: str
    size: int
    full_name: str


def _mb(size: int) -> str:
    return f"{size / 1048576:,.1f} MB"


class ArtifactWorker:
    def __init__(
        self,
        *,
        db: Database,
        settings: Settings,
        store: Storage,
        sync: SyncCoordinator,
    ) -> None:
        self.db = db
        self.settings = settings
        self.store = store
        self.sync = sync
        self._client: GitHubClient | None = None
        self._downloads = asyncio.Semaphore(settings.max_concurrent_downloads)
        self._last_cleanup = -CLEANUP_EVERY_SECONDS

    @property
    def enabled(self) -> bool:
        return self.settings.github_token is not None or self.sync.app_mode

    async def client_for(self, full_name: str) -> GitHubClient:
        """Token mode: a client of its own (its queue as wide as the download limit), so a
        long download never holds up the sync. App mode: the installation's client."""
        token = self.settings.github_token
        if self.sync.app_mode or token is None:
            return await self.sync.client_for(full_name)
        if self._client is None:
            self._client = GitHubClient(
                token=token.get_secret_value(),
                api_url=self.settings.github_api_url,
                concurrency=self.settings.max_concurrent_downloads,
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    # -- the loop -------------------------------------------------------------------------

    async def run(self) -> None:
        """Process what is due, sleep until more is; the hourly cleanup runs even without a
        GitHub token (files fetched earlier still age)."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                done = PassResult()
                try:
                    if self.enabled:
                        done = await self.run_once()
                    if loop.time() - self._last_cleanup >= CLEANUP_EVERY_SECONDS:
                        self._last_cleanup = loop.time()
                        await asyncio.to_thread(self.cleanup)
                except Exception:
                    log.exception("artifact pass failed; trying again later")
                if done.scanned or done.processed:
                    continue
                pause = CLEANUP_EVERY_SECONDS
                if self.enabled:
                    pause = await asyncio.to_thread(self._seconds_until_due)
                await asyncio.sleep(pause)
        finally:
            await self.aclose()

    def _seconds_until_due(self) -> float:
        with self.db.read() as session:
            due = repo.next_due(session)
        if due is None:
            return IDLE_POLL_SECONDS
        return min(max((due - utcnow()).total_seconds(), 0.5), IDLE_POLL_SECONDS)

    async def run_once(self, *, repo_ids: list[int] | None = None) -> PassResult:
        """One pass: discover, scan, download and extract what is due now."""
        result = PassResult()
        await asyncio.to_thread(self._discover)
        for scan in await asyncio.to_thread(self._claim_scans):
            if repo_ids is not None and scan.repo_id not in repo_ids:
                await asyncio.to_thread(self._unclaim_scan, scan.scan_id)
                continue
            result.new_artifacts += await self._scan(scan)
            result.scanned += 1
        claimed = await asyncio.to_thread(self._claim_artifacts)
        outcomes = await asyncio.gather(
            *(self._process(a) for a in claimed), return_exceptions=True
        )
        for found in outcomes:
            if isinstance(found, BaseException):  # its claim lapses; it is retried then
                log.error("artifact processing crashed", exc_info=found)
                result.failed += 1
                continue
            outcome, files = found
            result.processed += 1
            result.new_files += files
            if outcome == "refused":
                result.refused += 1
            elif outcome == "expired":
                result.expired += 1
            elif outcome == "failed":
                result.failed += 1
        return result

    # -- scanning runs --------------------------------------------------------------------

    def _discover(self) -> int:
        days = self.settings.cleanup_old_files_days
        since = utcnow() - timedelta(days=days) if days else None
        with self.db.write() as uow:
            return repo.discover_runs(uow.session, now=utcnow(), since=since, limit=DISCOVER_BATCH)

    def _claim_scans(self) -> list[ClaimedScan]:
        with self.db.write() as uow:
            scans = repo.claim_scans(uow.session, now=utcnow(), limit=SCAN_BATCH)
            return [
                ClaimedScan(s.id, s.repository_id, s.run_github_id, name)
                for s in scans
                if (name := repo.repo_name(uow.session, s.repository_id)) is not None
            ]

    def _unclaim_scan(self, scan_id: int) -> None:
        with self.db.write() as uow:
            row = uow.session.get_one(ArtifactScan, scan_id)
            row.claimed_until = None
            row.claimed_by = None

    async def _scan(self, scan: ClaimedScan) -> int:
        items = []
        try:
            client = await self.client_for(scan.full_name)
            path = f"/repos/{scan.full_name}/actions/runs/{scan.run_github_id}/artifacts"
            async for page in client.paginate(path, {"per_page": 100}, conditional=False):
                items += service.listing_items(page.data)
        except errors.NotFound as exc:  # the run is gone on GitHub: nothing more to list
            return await asyncio.to_thread(self._scanned, scan, [], str(exc))
        except errors.RateLimited as exc:
            await asyncio.to_thread(
                functools.partial(self._postpone, scan=True, row_id=scan.scan_id, exc=exc)
            )
            return 0
        except errors.GitHubError as exc:
            await asyncio.to_thread(self._scan_failed, scan.scan_id, str(exc))
            return 0
        return await asyncio.to_thread(self._scanned, scan, items, None)

    def _scanned(self, scan: ClaimedScan, items: list[dict[str, Any]], note: str | None) -> int:
        now = utcnow()
        with self.db.write() as uow:
            added = repo.upsert_artifacts(
                uow.session,
                repo_id=scan.repo_id,
                run_github_id=scan.run_github_id,
                items=items,
                now=now,
            )
            row = uow.session.get_one(ArtifactScan, scan.scan_id)
            row.state = "done"
            row.scanned_at = now
            row.last_error = note
            row.claimed_until = None
            row.claimed_by = None
            return added

    def _scan_failed(self, scan_id: int, error: str) -> None:
        with self.db.write() as uow:
            row = uow.session.get_one(ArtifactScan, scan_id)
            state = repo.fail(row, error=error, now=utcnow())
        log.warning("artifacts of run %s not listed (%s): %s", row.run_github_id, state, error)

    # -- artifacts ------------------------------------------------------------------------

    def _claim_artifacts(self) -> list[Claimed]:
        limit = self.settings.max_concurrent_downloads * 4
        with self.db.write() as uow:
            rows = repo.claim_artifacts(uow.session, now=utcnow(), limit=limit)
            return [
                Claimed(
                    row_id=a.id,
                    github_id=a.github_id,
                    repo_id=a.repository_id,
                    run_github_id=a.run_github_id,
                    name=a.name,
                    size=a.size_in_bytes,
                    full_name=repo.repo_name(uow.session, a.repository_id) or "",
                )
                for a in rows
            ]

    async def _process(self, item: Claimed) -> tuple[str, int]:
        """Download, extract, record; the outcome and the number of files stored."""
        lim = service.limits(self.settings)
        too_big = f"over the limit of {_mb(lim.max_total_bytes)} (CIPULSE_ARTIFACT_MAX_TOTAL_MB)"
        if item.size > lim.max_total_bytes:
            return await self._end(item, "refused", f"the zip is {_mb(item.size)}, {too_big}")
        zip_path = await asyncio.to_thread(self._temp_file, item.github_id)
        try:
            async with self._downloads:
                try:
                    client = await self.client_for(item.full_name)
                    await client.download(
                        f"/repos/{item.full_name}/actions/artifacts/{item.github_id}/zip",
                        zip_path,
                        max_bytes=lim.max_total_bytes,
                    )
                except errors.Gone:
                    return await self._end(item, "expired", "expired on GitHub (410)")
                except errors.RateLimited as exc:
                    await asyncio.to_thread(
                        functools.partial(self._postpone, scan=False, row_id=item.row_id, exc=exc)
                    )
                    return "failed", 0
                except errors.GitHubError as exc:
                    if "larger than" in str(exc):  # the client's max_bytes stopped the stream
                        return await self._end(item, "refused", f"the download is {too_big}")
                    return await self._fail(item, f"download failed: {exc}")
            folder = service.prefix(
                repo_id=item.repo_id,
                run_github_id=item.run_github_id,
                artifact_github_id=item.github_id,
            )
            try:
                files = await asyncio.to_thread(
                    service.extract_to_storage,
                    store=self.store,
                    zip_path=zip_path,
                    folder=folder,
                    limits=lim,
                )
            except extract.Refused as exc:
                log.warning("artifact %s (%s) refused: %s", item.github_id, item.name, exc)
                return await self._end(item, "refused", str(exc))
            except Exception as exc:
                log.exception("artifact %s (%s) not extracted", item.github_id, item.name)
                return await self._fail(item, f"extraction failed: {type(exc).__name__}: {exc}")
            return await asyncio.to_thread(self._record, item, files, folder)
        finally:
            await asyncio.to_thread(_remove_temp, zip_path)

    def _temp_file(self, github_id: int) -> Path:
        """Downloads land in the data dir's ``tmp`` (local, even when storage is remote)."""
        folder = self.settings.data_dir / "tmp"
        folder.mkdir(parents=True, exist_ok=True)
        handle, raw = tempfile.mkstemp(prefix=f"artifact-{github_id}-", suffix=".zip", dir=folder)
        os.close(handle)
        return Path(raw)

    def _record(
        self, item: Claimed, files: list[service.StoredFile], folder: str
    ) -> tuple[str, int]:
        try:
            with self.db.write() as uow:
                artifact = uow.session.get_one(Artifact, item.row_id)
                count = service.record_files(
                    uow.session, artifact=artifact, files=files, store=self.store, now=utcnow()
                )
        except Exception as exc:  # the rows are rolled back: the files must go too
            log.exception("artifact %s: files not recorded", item.github_id)
            self.store.delete_prefix(folder)
            self._failed(item.row_id, f"could not record the files: {type(exc).__name__}")
            return "failed", 0
        return "done", count

    async def _end(self, item: Claimed, state: str, reason: str) -> tuple[str, int]:
        """A final state that is not retried: expired or refused, with the reason."""
        await asyncio.to_thread(self._finish, item.row_id, state, reason)
        return state, 0

    async def _fail(self, item: Claimed, error: str) -> tuple[str, int]:
        await asyncio.to_thread(self._failed, item.row_id, error)
        return "failed", 0

    def _finish(self, row_id: int, state: str, error: str) -> None:
        with self.db.write() as uow:
            row = uow.session.get_one(Artifact, row_id)
            row.state = state
            row.last_error = error[:2000]
            row.processed_at = utcnow()
            row.claimed_until = None
            row.claimed_by = None

    def _failed(self, row_id: int, error: str) -> None:
        with self.db.write() as uow:
            row = uow.session.get_one(Artifact, row_id)
            state = repo.fail(row, error=error, now=utcnow())
        log.warning("artifact %s not processed (%s): %s", row_id, state, error)

    def _postpone(self, *, scan: bool, row_id: int, exc: errors.RateLimited) -> None:
        """GitHub's rate limit is not the artifact's fault: wait for the reset, no attempt
        counted."""
        with self.db.write() as uow:
            session = uow.session
            row = session.get_one(ArtifactScan if scan else Artifact, row_id)
            assert isinstance(row, ArtifactScan | Artifact)
            repo.postpone(row, until=exc.reset_at, error=str(exc), now=utcnow())

    # -- cleanup --------------------------------------------------------------------------

    def cleanup(self) -> int:
        """Delete the files of artifacts older than the cleanup age; their rows stay, marked.

        Storage first, then the rows: a deletion that fails leaves the rows as they were, and
        the next run tries again.
        """
        days = self.settings.cleanup_old_files_days
        if not days:
            return 0
        now = utcnow()
        removed = 0
        while True:
            with self.db.read() as session:
                old = [
                    (
                        a.id,
                        service.prefix(
                            repo_id=a.repository_id,
                            run_github_id=a.run_github_id,
                            artifact_github_id=a.github_id,
                        ),
                    )
                    for a in repo.old_artifacts(
                        session, before=now - timedelta(days=days), limit=100
                    )
                ]
            if not old:
                return removed
            for artifact_id, folder in old:
                self.store.delete_prefix(folder)
                with self.db.write() as uow:
                    repo.mark_removed(uow.session, artifact_id=artifact_id, now=now)
                removed += 1


def _remove_temp(path: Path) -> None:
    path.unlink(missing_ok=True)
    path.with_name(path.name + ".part").unlink(missing_ok=True)


def worker(ctx: AppContext) -> ArtifactWorker:
    return ArtifactWorker(db=ctx.db, settings=ctx.settings, store=ctx.storage, sync=ctx.sync)


REFRESH_PASSES = 5


async def process_now(ctx: AppContext, names: list[str]) -> int:
    """For ``POST /api/refresh``: a few passes over the refreshed repositories' new runs, then
    the number of their files stored since (design D's ``summary.newFiles``). What these passes
    leave is done by the background worker."""
    job = worker(ctx)
    if not job.enabled or not names:
        return 0
    started = utcnow()
    repo_ids = await asyncio.to_thread(_repo_ids, ctx.db, names)
    try:
        for _ in range(REFRESH_PASSES):
            done = await job.run_once(repo_ids=repo_ids)
            if not (done.scanned or done.processed):
                break
    finally:
        await job.aclose()
    return await asyncio.to_thread(_files_since, ctx.db, started, repo_ids)


def _repo_ids(db: Database, names: list[str]) -> list[int]:
    with db.read() as session:
        return repo.repo_ids(session, names)


def _files_since(db: Database, since: datetime, repo_ids: list[int]) -> int:
    with db.read() as session:
        return repo.count_files_since(session, since=since, repo_ids=repo_ids)
