"""The one way cipulse talks to GitHub's REST API.

gidgethub supplies the standard headers (``sansio.create_headers``); httpx carries the requests.
Around them: one paced queue per token, conditional GETs with a persistent ETag store (a 304 is
free against the primary rate limit), identical in-flight requests merged, retries by GitHub's
published rules, Link pagination, and downloads that follow a redirect to another host without
the token.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlencode, urljoin, urlsplit

import httpx
from gidgethub import sansio

from cipulse.github import errors
from cipulse.github.ratelimit import RateLimit, decide

log = logging.getLogger(__name__)

USER_AGENT = "cipulse"
API_VERSION = "2022-11-28"


@dataclass(frozen=True)
class CachedEntry:
    etag: str
    body: bytes
    next_url: str | None = None  # a 304 has no Link header, so the next page is kept too


class ResponseCache(Protocol):
    """Where ETags and their bodies live between runs (the database, in production)."""

    async def get(self, key: str) -> CachedEntry | None: ...

    async def put(self, key: str, entry: CachedEntry) -> None: ...


class MemoryCache:
    def __init__(self) -> None:
        self.entries: dict[str, CachedEntry] = {}

    async def get(self, key: str) -> CachedEntry | None:
        return self.entries.get(key)

    async def put(self, key: str, entry: CachedEntry) -> None:
        self.entries[key] = entry


@dataclass
class Page:
    url: str
    status: int
    data: Any
    from_cache: bool
    next_url: str | None
    rate: RateLimit | None


@dataclass
class ClientStats:
    requests: int = 0
    not_modified: int = 0
    retries: int = 0
    points: int = 0
    waited_seconds: float = 0.0
    rate: RateLimit | None = None
    by_reason: dict[str, int] = field(default_factory=dict)


def token_fingerprint(token: str | None) -> str:
    if not token:
        return "anonymous"
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def _message(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return body[:200].decode("utf-8", "replace")
    return str(data.get("message", "")) if isinstance(data, dict) else ""


class GitHubClient:
    def __init__(
        self,
        *,
        token: str | None,
        api_url: str = "https://api.github.com",
        concurrency: int = 1,
        cache: ResponseCache | None = None,
        max_tries: int = 6,
        max_wait_seconds: float = 900.0,
        timeout_seconds: float = 30.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self._api_host = urlsplit(self.api_url).netloc
        self._token = token
        self._fingerprint = token_fingerprint(token)
        self.concurrency = max(1, concurrency)
        self.cache = cache or MemoryCache()
        self.max_tries = max_tries
        self.max_wait_seconds = max_wait_seconds
        self._sleep = sleep
        self._http = httpx.AsyncClient(
            timeout=timeout_seconds, follow_redirects=False, transport=transport
        )
        self._slots: asyncio.Semaphore | None = None
        self._inflight: dict[str, asyncio.Future[Page]] = {}
        self._blocked_until = 0.0
        self.stats = ClientStats()

    async def __aenter__(self) -> GitHubClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- URLs -------------------------------------------------------------------------------

    def url(self, path: str, params: dict[str, Any] | None = None) -> str:
        base = path if path.startswith(("http://", "https://")) else self.api_url + path
        if not params:
            return base
        query = urlencode(sorted((k, str(v)) for k, v in params.items() if v is not None))
        return f"{base}{'&' if '?' in base else '?'}{query}"

    def _headers(self, *, with_auth: bool) -> dict[str, str]:
        token = self._token if with_auth else None
        headers = dict(sansio.create_headers(USER_AGENT, oauth_token=token))
        if token:
            headers["authorization"] = f"Bearer {token}"
        headers["x-github-api-version"] = API_VERSION
        return headers

    # -- GET --------------------------------------------------------------------------------

    async def get(
        self, path: str, params: dict[str, Any] | None = None, *, conditional: bool = True
    ) -> Page:
        """A conditional GET; identical requests already in flight share one answer.

        ``conditional=False`` skips the ETag store, for answers known to have changed.
        """
        url = self.url(path, params)
        running = self._inflight.get(url)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[Page] = asyncio.get_running_loop().create_future()
        self._inflight[url] = future
        try:
            page = await self._get(url, conditional)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise their own copy
            raise
        else:
            future.set_result(page)
            return page
        finally:
            self._inflight.pop(url, None)

    async def paginate(
        self,
        path: str,
        params: dict[str, Any] | None = None,
        *,
        max_pages: int | None = None,
        conditional: bool = True,
    ) -> AsyncIterator[Page]:
        """Pages in order, following ``Link: rel=next`` exactly as GitHub gives it."""
        url: str | None = self.url(path, params)
        pages = 0
        while url is not None:
            page = await self.get(url, conditional=conditional)
            yield page
            pages += 1
            if max_pages is not None and pages >= max_pages:
                return
            url = page.next_url

    async def _get(self, url: str, conditional: bool) -> Page:
        key = f"{self._fingerprint} GET {url}"
        cached = await self.cache.get(key) if conditional else None
        attempt = 0
        while True:
            headers = self._headers(with_auth=True)
            if cached is not None:
                headers["if-none-match"] = cached.etag
            response = await self._send(url, headers, attempt)
            if response is None:
                attempt += 1
                continue
            rate = RateLimit.from_headers(response.headers)
            if rate is not None:
                self.stats.rate = rate
            if response.status_code == 304 and cached is not None:
                self.stats.not_modified += 1
                next_url = self._next(response) or cached.next_url
                return Page(url, 304, json.loads(cached.body), True, next_url, rate)
            if response.status_code == 200:
                self.stats.points += 1
                body = response.content
                etag = response.headers.get("etag")
                next_url = self._next(response)
                if etag and conditional:
                    await self.cache.put(key, CachedEntry(etag=etag, body=body, next_url=next_url))
                data = json.loads(body) if body else None
                return Page(url, 200, data, False, next_url, rate)
            self.stats.points += 1
            await self._fail_or_wait(response, url, attempt)
            attempt += 1

    async def _send(self, url: str, headers: dict[str, str], attempt: int) -> httpx.Response | None:
        """One request through the token's queue; None means a network error worth a retry."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.concurrency)
        async with self._slots:
            pause = self._blocked_until - time.monotonic()
            if pause > 0:
                await self._wait(pause, "rate limit (shared)")
            self.stats.requests += 1
            try:
                return await self._http.get(url, headers=headers)
            except httpx.TransportError as exc:
                if attempt + 1 >= self.max_tries:
                    raise errors.Unreachable(
                        f"cannot reach GitHub at {self.api_url}: {type(exc).__name__}"
                    ) from None
                await self._wait(min(2.0**attempt, 30.0), "network error")
                return None

    async def _wait(self, seconds: float, reason: str) -> None:
        self.stats.retries += 1
        self.stats.waited_seconds += seconds
        self.stats.by_reason[reason] = self.stats.by_reason.get(reason, 0) + 1
        log.info("GitHub: waiting %.1f s (%s)", seconds, reason)
        await self._sleep(seconds)

    async def _fail_or_wait(self, response: httpx.Response, url: str, attempt: int) -> None:
        status = response.status_code
        message = _message(response.content)
        path = urlsplit(url).path
        if status == 401:
            raise errors.BadCredentials(
                "GitHub rejected the token (401 Bad credentials): check CIPULSE_GITHUB_TOKEN",
                status=401,
            )
        if status == 404:
            raise errors.NotFound(
                f"GitHub has no {path} (404): check the name, and that the token can see it",
                status=404,
            )
        if status == 410:
            raise errors.Gone(f"{path} has expired on GitHub (410)", status=410)
        verdict = decide(
            status, dict(response.headers), message, attempt=attempt, now=datetime.now(UTC)
        )
        if verdict.retry_after is None or attempt + 1 >= self.max_tries:
            if status in (403, 429) and verdict.retry_after is not None:
                rate = RateLimit.from_headers(response.headers)
                raise errors.RateLimited(
                    f"GitHub's rate limit stopped the sync ({verdict.reason})",
                    reset_at=rate.reset_at if rate else None,
                )
            if status == 403:
                raise errors.Forbidden(
                    f"GitHub refused {path} (403 {message or 'Forbidden'})", status=403
                )
            raise errors.GitHubError(
                f"GitHub answered {status} for {path}"
                + (f": {message}" if message else "")
                + (f" after {attempt + 1} tries" if status >= 500 else ""),
                status=status,
            )
        if verdict.retry_after > self.max_wait_seconds:
            rate = RateLimit.from_headers(response.headers)
            reset = rate.reset_at if rate else None
            raise errors.RateLimited(
                "GitHub's rate limit is used up"
                + (f" until {reset:%H:%M} UTC" if reset else "")
                + "; the sync will continue after that",
                reset_at=reset,
            )
        if status in (403, 429):
            self._blocked_until = max(self._blocked_until, time.monotonic() + verdict.retry_after)
            await self._wait(verdict.retry_after, verdict.reason)
        else:
            await self._wait(verdict.retry_after, verdict.reason)

    @staticmethod
    def _next(response: httpx.Response) -> str | None:
        link = response.links.get("next")
        return link.get("url") if link else None

    # -- downloads --------------------------------------------------------------------------

    async def download(self, path: str, dest: Path, *, max_bytes: int | None = None) -> int:
        """Stream a log or artifact to ``dest``; the token goes only to the API host."""
        url = self.url(path)
        for _hop in range(5):
            same_host = urlsplit(url).netloc == self._api_host
            headers = self._headers(with_auth=same_host)
            if self._slots is None:
                self._slots = asyncio.Semaphore(self.concurrency)
            async with self._slots:
                self.stats.requests += 1
                try:
                    async with self._http.stream("GET", url, headers=headers) as response:
                        if response.is_redirect:
                            url = urljoin(url, response.headers["location"])
                            continue
                        if response.status_code != 200:
                            await response.aread()
                            await self._fail_or_wait(response, url, self.max_tries)
                        return await _stream_to(response, dest, max_bytes)
                except httpx.TransportError as exc:
                    raise errors.Unreachable(f"download failed: {type(exc).__name__}") from None
        raise errors.GitHubError("too many redirects while downloading")


async def _stream_to(response: httpx.Response, dest: Path, max_bytes: int | None) -> int:
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".part")
    written = 0
    with partial.open("wb") as out:
        async for chunk in response.aiter_bytes():
            written += len(chunk)
            if max_bytes is not None and written > max_bytes:
                out.close()
                partial.unlink(missing_ok=True)
                raise errors.GitHubError(f"download is larger than the {max_bytes} byte limit")
            out.write(chunk)
    partial.replace(dest)
    return written
