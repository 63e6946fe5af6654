"""Sync a repository's runs, attempts, jobs and steps from GitHub at next to no rate-limit cost.

- First sync: the last N days as one ``created`` window starting on a day boundary (a stable
  URL, so a re-run the same day is answered by 304s), split in two, newest half first, while
  GitHub's 1,000-result cap would hide runs.
- Later syncs: the newest page of runs (a 304 when nothing changed), further pages only while
  they reach past what is stored, and every stored run not yet completed re-polled by id.
- Jobs with ``filter=all`` (earlier attempts included), fetched only for runs whose state
  changed since their jobs were stored.

Every write is an idempotent upsert keyed by GitHub ids, committed page by page: a sync killed
half-way and run again ends with the same rows as one that was never interrupted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cipulse.db import Database
from cipulse.github.client import GitHubClient
from cipulse.github.ratelimit import RateLimit
from cipulse.github.schemas import (
    JobData,
    PayloadError,
    RunData,
    parse_job,
    parse_run,
    parse_time,
    parse_workflow,
)
from cipulse.models.base import utcnow
from cipulse.sync import repository

PER_PAGE = 100
SEARCH_CAP = 1000
OVERLAP = timedelta(hours=1)
MIN_WINDOW = timedelta(minutes=1)
STORE_BATCH = 50

Progress = Callable[[str, int, int | None], None]


@dataclass
class SyncResult:
    repo: str
    mode: str = "incremental"
    new_runs: int = 0
    updated_runs: int = 0
    runs_seen: int = 0
    jobs_fetched_for: int = 0
    jobs_stored: int = 0
    updated_workflows: int = 0
    requests: int = 0
    not_modified: int = 0
    points: int = 0
    rate: RateLimit | None = None
    error: str | None = None
    errors: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """One line for the CLI and the logs."""
        line = (
            f"{self.repo} ({self.mode}): {self.new_runs} new runs, {self.updated_runs} updated, "
            f"jobs fetched for {self.jobs_fetched_for}; {self.requests} requests, "
            f"{self.not_modified} not modified"
        )
        if self.rate and self.rate.remaining is not None:
            line += f"; rate limit {self.rate.remaining}/{self.rate.limit}"
            if self.rate.reset_at:
                line += f", resets {self.rate.reset_at:%H:%M} UTC"
        return line


def _window_param(start: datetime, end: datetime | None) -> str:
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    if end is None:
        return f">={start.strftime(fmt)}"
    return f"{start.strftime(fmt)}..{(end - timedelta(seconds=1)).strftime(fmt)}"


def start_of_day(moment: datetime) -> datetime:
    """Windows start on a UTC day boundary, so their URLs (and ETags) hold for a whole day."""
    return datetime(moment.year, moment.month, moment.day, tzinfo=UTC)


class RepoSync:
    """One sync of one repository: GitHub calls here, database work in a thread."""

    def __init__(
        self,
        *,
        db: Database,
        client: GitHubClient,
        full_name: str,
        branches: list[str],
        now: datetime,
        limit: int | None = None,
        progress: Progress | None = None,
        search_cap: int = SEARCH_CAP,
        claim_seconds: float | None = None,
    ) -> None:
        self.db = db
        self.client = client
        self.full_name = full_name
        self.branches = branches
        self.now = now
        self.limit = limit
        self.progress = progress or (lambda message, done, total: None)
        self.search_cap = search_cap
        self.claim_seconds = claim_seconds
        self.result = SyncResult(repo=full_name)
        self.repo_id = 0
        self._workflow_ids: dict[int, int] = {}
        self._seen: set[int] = set()
        self._jobs_queue: asyncio.Queue[RunData] = asyncio.Queue(maxsize=200)
        self._store_queue: asyncio.Queue[tuple[RunData, list[JobData]] | None] = asyncio.Queue()
        self._failure: BaseException | None = None

    @property
    def _base(self) -> str:
        return f"/repos/{self.full_name}"

    def _limit_reached(self) -> bool:
        return self.limit is not None and self.result.runs_seen >= self.limit

    async def run(self, *, days: int | None, initial_days: int) -> SyncResult:
        start = (self.client.stats.requests, self.client.stats.not_modified,
                 self.client.stats.points)  # fmt: skip
        workers = [asyncio.create_task(self._jobs_worker()) for _ in range(self.client.concurrency)]
        writer = asyncio.create_task(self._jobs_writer())
        try:
            await self._run(days=days, initial_days=initial_days)
            await self._jobs_queue.join()
            await self._store_queue.put(None)
            await writer
            if self._failure is not None:
                raise self._failure
            await asyncio.to_thread(self._finish)
        finally:
            for task in [*workers, writer]:
                task.cancel()
            stats = self.client.stats
            self.result.requests = stats.requests - start[0]
            self.result.not_modified = stats.not_modified - start[1]
            self.result.points = stats.points - start[2]
            self.result.rate = stats.rate
        return self.result

    async def _run(self, *, days: int | None, initial_days: int) -> None:
        page = await self.client.get(self._base)
        self.repo_id = await asyncio.to_thread(self._store_repo, page.data)
        await self._sync_workflows()
        initial_done, newest = await asyncio.to_thread(self._state)
        branches: list[str | None] = [*self.branches] or [None]
        if days is not None or initial_done is None:
            self.result.mode = "initial" if initial_done is None else "reconcile"
            since = start_of_day(self.now - timedelta(days=days or initial_days))
            for branch in branches:
                # The newest page first, by the URL later polls use: their first answer is then
                # a free 304, and a small repository needs no other listing request.
                oldest = await self._list_newest_page(branch)
                if oldest is not None and oldest > since:
                    await self._list_window(branch, since, None)
        else:
            self.result.mode = "incremental"
            for branch in branches:
                await self._list_recent(branch, newest)
            await self._repoll_unfinished()

    # -- database steps (run in a worker thread) ---------------------------------------------

    def _store_repo(self, data: dict[str, Any]) -> int:
        with self.db.write() as uow:
            repo = repository.ensure_repo(uow.session, self.full_name)
            repository.update_repo_from_github(uow.session, repo.id, data)
            self.full_name = repo.full_name
            return repo.id

    def _state(self) -> tuple[datetime | None, datetime | None]:
        with self.db.write() as uow:
            st = repository.state(uow.session, self.repo_id)
            return st.initial_done_at, st.newest_run_created_at

    def _finish(self) -> None:
        with self.db.write() as uow:
            st = repository.state(uow.session, self.repo_id)
            st.initial_done_at = st.initial_done_at or self.now
            st.last_success_at = self.now

    def _store_runs(self, runs: list[RunData]) -> list[RunData]:
        """Upsert runs; answer those whose jobs must be fetched (new or changed)."""
        with self.db.write() as uow:
            missing = {r.workflow_github_id for r in runs} - set(self._workflow_ids)
            self._workflow_ids.update(
                repository.workflow_ids(uow.session, [m for m in missing if m])
            )
            stored = repository.stored_versions(uow.session, [r.github_id for r in runs])
            repository.upsert_runs(
                uow.session,
                self.repo_id,
                [(r, self._workflow_ids.get(r.workflow_github_id or 0)) for r in runs],
            )
            need = []
            for run in runs:
                known = stored.get(run.github_id)
                if known is None:
                    self.result.new_runs += 1
                elif known != (run.run_attempt, repository.run_version(run)):
                    self.result.updated_runs += 1
                else:
                    continue
                need.append(run)
            if self.claim_seconds:
                repository.renew(
                    uow.session, self.repo_id, now=utcnow(), seconds=self.claim_seconds
                )
            st = repository.state(uow.session, self.repo_id)
            newest = max(r.created_at for r in runs)
            if st.newest_run_created_at is None or newest > st.newest_run_created_at:
                st.newest_run_created_at = newest
        return need

    # -- GitHub steps -----------------------------------------------------------------------

    async def _sync_workflows(self) -> None:
        async for page in self.client.paginate(
            f"{self._base}/actions/workflows", {"per_page": PER_PAGE}
        ):
            workflows = [parse_workflow(w) for w in page.data.get("workflows", [])]

            def store(items: list[Any] = workflows) -> int:
                with self.db.write() as uow:
                    return repository.upsert_workflows(uow.session, self.repo_id, items)

            self.result.updated_workflows += await asyncio.to_thread(store)

    async def _list_window(self, branch: str | None, start: datetime, end: datetime | None) -> None:
        params: dict[str, Any] = {"per_page": PER_PAGE, "created": _window_param(start, end)}
        if branch:
            params["branch"] = branch
        first = True
        async for page in self.client.paginate(f"{self._base}/actions/runs", params):
            total = page.data.get("total_count", 0)
            if first and total > self.search_cap and (end or self.now) - start > MIN_WINDOW:
                middle = start + ((end or self.now) - start) / 2
                await self._list_window(branch, middle, end)
                await self._list_window(branch, start, middle)
                return
            first = False
            await self._handle_runs(page.data.get("workflow_runs", []), total)
            if self._limit_reached():
                return

    async def _list_newest_page(self, branch: str | None) -> datetime | None:
        """Read page 1 of the unfiltered listing; answer its oldest run if more pages follow."""
        params: dict[str, Any] = {"per_page": PER_PAGE}
        if branch:
            params["branch"] = branch
        page = await self.client.get(f"{self._base}/actions/runs", params)
        runs = page.data.get("workflow_runs", [])
        await self._handle_runs(runs, page.data.get("total_count"))
        if page.next_url is None or not runs or self._limit_reached():
            return None
        return min((t for t in (parse_time(r.get("created_at")) for r in runs) if t), default=None)

    async def _list_recent(self, branch: str | None, newest: datetime | None) -> None:
        params: dict[str, Any] = {"per_page": PER_PAGE}
        if branch:
            params["branch"] = branch
        horizon = (newest - OVERLAP) if newest else None
        async for page in self.client.paginate(f"{self._base}/actions/runs", params):
            runs = page.data.get("workflow_runs", [])
            await self._handle_runs(runs, page.data.get("total_count"))
            oldest = min((r.get("created_at") or "" for r in runs), default="")
            if (
                self._limit_reached()
                or horizon is None
                or not runs
                or oldest < horizon.strftime("%Y-%m-%dT%H:%M:%SZ")
            ):
                return

    async def _repoll_unfinished(self) -> None:
        ids = await asyncio.to_thread(self._unfinished)
        ids = [i for i in ids if i not in self._seen]
        pages = await asyncio.gather(
            *(self.client.get(f"{self._base}/actions/runs/{i}") for i in ids)
        )
        await self._handle_runs([p.data for p in pages], None)

    def _unfinished(self) -> list[int]:
        with self.db.read() as session:
            return repository.unfinished_runs(session, self.repo_id)

    async def _handle_runs(self, raw: list[dict[str, Any]], total: int | None) -> None:
        runs = []
        for item in raw:
            if self._limit_reached():
                break
            try:
                run = parse_run(item)
            except PayloadError as exc:
                self.result.errors.append(f"skipped a run: {exc}")
                continue
            if run.github_id in self._seen:
                continue
            self._seen.add(run.github_id)
            self.result.runs_seen += 1
            runs.append(run)
        if not runs:
            return
        if self._failure is not None:
            raise self._failure
        need = await asyncio.to_thread(self._store_runs, runs)
        self.progress("runs", self.result.runs_seen, total)
        for run in need:
            await self._jobs_queue.put(run)

    async def _jobs_worker(self) -> None:
        """One per allowed request slot, so the slots stay busy while pages are listed."""
        while True:
            run = await self._jobs_queue.get()
            try:
                if self._failure is None:
                    await self._sync_jobs(run)
            except Exception as exc:
                self._failure = self._failure or exc
            finally:
                self._jobs_queue.task_done()

    async def _sync_jobs(self, run: RunData) -> None:
        jobs = []
        # Jobs are fetched only when the run changed, so an ETag would never match: skip it.
        async for page in self.client.paginate(
            f"{self._base}/actions/runs/{run.github_id}/jobs",
            {"filter": "all", "per_page": PER_PAGE},
            conditional=False,
        ):
            jobs += [parse_job(j) for j in page.data.get("jobs", [])]
        await self._store_queue.put((run, jobs))

    async def _jobs_writer(self) -> None:
        """The one writer of jobs: many runs per transaction, while the fetchers go on."""
        done = False
        while not done:
            batch: list[tuple[RunData, list[JobData]]] = []
            item = await self._store_queue.get()
            while item is not None:
                batch.append(item)
                if self._store_queue.empty() or len(batch) >= STORE_BATCH:
                    break
                item = self._store_queue.get_nowait()
            done = item is None
            if batch and self._failure is None:
                try:
                    stored = await asyncio.to_thread(self._store_jobs, batch)
                except Exception as exc:
                    self._failure = self._failure or exc
                    continue
                self.result.jobs_stored += stored
                self.result.jobs_fetched_for += len(batch)
                self.progress("jobs", self.result.jobs_fetched_for, None)

    def _store_jobs(self, batch: list[tuple[RunData, list[JobData]]]) -> int:
        with self.db.write() as uow:
            return sum(
                repository.store_jobs(
                    uow.session,
                    repo_id=self.repo_id,
                    run=run,
                    workflow_id=self._workflow_ids.get(run.workflow_github_id or 0),
                    jobs=jobs,
                )
                for run, jobs in batch
            )
