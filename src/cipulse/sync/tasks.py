"""Background sync: one coordinator per process, a poll loop and the daily reconcile.

Token mode syncs every repository with ``CIPULSE_GITHUB_TOKEN``. App mode (``CIPULSE_GITHUB_APP_ID``
set) syncs each repository with a token of the installation that holds it: one ``GitHubClient``
per installation, each with its own queue and rate limit, as GitHub counts them.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cronsim import CronSim
from sqlalchemy import select

from cipulse.db import Database
from cipulse.github import errors
from cipulse.github.app import InstallationTokens
from cipulse.github.client import CachedEntry, GitHubClient
from cipulse.models import Installation, utcnow
from cipulse.settings import Settings
from cipulse.sync import repository
from cipulse.sync.service import SEARCH_CAP, Progress, RepoSync, SyncResult
from cipulse.webhooks import repository as installations

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


class NotInstalled(errors.GitHubError):
    pass


@dataclass
class Discovery:
    """What ``discover_installations`` found: repositories now tracked, and those let go."""

    installations: int = 0
    tracked: list[str] = field(default_factory=list)
    untracked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # installations that could not be read


def _when(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class SyncCoordinator:
    """Runs syncs; a second request for a repository already syncing joins the running one."""

    def __init__(self, *, db: Database, settings: Settings, search_cap: int = SEARCH_CAP) -> None:
        self.db = db
        self.settings = settings
        self.search_cap = search_cap
        self._tasks: dict[str, asyncio.Task[SyncResult]] = {}
        self._client: GitHubClient | None = None
        self._tokens: InstallationTokens | None = None
        self._installation_clients: dict[int, GitHubClient] = {}

    @property
    def app_mode(self) -> bool:
        return self.settings.github_app_id is not None

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

    def tokens(self) -> InstallationTokens:
        """App mode: the App's installation tokens (the key file is read on first use)."""
        app_id = self.settings.github_app_id
        key_file = self.settings.github_app_private_key_file
        if app_id is None or key_file is None:
            raise NoToken("not in GitHub App mode: set CIPULSE_GITHUB_APP_ID and its private key")
        if self._tokens is None:
            try:
                pem = key_file.read_bytes()
            except OSError as exc:
                raise errors.GitHubError(
                    f"cannot read CIPULSE_GITHUB_APP_PRIVATE_KEY_FILE ({exc.strerror})"
                ) from None
            self._tokens = InstallationTokens(
                app_id=app_id, private_key_pem=pem, api_url=self.settings.github_api_url
            )
        return self._tokens

    def installation_client(self, installation_id: int) -> GitHubClient:
        """One client per installation, kept for the process: its token is renewed underneath.

        The client's own token is a placeholder that names the installation (so its ETag store
        outlives each hourly token); ``InstallationAuth`` sends the real one.
        """
        client = self._installation_clients.get(installation_id)
        if client is None:
            client = GitHubClient(
                token=f"installation-{installation_id}",
                api_url=self.settings.github_api_url,
                concurrency=self.settings.github_concurrency,
                cache=DbResponseCache(self.db),
                transport=self.tokens().auth(installation_id),
            )
            self._installation_clients[installation_id] = client
        return client

    async def client_for(self, full_name: str) -> GitHubClient:
        """The client that syncs ``full_name``: the token's, or its installation's in App mode."""
        if not self.app_mode:
            return self.client()
        installation_id = await asyncio.to_thread(self._installation_of, full_name)
        if installation_id is None:
            raise NotInstalled(
                f"{full_name} is not in any installation of the GitHub App: install the App on it"
            )
        return self.installation_client(installation_id)

    def _installation_of(self, full_name: str) -> int | None:
        with self.db.read() as session:
            repo = repository.get_repo(session, full_name)
            if repo is None or repo.installation_id is None:
                return None
            row = session.scalar(
                select(Installation).where(Installation.github_id == repo.installation_id)
            )
            if row is not None and row.deleted_at is not None:
                return None  # uninstalled: a token can no longer be bought
            return repo.installation_id

    def syncing(self) -> set[str]:
        return set(self._tasks)

    async def aclose(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        if self._client is not None:
            await self._client.aclose()
        for client in self._installation_clients.values():
            await client.aclose()
        if self._tokens is not None:
            await self._tokens.aclose()

    # -- App mode: installations ----------------------------------------------------------

    async def discover_installations(self) -> Discovery:
        """App mode: track the repositories of every installation of the App.

        Run at start-up (and before each reconcile) so that repositories are tracked without
        waiting for a webhook, and so that what changed while cipulse was down (an App
        installed, a repository added or removed, an installation deleted) is caught up on.
        An installation that fails (suspended, deleted meanwhile) keeps its repositories as
        they are and is reported in ``problems``.
        """
        tokens = self.tokens()
        found: list[tuple[dict[str, Any], list[dict[str, Any]] | None]] = []
        problems: list[str] = []
        for data in await tokens.list_installations():
            if not isinstance(data.get("id"), int):
                continue
            repos: list[dict[str, Any]] | None = None
            if data.get("suspended_at") is None:
                try:
                    repos = await tokens.installation_repositories(data["id"])
                except errors.GitHubError as exc:
                    problems.append(str(exc))
                    log.warning("GitHub App: %s", exc)
            found.append((data, repos))
        result = await asyncio.to_thread(self._store_installations, found)
        result.problems = problems
        log.info(
            "GitHub App: %d installations, %d repositories tracked, %d no longer",
            result.installations, len(result.tracked), len(result.untracked),
        )  # fmt: skip
        return result

    def _store_installations(
        self, found: list[tuple[dict[str, Any], list[dict[str, Any]] | None]]
    ) -> Discovery:
        """One unit of work: installation rows upserted, their repositories tracked or let go."""
        now = utcnow()
        result = Discovery(installations=len(found))
        with self.db.write() as uow:
            session = uow.session
            rows = repository.all_repos(session)
            by_github_id = {r.github_id: r for r in rows if r.github_id is not None}
            listed: set[int] = set()
            for data, repos in found:
                row = installations.upsert_installation(session, data, now=now)
                row.deleted_at = None
                row.suspended_at = _when(data.get("suspended_at"))
                listed.add(row.github_id)
                if repos is None:
                    continue
                kept: set[int] = set()
                for item in repos:
                    name = item.get("full_name")
                    if not isinstance(name, str):
                        continue
                    github_id = item.get("id")
                    repo = by_github_id.get(github_id) if isinstance(github_id, int) else None
                    repo = repo or repository.get_repo(session, name)
                    if repo is None or not repo.tracked:
                        repo = repository.track_repo(session, repo.full_name if repo else name, [])
                    repository.update_repo_from_github(session, repo.id, item)
                    repo.installation_id = row.github_id
                    kept.add(repo.id)
                    result.tracked.append(repo.full_name)
                for repo in rows:
                    if repo.installation_id == row.github_id and repo.id not in kept:
                        if repo.tracked:
                            result.untracked.append(repo.full_name)
                        repo.tracked = False
            app_id = self.settings.github_app_id
            for gone in session.scalars(
                select(Installation).where(Installation.deleted_at.is_(None))
            ):
                if gone.github_id in listed or gone.app_id not in (None, app_id):
                    continue
                gone.deleted_at = now  # uninstalled while cipulse was not listening
                for repo in rows:
                    if repo.installation_id == gone.github_id and repo.tracked:
                        repo.tracked = False
                        result.untracked.append(repo.full_name)
        result.tracked.sort()
        result.untracked.sort()
        return result

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
            client = await self.client_for(full_name)
        except errors.GitHubError as exc:  # no token, not installed, unreadable key
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
                if coordinator.app_mode:
                    try:
                        await coordinator.discover_installations()
                    except errors.GitHubError as exc:  # sync what is known; try again next time
                        log.warning("GitHub App: installations not refreshed: %s", exc)
                await sync_all(coordinator, db, days=settings.initial_sync_days)
            elif next_poll is not None and loop.time() >= next_poll:
                await sync_all(coordinator, db, days=None)
        except Exception:
            log.exception("scheduled sync failed; trying again at the next tick")
        if next_poll is not None and loop.time() >= next_poll:
            next_poll = loop.time() + poll
