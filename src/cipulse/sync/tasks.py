"""Background sync: one coordinator per process, a poll loop and the daily reconcile."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from cronsim import CronSim

from cipulse.db import Database
from cipulse.github import errors
from cipulse.github.client import CachedEntry, GitHubClient
from cipulse.models import utcnow
from cipulse.settings import Settings
from cipulse.sync import repository
from cipulse.sync.service import SEARCH_CAP, Progress, RepoSync, SyncResult

log = logging.getLogger(__name__)

CLAIM_SECONDS = 600.0  # renewed with every page stored


class DbResponseCache:
    """The ETag store in the database, so a restart does not forget what GitHub sent."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, key: str) -> CachedEntry | None:
        found = await asyncio.to_thread(self._get, key)
        return CachedEntry(etag=found[0], body=found[1], next_url=found[2]) if found else None

    def _get(self, key: str) -> tuple[str, bytes, str | None] | None:
        with self.db.read() as session:
            return repository.cache_get(session, key)

    async def put(self, key: str, entry: CachedEntry) -> None:
        await asyncio.to_thread(self._put, key, entry)

    def _put(self, key: str, entry: CachedEntry) -> None:
        url = key.split(" ", 2)[-1]
        with self.db.write() as uow:
            repository.cache_put(uow.session, key, url, entry.etag, entry.body, entry.next_url)


class NoToken(errors.GitHubError):
    pass


class SyncCoordinator:
    """Runs syncs; a second request for a repository already syncing joins the running one."""

    def __init__(self, *, db: Database, settings: Settings, search_cap: int = SEARCH_CAP) -> None:
        self.db = db
        self.settings = settings
        self.search_cap = search_cap
        self._tasks: dict[str, asyncio.Task[SyncResult]] = {}
        self._client: GitHubClient | None = None

    def client(self) -> GitHubClient:
        token = self.settings.github_token
        if token is None:
            raise NoToken(
                "no GitHub token: set CIPULSE_GITHUB_TOKEN (or GITHUB_TOKEN) to sync from GitHub"
            )
        if self._client is None:
            self._client = GitHubClient(
                token=token.get_secret_value(),
                api_url=self.settings.github_api_url,
                concurrency=self.settings.github_concurrency,
                cache=DbResponseCache(self.db),
            )
        return self._client

    def syncing(self) -> set[str]:
        return set(self._tasks)

    async def aclose(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        if self._client is not None:
            await self._client.aclose()

    async def sync(
        self,
        full_name: str,
        *,
        days: int | None = None,
        limit: int | None = None,
        progress: Progress | None = None,
    ) -> SyncResult:
        key = full_name.lower()
        task = self._tasks.get(key)
        if task is None:
            task = asyncio.create_task(self._run(full_name, days, limit, progress))
            self._tasks[key] = task
            task.add_done_callback(lambda _t: self._tasks.pop(key, None))
        return await asyncio.shield(task)

    async def _run(
        self, full_name: str, days: int | None, limit: int | None, progress: Progress | None
    ) -> SyncResult:
        now = utcnow()
        result = SyncResult(repo=full_name)
        try:
            client = self.client()
        except NoToken as exc:
            result.error = str(exc)
            return result
        repo_id, branches = await asyncio.to_thread(self._prepare, full_name)
        holder = await asyncio.to_thread(self._claim, repo_id, now)
        if holder is not None:
            result.error = f"{full_name} is being synced by another cipulse process ({holder})"
            return result
        runner = RepoSync(
            db=self.db,
            client=client,
            full_name=full_name,
            branches=branches,
            now=now,
            limit=limit,
            progress=progress,
            search_cap=self.search_cap,
            claim_seconds=CLAIM_SECONDS,
        )
        try:
            result = await runner.run(days=days, initial_days=self.settings.initial_sync_days)
        except errors.GitHubError as exc:
            result = runner.result
            result.error = str(exc)
        except asyncio.CancelledError:
            await asyncio.shield(asyncio.to_thread(self._record, repo_id, runner.result, now))
            raise
        except Exception as exc:
            log.exception("sync of %s failed", full_name)
            result = runner.result
            result.error = f"sync failed: {type(exc).__name__}: {exc}"
        await asyncio.to_thread(self._record, repo_id, result, now)
        if result.error:
            log.warning("sync of %s: %s", full_name, result.error)
        else:
            log.info(
                "synced %s (%s): %d new runs, %d updated, %d requests, %d not modified",
                full_name, result.mode, result.new_runs, result.updated_runs, result.requests,
                result.not_modified,
            )  # fmt: skip
        return result

    def _prepare(self, full_name: str) -> tuple[int, list[str]]:
        with self.db.write() as uow:
            repo = repository.ensure_repo(uow.session, full_name)
            return repo.id, list(repo.branches or [])

    def _claim(self, repo_id: int, now: datetime) -> str | None:
        with self.db.write() as uow:
            return repository.claim(uow.session, repo_id, now=now, seconds=CLAIM_SECONDS)

    def _record(self, repo_id: int, result: SyncResult, started: datetime) -> None:
        with self.db.write() as uow:
            repository.release(uow.session, repo_id)
            st = repository.state(uow.session, repo_id)
            uow.session.refresh(st)
            st.last_requests = result.requests
            st.last_not_modified = result.not_modified
            st.last_points = result.points
            st.total_requests = (st.total_requests or 0) + result.requests
            if result.rate is not None:
                st.rate_limit = result.rate.limit
                st.rate_remaining = result.rate.remaining
                st.rate_reset_at = result.rate.reset_at
            if result.error:
                st.last_error = result.error
                st.last_error_at = utcnow()
            else:
                st.last_error = None


def register_configured_repos(db: Database, settings: Settings) -> None:
    """``CIPULSE_REPOS`` entries become tracked repositories at start-up."""
    if not settings.repos:
        return
    with db.write() as uow:
        for name, branches in settings.tracked_repos.items():
            repository.track_repo(uow.session, name, branches)


def _tracked(db: Database) -> list[str]:
    with db.read() as session:
        return [r.full_name for r in repository.tracked_repos(session)]


async def sync_all(coordinator: SyncCoordinator, db: Database, *, days: int | None) -> None:
    for name in await asyncio.to_thread(_tracked, db):
        await coordinator.sync(name, days=days)


async def schedule_forever(coordinator: SyncCoordinator, db: Database, settings: Settings) -> None:
    """Poll every ``poll_interval_minutes``; full reconcile at each ``reconcile_cron`` time."""
    poll = settings.poll_interval_minutes * 60
    cron = CronSim(settings.reconcile_cron, datetime.now(UTC)) if settings.reconcile_cron else None
    next_reconcile = next(cron) if cron else None
    loop = asyncio.get_running_loop()
    next_poll = loop.time() if poll else None
    while True:
        waits = []
        if next_poll is not None:
            waits.append(next_poll - loop.time())
        if next_reconcile is not None:
            waits.append((next_reconcile - datetime.now(UTC)).total_seconds())
        if not waits:
            return
        await asyncio.sleep(max(min(waits), 0.0))
        try:
            if next_reconcile is not None and datetime.now(UTC) >= next_reconcile:
                assert cron is not None
                next_reconcile = next(cron)
                await sync_all(coordinator, db, days=settings.initial_sync_days)
            elif next_poll is not None and loop.time() >= next_poll:
                await sync_all(coordinator, db, days=None)
        except Exception:
            log.exception("scheduled sync failed; trying again at the next tick")
        if next_poll is not None and loop.time() >= next_poll:
            next_poll = loop.time() + poll
