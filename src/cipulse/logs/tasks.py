"""The log fetcher: finds completed jobs that want a log, downloads and stores it.

It needs no hook in the sync or webhook paths: a completed job stored by either is found by
``repository.discover`` (failed jobs; every job with ``CIPULSE_FETCH_ALL_LOGS``). Rows are
claimed from the database, so several processes can share the work. Each log is streamed to
a temporary file through the GitHub client (which follows the redirect to the signed URL without
the token), then chunked and indexed into storage in a thread. A 410 marks the log expired and a
repeated 404 missing; other failures are retried with backoff until the attempts run out.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cipulse.db import Database
from cipulse.github import errors
from cipulse.github.client import GitHubClient
from cipulse.logs import repository as repo
from cipulse.logs import service
from cipulse.logs.chunks import Index
from cipulse.models import utcnow
from cipulse.settings import Settings
from cipulse.storage import Storage

if TYPE_CHECKING:
    from cipulse.context import AppContext
    from cipulse.sync.tasks import SyncCoordinator

log = logging.getLogger(__name__)

CONCURRENT_DOWNLOADS = 2
CLAIM_BATCH = 10
MAX_LOG_BYTES = 2 * 1024**3  # GitHub caps a job log well below this


@dataclass
class PassResult:
    discovered: int = 0
    stored: int = 0
    expired: int = 0
    missing: int = 0
    retried: int = 0
    failed: int = 0

    @property
    def handled(self) -> int:
        return self.stored + self.expired + self.missing + self.retried + self.failed


class LogFetcher:
    def __init__(
        self, *, db: Database, settings: Settings, storage: Storage, sync: SyncCoordinator
    ) -> None:
        self.db = db
        self.settings = settings
        self.storage = storage
        self.sync = sync
        self._client: GitHubClient | None = None
        self._downloads = asyncio.Semaphore(CONCURRENT_DOWNLOADS)

    @property
    def enabled(self) -> bool:
        return self.settings.github_token is not None or self.sync.app_mode

    async def client_for(self, full_name: str) -> GitHubClient:
        """Token mode: a client of its own, so a long download never holds up the sync.
        App mode: the installation's client (its token is bought and renewed there)."""
        token = self.settings.github_token
        if self.sync.app_mode or token is None:
            return await self.sync.client_for(full_name)
        if self._client is None:
            self._client = GitHubClient(
                token=token.get_secret_value(),
                api_url=self.settings.github_api_url,
                concurrency=CONCURRENT_DOWNLOADS,
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def run(self) -> None:
        """Passes until cancelled; a pass that did work is followed at once by the next."""
        if not self.enabled:
            return
        try:
            while True:
                try:
                    done = await self.run_once()
                except Exception:
                    log.exception("log fetch pass failed; trying again later")
                    done = PassResult()
                if not done.handled:
                    await asyncio.sleep(self.settings.log_fetch_seconds)
        finally:
            await self.aclose()

    async def run_once(self) -> PassResult:
        result = PassResult()
        result.discovered = await asyncio.to_thread(self._discover)
        targets = await asyncio.to_thread(self._claim)
        outcomes = await asyncio.gather(*(self._fetch(t) for t in targets))
        for outcome in outcomes:
            if outcome == "stored":
                result.stored += 1
            elif outcome == "expired":
                result.expired += 1
            elif outcome == "missing":
                result.missing += 1
            elif outcome == "failed":
                result.failed += 1
            else:
                result.retried += 1
        return result

    def _discover(self) -> int:
        with self.db.write() as uow:
            return repo.discover(uow.session, now=utcnow(), all_jobs=self.settings.fetch_all_logs)

    def _claim(self) -> list[repo.Target]:
        with self.db.write() as uow:
            return repo.claim(uow.session, now=utcnow(), limit=CLAIM_BATCH)

    async def _fetch(self, target: repo.Target) -> str:
        prefix = service.storage_prefix(
            repository_id=target.repository_id, job_github_id=target.job_github_id
        )
        path = f"/repos/{target.full_name}/actions/jobs/{target.job_github_id}/logs"
        try:
            async with self._downloads:
                client = await self.client_for(target.full_name)
                with tempfile.TemporaryDirectory(prefix="cipulse-log-") as folder:
                    raw = Path(folder) / "log.txt"
                    await client.download(path, raw, max_bytes=MAX_LOG_BYTES)
                    index = await asyncio.to_thread(self._store, prefix, raw)
        except (errors.GitHubError, OSError, ValueError) as exc:
            return await asyncio.to_thread(self._record_failure, target, exc)
        return await asyncio.to_thread(self._record_stored, target, prefix, index)

    def _store(self, prefix: str, raw: Path) -> Index:
        with raw.open("rb") as source:
            return service.store(self.storage, prefix=prefix, source=source)

    def _record_stored(self, target: repo.Target, prefix: str, index: Index) -> str:
        with self.db.write() as uow:
            row = repo.held(uow.session, target.log_id)
            if row is None:
                return "lost"  # the claim lapsed and another process took it over
            service.record_stored(row, prefix=prefix, index=index, now=utcnow())
        log.info(
            "stored the log of job %s (%d lines, %d errors)",
            target.job_github_id, index.lines, index.errors,
        )  # fmt: skip
        return "stored"

    def _record_failure(self, target: repo.Target, exc: Exception) -> str:
        with self.db.write() as uow:
            row = repo.held(uow.session, target.log_id)
            if row is None:
                return "lost"
            outcome = service.record_failure(row, error=exc, now=utcnow())
            state = row.state
        log.warning("log of job %s: %s (%s)", target.job_github_id, exc, outcome)
        return state if state in ("expired", "missing", "failed") else "retried"


async def fetch_forever(ctx: AppContext) -> None:
    """The lifespan's entry point."""
    fetcher = LogFetcher(db=ctx.db, settings=ctx.settings, storage=ctx.storage, sync=ctx.sync)
    await fetcher.run()
