"""GitHub App mode: the App's JWT, the installation tokens it buys, and the App's installations.

An App cannot read a repository with its JWT; it buys an installation token (valid one hour) for
the installation that holds the repository. ``InstallationTokens`` buys one per installation,
keeps it until less than ``RENEW_MARGIN_SECONDS`` remain, and merges concurrent requests for the
same installation into one purchase. ``InstallationAuth`` puts the current token on every request
of a ``GitHubClient``, so a sync that outlives a token simply carries on with the next one.
Tokens and JWTs never reach the logs or error messages: only installation ids and expiry times.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from cipulse.github import errors
from cipulse.github.client import API_VERSION, USER_AGENT
from cipulse.github.ratelimit import backoff, decide

log = logging.getLogger(__name__)

JWT_BACKDATE_SECONDS = 60  # GitHub's advice: iat a minute back, for clocks that drift
JWT_EXPIRES_IN_SECONDS = 9 * 60  # exp - iat = 10 min, GitHub's maximum
RENEW_MARGIN_SECONDS = 5 * 60  # never start using a token that has less than this left
LAST_RESORT_SECONDS = 30  # while GitHub cannot sell a new one, the old one serves until then
JWT_REJECTED = "GitHub rejected the App's JWT: check CIPULSE_GITHUB_APP_ID and the private key"


def app_jwt(app_id: int, private_key_pem: str | bytes | RSAPrivateKey, now: float) -> str:
    """The App's JWT: RS256, ``iat`` 60 s back, ``exp`` 9 min ahead, ``iss`` the App id.

    ``gidgethub.apps.get_jwt`` makes the same claims but reads the wall clock itself; taking
    ``now`` keeps the JWT and the token cache on one clock, which tests can set. ``iss`` is sent
    as a string, as GitHub's own examples do (JWT's ``iss`` is a StringOrURI).
    """
    issued = int(now)
    claims = {
        "iat": issued - JWT_BACKDATE_SECONDS,
        "exp": issued + JWT_EXPIRES_IN_SECONDS,
        "iss": str(app_id),
    }
    return jwt.encode(claims, private_key_pem, algorithm="RS256")


@dataclass(frozen=True)
class InstallationToken:
    installation_id: int
    token: str = field(repr=False)
    expires_at: datetime
    permissions: dict[str, str]
    repository_selection: str | None


def _message(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return ""
    return str(data.get("message", "")) if isinstance(data, dict) else ""


def _parse_expiry(value: object) -> datetime:
    if not isinstance(value, str):
        raise errors.GitHubError("GitHub sent an installation token without expires_at")
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class InstallationTokens:
    """Installation tokens of one App: bought with a fresh JWT, cached, renewed before expiry.

    ``clock`` returns UNIX seconds; tests move it instead of waiting for a token to age.
    ``purchases`` counts the tokens bought, for logs and tests.
    """

    def __init__(
        self,
        *,
        app_id: int,
        private_key_pem: str | bytes,
        api_url: str = "https://api.github.com",
        clock: Callable[[], float] = time.time,
        max_tries: int = 3,
        max_wait_seconds: float = 60.0,
        timeout_seconds: float = 30.0,
        per_page: int = 100,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.app_id = app_id
        self.per_page = per_page
        self.api_url = api_url.rstrip("/")
        self._pem = (
            private_key_pem.encode() if isinstance(private_key_pem, str) else private_key_pem
        )
        self._key: RSAPrivateKey | None = None
        self._clock = clock
        self.max_tries = max(1, max_tries)
        self.max_wait_seconds = max_wait_seconds
        self._sleep = sleep
        self.http = httpx.AsyncClient(
            timeout=timeout_seconds, follow_redirects=False, transport=transport
        )
        self._cache: dict[int, InstallationToken] = {}
        self._buying: dict[int, asyncio.Task[InstallationToken]] = {}
        self.purchases = 0

    async def aclose(self) -> None:
        for task in list(self._buying.values()):
            task.cancel()
        await self.http.aclose()

    # -- the JWT ----------------------------------------------------------------------------

    def jwt(self) -> str:
        """A fresh JWT: one per call to GitHub, so none is ever near its 10-minute end."""
        if self._key is None:
            try:
                key = load_pem_private_key(self._pem, password=None)
            except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
                raise errors.GitHubError(
                    "CIPULSE_GITHUB_APP_PRIVATE_KEY_FILE does not hold a private key in PEM "
                    f"form without a passphrase ({type(exc).__name__})"
                ) from None
            if not isinstance(key, RSAPrivateKey):
                raise errors.GitHubError(
                    "CIPULSE_GITHUB_APP_PRIVATE_KEY_FILE holds a key GitHub cannot use: "
                    "GitHub Apps sign with RSA (download a new key from the App's settings)"
                )
            self._key = key
        return app_jwt(self.app_id, self._key, self._clock())

    # -- installation tokens ----------------------------------------------------------------

    def cached(self, installation_id: int) -> InstallationToken | None:
        """The cached token while it has more than the renewal margin left, else None."""
        found = self._cache.get(installation_id)
        if found is None:
            return None
        if found.expires_at.timestamp() - self._clock() <= RENEW_MARGIN_SECONDS:
            return None
        return found

    async def get(self, installation_id: int) -> InstallationToken:
        """A token with at least the renewal margin left; callers at once share one purchase.

        Renewing early leaves time for GitHub to be down: if the purchase fails for a reason
        other than the App's credentials or the installation itself, the current token is used
        until its last ``LAST_RESORT_SECONDS``.
        """
        found = self.cached(installation_id)
        if found is not None:
            return found
        task = self._buying.get(installation_id)
        if task is None:
            task = asyncio.create_task(self._buy(installation_id))
            self._buying[installation_id] = task
            task.add_done_callback(lambda _t: self._buying.pop(installation_id, None))
        try:
            return await asyncio.shield(task)  # one caller cancelled does not cancel the purchase
        except errors.GitHubError as exc:
            current = self._cache.get(installation_id)
            left = current.expires_at.timestamp() - self._clock() if current else 0.0
            if current is None or exc.status in (401, 403, 404) or left < LAST_RESORT_SECONDS:
                raise
            log.warning(
                "GitHub App: cannot renew the token of installation %d (%s); the current one "
                "has %d s left",
                installation_id, exc, left,
            )  # fmt: skip
            return current

    async def token(self, installation_id: int) -> str:
        return (await self.get(installation_id)).token

    def forget(self, installation_id: int, token: str | None = None) -> None:
        """Drop a token GitHub refused (only that one, if given: another may be newer)."""
        found = self._cache.get(installation_id)
        if found is not None and (token is None or found.token == token):
            del self._cache[installation_id]

    async def _buy(self, installation_id: int) -> InstallationToken:
        url = f"{self.api_url}/app/installations/{installation_id}/access_tokens"
        response = await self._send("POST", url, self.jwt())
        if response.status_code != 201:
            raise self._error(response, f"installation {installation_id} of the App")
        data = response.json()
        if not isinstance(data, dict) or not isinstance(data.get("token"), str):
            raise errors.GitHubError("GitHub's answer to a token purchase had no token")
        bought = InstallationToken(
            installation_id=installation_id,
            token=data["token"],
            expires_at=_parse_expiry(data.get("expires_at")),
            permissions=dict(data.get("permissions") or {}),
            repository_selection=data.get("repository_selection"),
        )
        self._cache[installation_id] = bought
        self.purchases += 1
        log.info(
            "GitHub App: new token for installation %d, valid until %s",
            installation_id,
            bought.expires_at.strftime("%H:%M:%S UTC"),
        )
        return bought

    # -- listings ---------------------------------------------------------------------------

    async def list_installations(self) -> list[dict[str, Any]]:
        """``GET /app/installations``, every page: the accounts (users and organisations)
        that installed the App."""
        found: list[dict[str, Any]] = []
        url: str | None = f"{self.api_url}/app/installations?per_page={self.per_page}"
        while url is not None:
            response = await self._send("GET", url, self.jwt())
            if response.status_code != 200:
                raise self._error(response, "list of the App's installations")
            page = response.json()
            found += [item for item in page if isinstance(item, dict)]
            url = response.links.get("next", {}).get("url")
        return found

    async def installation_repositories(self, installation_id: int) -> list[dict[str, Any]]:
        """``GET /installation/repositories`` with the installation's token, every page."""
        found: list[dict[str, Any]] = []
        url: str | None = f"{self.api_url}/installation/repositories?per_page={self.per_page}"
        while url is not None:
            token = await self.token(installation_id)
            response = await self._send("GET", url, token)
            if response.status_code == 401:  # revoked early: buy another, once
                self.forget(installation_id, token)
                response = await self._send("GET", url, await self.token(installation_id))
            if response.status_code != 200:
                what = f"repositories for installation {installation_id}"
                raise self._error(response, what, installation_id=installation_id)
            page = response.json()
            found += [r for r in page.get("repositories", []) if isinstance(r, dict)]
            url = response.links.get("next", {}).get("url")
        return found

    # -- HTTP -------------------------------------------------------------------------------

    async def _send(self, method: str, url: str, credential: str) -> httpx.Response:
        """One call, retried on network errors, 5xx and rate limits by GitHub's rules."""
        headers = {
            "user-agent": USER_AGENT,
            "accept": "application/vnd.github+json",
            "authorization": f"Bearer {credential}",
            "x-github-api-version": API_VERSION,
        }
        for attempt in range(self.max_tries):
            last = attempt + 1 >= self.max_tries
            try:
                response = await self.http.request(method, url, headers=headers)
            except httpx.TransportError as exc:
                if last:
                    raise errors.Unreachable(
                        f"cannot reach GitHub at {self.api_url}: {type(exc).__name__}"
                    ) from None
                await self._sleep(backoff(attempt))
                continue
            if response.status_code < 400:
                return response
            verdict = decide(
                response.status_code,
                dict(response.headers),
                _message(response),
                attempt=attempt,
                now=datetime.now(UTC),
            )
            wait = verdict.retry_after
            if last or wait is None or wait > self.max_wait_seconds:
                return response
            log.info("GitHub App: waiting %.1f s (%s)", wait, verdict.reason)
            await self._sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _error(
        self, response: httpx.Response, what: str, *, installation_id: int | None = None
    ) -> errors.GitHubError:
        """One sentence for a failed call; ``installation_id`` when it used that one's token."""
        status = response.status_code
        message = _message(response)
        detail = f" ({message})" if message else ""
        if status == 401 and installation_id is None:
            return errors.BadCredentials(JWT_REJECTED + detail, status=401)
        if status == 401:
            return errors.BadCredentials(
                f"GitHub rejected the token of installation {installation_id} (401){detail}",
                status=401,
            )
        said = f": {message}" if message else ""
        if status == 404:
            return errors.NotFound(
                f"GitHub has no {what} (404): the App was uninstalled, or the installation "
                "belongs to another App",
                status=404,
            )
        if status in (403, 429):
            return errors.Forbidden(f"GitHub refused {what} ({status}{said})", status=status)
        return errors.GitHubError(f"GitHub answered {status} for {what}{said}", status=status)

    # -- auth for GitHubClient ----------------------------------------------------------------

    def auth(self, installation_id: int) -> InstallationAuth:
        return InstallationAuth(self, installation_id)


class InstallationAuth(httpx.AsyncBaseTransport):
    """An httpx transport that sends each API request with the installation's current token.

    ``GitHubClient`` holds one fixed token; an installation token lasts an hour and a long sync
    (rate-limit waits included) can outlive it. Given a placeholder token and this transport,
    the client's requests that carry ``Authorization`` (API requests only: signed downloads carry
    none) get the token ``InstallationTokens`` has now, renewed as it nears its end. A 401 means
    GitHub dropped the token early: it is forgotten and the request tried once with a new one.
    Requests go out through ``InstallationTokens.http``, so proxies from the environment apply
    as they do in token mode.
    """

    def __init__(self, tokens: InstallationTokens, installation_id: int) -> None:
        self.tokens = tokens
        self.installation_id = installation_id

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if "authorization" not in request.headers:
            return await self.tokens.http.send(request, stream=True)
        token = await self.tokens.token(self.installation_id)
        request.headers["authorization"] = f"Bearer {token}"
        response = await self.tokens.http.send(request, stream=True)
        if response.status_code != 401 or request.method != "GET":
            return response
        await response.aclose()
        self.tokens.forget(self.installation_id, token)
        request.headers["authorization"] = f"Bearer {await self.tokens.token(self.installation_id)}"
        response = await self.tokens.http.send(request, stream=True)
        if response.status_code == 401:
            await response.aclose()
            raise errors.BadCredentials(
                f"GitHub rejected the token of installation {self.installation_id} (401): "
                "check that the App is still installed on the repository",
                status=401,
            )
        return response

    async def aclose(self) -> None:
        """Nothing of its own to close: ``InstallationTokens.aclose`` closes the connections."""
