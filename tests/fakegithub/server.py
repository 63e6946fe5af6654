"""A fake GitHub REST API served over real HTTP on 127.0.0.1, plus the signed-download host.

    with FakeGitHub(Scenario.generate(1)) as gh:
        httpx.get(f"{gh.api_url}/repos/octo-org/hello-world/actions/runs",
                  headers={"Authorization": f"Bearer {gh.token}"})

Two uvicorn servers run in background threads, each on a free loopback port: the API
(``gh.api_url``) and the host that serves job logs and artifact zips behind pre-signed URLs
(``gh.download_url``), which the API's 302 answers point to. See README.md for what is served.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import http
import math
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakegithub import apps, bodies, contents
from tests.fakegithub.httputil import (
    ServerThread,
    cache_headers,
    created_filter,
    etag_matches,
    json_bytes,
    last_page,
    page_rels,
    path_and_query,
    to_int,
)
from tests.fakegithub.messages import (
    DOWNLOAD_PREFIX,
    WINDOW_SECONDS,
    Answer,
    Bucket,
    Ctx,
    Fault,
    Handler,
    Invalid,
    LoggedRequest,
    NotFound,
    Stats,
)
from tests.fakegithub.scenario import Artifact, Job, Repo, Run, Scenario, Workflow

API_VERSION = "2022-11-28"
# Filters after which GitHub only lets you reach the first 1,000 runs of a listing.
SEARCH_FILTERS = ("actor", "branch", "check_suite_id", "created", "event", "head_sha", "status")
SECONDARY_LIMIT_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "
    "If you reach out to GitHub Support for help, please include the request ID {request_id}."
)
SECONDARY_LIMIT_DOCS = (
    "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"
)
PRIMARY_LIMIT_DOCS = (
    "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-primary-rate-limits"
)
UNAUTHENTICATED_LIMIT = 60
# Operations that take the App's JWT (and nothing else).
APP_OPS = ("apps/list-installations", "apps/create-installation-access-token")
NOT_AN_INSTALLATION = (
    "You must authenticate with an installation access token in order to list repositories for "
    "an installation."
)

T = TypeVar("T")


class FakeGitHub:
    """The fake GitHub; a context manager that starts and stops both servers.

    ``search_cap``: how many runs a filtered listing lets you reach (GitHub: 1,000).
    ``signed_url_ttl``: seconds a pre-signed download URL stays valid.
    ``app_id``: serve the GitHub App endpoints for this App, whose JWTs are checked with
    ``app_public_key_pem`` (default: the session's ``apps.app_key()``); installation tokens last
    ``installation_token_ttl`` seconds.
    """

    def __init__(
        self,
        scenario: Scenario,
        *,
        token: str = "ghp_fake_token_for_tests",  # noqa: S107 (a fake token for the fake)
        latency_ms: float = 0.0,
        rate_limit: int = 5000,
        search_cap: int = 1000,
        signed_url_ttl: float = 60.0,
        app_id: int | None = None,
        app_public_key_pem: bytes | None = None,
        installation_token_ttl: float = 3600.0,
    ) -> None:
        self.scenario = scenario
        self.app_id = app_id
        if app_id is not None and app_public_key_pem is None:
            app_public_key_pem = apps.app_key().public_pem
        self.app_public_key_pem = app_public_key_pem
        self.installation_token_ttl = installation_token_ttl
        self._tokens = apps.TokenStore()
        self.files = contents.Files()  # workflow files served by the contents API
        self.job_logs: dict[int, bytes] = {}  # job id -> log served instead of the made-up one
        self.token = token
        self.latency_ms = latency_ms
        self.search_cap = search_cap
        self.signed_url_ttl = signed_url_ttl
        self.stats = Stats()
        self.errors: list[str] = []  # bugs of the fake itself (each also answered 500)
        self._lock = threading.Lock()  # guards stats, faults and rate-limit buckets
        reset = math.ceil(time.time()) + WINDOW_SECONDS
        self._core = Bucket(rate_limit, rate_limit, reset)
        self._anonymous = Bucket(UNAUTHENTICATED_LIMIT, UNAUTHENTICATED_LIMIT, reset)
        self._app = Bucket(rate_limit, rate_limit, reset)  # requests made with the App's JWT
        self._installations: dict[int, Bucket] = {}  # each installation has its own limit
        self._limit = rate_limit  # each installation starts with this many points
        self._faults: list[Fault] = []
        self._secret = hashlib.sha256(f"{id(self)}:{time.time()}".encode()).digest()
        self._request_number = 0
        self._api: ServerThread | None = None
        self._download: ServerThread | None = None

    # ----------------------------------------------------------------------------------------
    # life cycle

    def __enter__(self) -> FakeGitHub:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        if exc_type is None and self.errors:
            raise RuntimeError("the fake GitHub failed on a request:\n" + "\n".join(self.errors))

    def start(self) -> None:
        self._api = ServerThread(self._api_app(), "fake-github-api")
        self._download = ServerThread(self._download_app(), "fake-github-download")
        self._api.start()
        self._download.start()

    def stop(self) -> None:
        servers = [server for server in (self._api, self._download) if server is not None]
        for server in servers:  # both at once: each takes a tick of uvicorn's loop to notice
            server.server.should_exit = True
        for server in servers:
            server.stop()

    @property
    def api_url(self) -> str:
        if self._api is None:
            raise RuntimeError("FakeGitHub is not started")
        return f"http://127.0.0.1:{self._api.port}"

    @property
    def download_url(self) -> str:
        if self._download is None:
            raise RuntimeError("FakeGitHub is not started")
        return f"http://127.0.0.1:{self._download.port}"

    # ----------------------------------------------------------------------------------------
    # controls for tests

    def reset_stats(self) -> None:
        with self._lock:
            self.stats = Stats()

    def fail_next(
        self,
        status: int,
        *,
        count: int = 1,
        headers: dict[str, str] | None = None,
        body: Any = None,
        path_contains: str | None = None,
        host: str = "api",
    ) -> None:
        """Answer the next ``count`` requests (whose path and query contain ``path_contains``,
        if given) to ``host`` ("api" or "download") with ``status``. ``body`` is a JSON value,
        or str/bytes sent as text; by default 403 and 429 carry GitHub's secondary-rate-limit
        message and other statuses ``{"message": <reason phrase>}``. Faults cost no point."""
        if host not in ("api", "download"):
            raise ValueError("host is 'api' or 'download'")
        fault = Fault(status, count, dict(headers or {}), body, path_contains, host)
        with self._lock:
            self._faults.append(fault)

    def secondary_limit_next(
        self,
        *,
        retry_after: int | None = 1,
        status: int = 403,
        count: int = 1,
        path_contains: str | None = None,
    ) -> None:
        """GitHub's secondary rate limit: 403 (or 429) with ``retry-after`` (if not None)."""
        headers = {"retry-after": str(retry_after)} if retry_after is not None else {}
        self.fail_next(status, count=count, headers=headers, path_contains=path_contains)

    def set_rate_limit(self, remaining: int, reset_in_seconds: float) -> None:
        """Set the primary limit's remaining points and reset time (from now). At 0, API
        answers are 403 "API rate limit exceeded" until the reset; then it refills."""
        with self._lock:
            self._core.remaining = remaining
            self._core.reset = math.ceil(time.time() + reset_in_seconds)

    @property
    def rate_limit_remaining(self) -> int:
        with self._lock:
            self._core.refill_if_due(time.time())
            return self._core.remaining

    def expire_artifact(self, artifact_id: int) -> None:
        self.scenario.expire_artifact(artifact_id)

    def installation_token(self, installation_id: int) -> str:
        """A token of the installation, as if bought (not counted in ``token_purchases``)."""
        with self._lock:
            issued = self._tokens.issue(
                installation_id, now=time.time(), ttl=self.installation_token_ttl
            )
        return issued.token

    def expire_installation_tokens(self, installation_id: int | None = None) -> None:
        """End the tokens handed out (all, or one installation's): later use gets 401."""
        with self._lock:
            self._tokens.expire(installation_id)

    # ----------------------------------------------------------------------------------------
    # the API host

    def _api_app(self) -> Starlette:
        scoped: Sequence[tuple[str, str, Handler]] = [
            ("repos/get", "", self._repository),
            ("actions/list-repo-workflows", "/actions/workflows", self._workflows),
            ("actions/list-workflow-runs-for-repo", "/actions/runs", self._runs),
            (
                "actions/list-workflow-runs",
                "/actions/workflows/{workflow_id}/runs",
                self._workflow_runs,
            ),
            ("actions/get-workflow-run", "/actions/runs/{run_id:int}", self._run),
            (
                "actions/get-workflow-run-attempt",
                "/actions/runs/{run_id:int}/attempts/{attempt_number:int}",
                self._run_attempt,
            ),
            (
                "actions/list-jobs-for-workflow-run",
                "/actions/runs/{run_id:int}/jobs",
                self._run_jobs,
            ),
            (
                "actions/list-jobs-for-workflow-run-attempt",
                "/actions/runs/{run_id:int}/attempts/{attempt_number:int}/jobs",
                self._attempt_jobs,
            ),
            ("actions/get-job-for-workflow-run", "/actions/jobs/{job_id:int}", self._job),
            (
                "actions/download-job-logs-for-workflow-run",
                "/actions/jobs/{job_id:int}/logs",
                self._job_logs,
            ),
            (
                "actions/list-workflow-run-artifacts",
                "/actions/runs/{run_id:int}/artifacts",
                self._run_artifacts,
            ),
            ("actions/list-artifacts-for-repo", "/actions/artifacts", self._repo_artifacts),
            ("actions/get-artifact", "/actions/artifacts/{artifact_id:int}", self._artifact),
            ("repos/get-content", "/contents/{path:path}", self._contents),
            (
                "actions/download-artifact",
                "/actions/artifacts/{artifact_id:int}/{archive_format}",
                self._artifact_download,
            ),
        ]
        routes = [
            Route("/rate_limit", self._endpoint("rate-limit/get", self._rate_limit)),
            Route(
                "/app/installations",
                self._endpoint("apps/list-installations", self._app_installations),
            ),
            Route(
                "/app/installations/{installation_id:int}/access_tokens",
                self._endpoint("apps/create-installation-access-token", self._access_token),
                methods=["POST"],
            ),
            Route(
                "/installation/repositories",
                self._endpoint(
                    "apps/list-repos-accessible-to-installation", self._installation_repos
                ),
            ),
        ]
        for op, suffix, handler in scoped:
            endpoint = self._endpoint(op, handler)
            routes.append(Route("/repos/{owner}/{repo}" + suffix, endpoint))
            routes.append(Route("/repositories/{repo_id:int}" + suffix, endpoint))
        routes.append(Route("/{path:path}", self._endpoint("unknown", self._unknown)))
        return Starlette(routes=routes)

    def _endpoint(self, op: str, handler: Handler) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            if self.latency_ms:
                await asyncio.sleep(self.latency_ms / 1000)
            answer = self._serve(op, handler, request)
            return self._respond(request, op, answer)

        return endpoint

    def _serve(self, op: str, handler: Handler, request: Request) -> Answer:
        """Auth, faults, the primary limit, the handler, then ETag and the point it costs."""
        authorization = request.headers.get("authorization")
        now = time.time()
        with self._lock:
            caller = self._authenticate(op, authorization, now)
            if isinstance(caller, Answer):
                return caller
            bucket, installation_id = caller
            bucket.refill_if_due(now)
            fault = self._take_fault("api", request)
            if fault is not None:
                return self._fault_answer(fault, bucket)
            if bucket.remaining <= 0 and op != "rate-limit/get":
                return Answer(403, self._exhausted_body(bucket), bucket.headers())
        answer = self._dispatch(handler, Ctx(request, None, bucket, installation_id))
        if answer.status == 200 and not isinstance(answer.body, bytes | str):
            content = json_bytes(answer.body)
            etag = f'W/"{hashlib.sha256(content).hexdigest()}"'
            answer.headers["etag"] = etag
            answer.headers["cache-control"] = "private, max-age=60, s-maxage=60"
            if etag_matches(request.headers.get("if-none-match"), etag):
                answer = Answer(304, None, {"etag": etag, **cache_headers()})
            else:
                answer.body = content
                answer.media_type = "application/json; charset=utf-8"
        with self._lock:
            if answer.status == 304:
                self.stats.not_modified += 1
            elif op != "rate-limit/get":
                bucket.remaining = max(0, bucket.remaining - 1)
                if bucket is self._anonymous:
                    self.stats.unauthenticated_points += 1
                else:
                    self.stats.points += 1
            answer.headers.update(bucket.headers())
        return answer

    def _dispatch(self, handler: Handler, ctx: Ctx) -> Answer:
        try:
            with self.scenario.lock:
                params = ctx.request.path_params
                if "repo_id" in params:
                    ctx.repo = self._repo_or_404(self.scenario.repo(params["repo_id"]))
                elif "owner" in params:
                    name = f"{params['owner']}/{params['repo']}"
                    ctx.repo = self._repo_or_404(self.scenario.repo_named(name))
                if ctx.repo is not None and not self._visible(ctx, ctx.repo):
                    raise NotFound  # another installation's repository: GitHub says 404
                return handler(ctx)
        except NotFound:
            return Answer(404, bodies.error("Not Found", 404))
        except Invalid as exc:
            return Answer(422, bodies.error(f"Validation Failed: {exc}", 422))
        except Exception:
            self.errors.append(traceback.format_exc())
            return Answer(500, bodies.error("fake GitHub bug; see FakeGitHub.errors", 500))

    @staticmethod
    def _repo_or_404(repo: Repo | None) -> Repo:
        if repo is None:
            raise NotFound
        return repo

    def _authenticate(
        self, op: str, authorization: str | None, now: float
    ) -> tuple[Bucket, int | None] | Answer:
        """The limit a request counts against and the installation whose token it carries, or
        the 401 answer. App routes take only the App's JWT; the others take the personal token,
        an installation token (of its installation's repositories only) or nothing at all."""
        if authorization is None and op not in APP_OPS:
            return self._anonymous, None
        scheme, _, value = (authorization or "").partition(" ")
        value = value.strip()
        if scheme.lower() not in ("bearer", "token"):
            return self._refuse(apps.UNDECODABLE if op in APP_OPS else "Bad credentials", now)
        if op in APP_OPS:
            if self.app_id is None or self.app_public_key_pem is None:
                return self._refuse(apps.UNDECODABLE, now)
            problem = apps.jwt_problem(
                value, public_key_pem=self.app_public_key_pem, app_id=self.app_id, now=now
            )
            return self._refuse(problem, now) if problem else (self._app, None)
        if value == self.token:
            return self._core, None
        issued = self._tokens.valid(value, now=now)
        if issued is None:
            return self._refuse("Bad credentials", now)
        bucket = self._installations.get(issued.installation_id)
        if bucket is None:
            limit = self._limit
            bucket = Bucket(limit, limit, math.ceil(now) + WINDOW_SECONDS)
            self._installations[issued.installation_id] = bucket
        return bucket, issued.installation_id

    def _refuse(self, message: str, now: float) -> Answer:
        self.stats.auth_failures += 1
        self._anonymous.refill_if_due(now)
        return Answer(401, bodies.error(message, 401), self._anonymous.headers())

    def _visible(self, ctx: Ctx, repo: Repo) -> bool:
        if ctx.installation_id is None:
            return True
        installation = self.scenario.installation(ctx.installation_id)
        return installation is not None and repo.id in installation.repo_ids

    def _take_fault(self, host: str, request: Request) -> Fault | None:
        target = path_and_query(request)
        for fault in self._faults:
            if fault.host == host and (fault.path_contains or "") in target:
                fault.count -= 1
                if fault.count <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def _fault_answer(self, fault: Fault, bucket: Bucket | None) -> Answer:
        body = fault.body
        if body is None:
            if fault.status in (403, 429):
                message = SECONDARY_LIMIT_MESSAGE.format(request_id=self._next_request_id())
                body = bodies.error(message, fault.status, SECONDARY_LIMIT_DOCS)
            else:
                body = bodies.error(http.HTTPStatus(fault.status).phrase, fault.status)
        headers = bucket.headers() if bucket is not None else {}
        headers.update(fault.headers)
        if isinstance(body, bytes | str):
            return Answer(fault.status, body, headers, "text/html; charset=utf-8")
        return Answer(fault.status, body, headers)

    def _exhausted_body(self, bucket: Bucket) -> bodies.Json:
        if bucket is self._core:
            message = (
                "API rate limit exceeded for user ID 1. If you reach out to GitHub Support for "
                f"help, please include the request ID {self._next_request_id()}."
            )
        else:
            message = (
                "API rate limit exceeded for 127.0.0.1. (But here's the good news: Authenticated "
                "requests get a higher rate limit. Check out the documentation for more details.)"
            )
        return bodies.error(message, 403, PRIMARY_LIMIT_DOCS)

    def _next_request_id(self) -> str:
        self._request_number += 1
        return f"FAKE:{self._request_number:08X}"

    def _respond(self, request: Request, op: str, answer: Answer) -> Response:
        headers = {
            "x-github-api-version-selected": API_VERSION,
            "x-github-media-type": "github.v3; format=json",
            "x-github-request-id": self._next_request_id(),
            "access-control-expose-headers": (
                "ETag, Link, Location, Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, "
                "X-RateLimit-Used, X-RateLimit-Resource, X-RateLimit-Reset"
            ),
            **answer.headers,
        }
        content: bytes | str = b""
        media_type = answer.media_type
        if isinstance(answer.body, bytes | str):
            content = answer.body
        elif answer.body is not None:
            content = json_bytes(answer.body)
            media_type = "application/json; charset=utf-8"
        self._record(request, op, answer.status)
        return Response(content, answer.status, headers, media_type)

    def _record(self, request: Request, op: str, status: int) -> None:
        entry = LoggedRequest(
            request.method, path_and_query(request), status, "authorization" in request.headers
        )
        with self._lock:
            self.stats.requests += 1
            self.stats.by_route[op] = self.stats.by_route.get(op, 0) + 1
            self.stats.log.append(entry)

    # ----------------------------------------------------------------------------------------
    # pagination

    def _page(self, ctx: Ctx, items: list[T], *, capped: bool = False) -> tuple[list[T], str]:
        """The requested page of ``items`` and its ``Link`` header ("" when there is none).

        Links use the ``/repositories/{id}/...`` form, as GitHub's do, and carry every query
        parameter; ``capped`` listings reach only the first ``search_cap`` items."""
        per_page = to_int(ctx.query.get("per_page"), 30)
        per_page = 30 if per_page < 1 else min(per_page, 100)
        page = max(1, to_int(ctx.query.get("page"), 1))
        reachable = min(len(items), self.search_cap) if capped else len(items)
        last = last_page(reachable, per_page)
        start = (page - 1) * per_page
        chunk = items[start : min(start + per_page, reachable)] if start < reachable else []
        rels = page_rels(page, last)
        parts = ctx.request.url.path.split("/")
        if parts[1] in ("repos", "repositories"):
            rest = "/".join(parts[4:] if parts[1] == "repos" else parts[3:])
            base = f"{self.api_url}/repositories/{ctx.repo.id}/{rest}"
        else:
            base = f"{self.api_url}{ctx.request.url.path}"
        kept = [(k, v) for k, v in ctx.query.multi_items() if k not in ("page", "per_page")]
        link = ", ".join(
            f'<{base}?{urlencode([*kept, ("per_page", per_page), ("page", number)])}>; rel="{rel}"'
            for rel, number in rels
        )
        return chunk, link

    def _listing(
        self,
        ctx: Ctx,
        key: str,
        items: list[T],
        render: Callable[[T], Any],
        *,
        capped: bool = False,
    ) -> Answer:
        chunk, link = self._page(ctx, items, capped=capped)
        body = {"total_count": len(items), key: [render(item) for item in chunk]}
        return Answer(200, body, {"link": link} if link else {})

    # ----------------------------------------------------------------------------------------
    # handlers (called with the scenario locked)

    def _repository(self, ctx: Ctx) -> Answer:
        return Answer(200, bodies.repository(ctx.repo, self.api_url))

    def _rate_limit(self, ctx: Ctx) -> Answer:
        with self._lock:
            bucket = ctx.bucket
            body = bodies.rate_limit(
                limit=bucket.limit, remaining=bucket.remaining, reset=bucket.reset
            )
        return Answer(200, body)

    def _unknown(self, ctx: Ctx) -> Answer:
        raise NotFound

    def _app_installations(self, ctx: Ctx) -> Answer:
        """A plain JSON array, paginated with ``Link`` like the other listings."""
        assert self.app_id is not None  # the JWT check passed
        app_id, api = self.app_id, self.api_url
        items = sorted(self.scenario.installations.values(), key=lambda i: i.id)
        chunk, link = self._page(ctx, items)
        body = [bodies.installation(item, app_id, api) for item in chunk]
        return Answer(200, body, {"link": link} if link else {})

    def _access_token(self, ctx: Ctx) -> Answer:
        installation = self.scenario.installation(ctx.path_int("installation_id"))
        if installation is None:
            raise NotFound
        if installation.suspended_at is not None:
            return Answer(403, bodies.error("This installation has been suspended", 403))
        with self._lock:
            issued = self._tokens.issue(
                installation.id, now=time.time(), ttl=self.installation_token_ttl
            )
            self.stats.token_purchases += 1
        return Answer(201, bodies.installation_token(issued.token, issued.expires_at))

    def _installation_repos(self, ctx: Ctx) -> Answer:
        if ctx.installation_id is None:
            return Answer(403, bodies.error(NOT_AN_INSTALLATION, 403))
        installation = self.scenario.installation(ctx.installation_id)
        repo_ids = installation.repo_ids if installation is not None else []
        repos = [self.scenario.repos[i] for i in repo_ids if i in self.scenario.repos]
        chunk, link = self._page(ctx, repos)
        body = {
            "total_count": len(repos),
            "repositories": [bodies.repository(repo, self.api_url) for repo in chunk],
            "repository_selection": "selected",
        }
        return Answer(200, body, {"link": link} if link else {})

    def _workflows(self, ctx: Ctx) -> Answer:
        repo, api = ctx.repo, self.api_url
        items = self.scenario.workflows_of(repo.id)
        return self._listing(ctx, "workflows", items, lambda wf: bodies.workflow(wf, repo, api))

    def _runs(self, ctx: Ctx) -> Answer:
        return self._run_listing(ctx, self.scenario.runs_of(ctx.repo.id))

    def _workflow_runs(self, ctx: Ctx) -> Answer:
        wanted = ctx.request.path_params["workflow_id"]
        for wf in self.scenario.workflows_of(ctx.repo.id):
            if str(wf.id) == wanted or wf.path.rsplit("/", 1)[-1] == wanted:
                runs = [r for r in self.scenario.runs_of(ctx.repo.id) if r.workflow_id == wf.id]
                return self._run_listing(ctx, runs)
        raise NotFound

    def _run_listing(self, ctx: Ctx, runs: list[Run]) -> Answer:
        q = ctx.query
        try:
            created = created_filter(q["created"]) if q.get("created") else None
        except ValueError as exc:
            raise Invalid(f"created={q['created']!r}") from exc
        check_suite = q.get("check_suite_id")
        matching = [
            run
            for run in runs
            if (not q.get("branch") or run.head_branch == q["branch"])
            and (not q.get("event") or run.event == q["event"])
            and (not q.get("head_sha") or run.head_sha == q["head_sha"])
            and (not q.get("actor") or run.actor_login == q["actor"])
            and (not q.get("status") or q["status"] in (run.status, run.conclusion))
            and (not check_suite or check_suite == str(bodies.check_suite_id(run, run.latest)))
            and (created is None or created(run.created_at))
        ]
        capped = any(q.get(name) for name in SEARCH_FILTERS)
        exclude = q.get("exclude_pull_requests", "false").lower() == "true"
        repo_json = bodies.minimal_repository(ctx.repo, self.api_url)

        def render(run: Run) -> bodies.Json:
            return bodies.workflow_run(
                run,
                run.latest,
                ctx.repo,
                self.scenario.workflows[run.workflow_id],
                self.api_url,
                exclude_pull_requests=exclude,
                repository_json=repo_json,
            )

        return self._listing(ctx, "workflow_runs", matching, render, capped=capped)

    def _get_run(self, ctx: Ctx) -> Run:
        run = self.scenario.run(ctx.path_int("run_id"))
        if run is None or run.repo_id != ctx.repo.id:
            raise NotFound
        return run

    def _render_run(self, ctx: Ctx, run: Run, attempt_number: int) -> Answer:
        attempt = run.attempt(attempt_number)
        if attempt is None:
            raise NotFound
        exclude = ctx.query.get("exclude_pull_requests", "false").lower() == "true"
        wf = self.scenario.workflows[run.workflow_id]
        body = bodies.workflow_run(
            run, attempt, ctx.repo, wf, self.api_url, exclude_pull_requests=exclude
        )
        return Answer(200, body)

    def _run(self, ctx: Ctx) -> Answer:
        run = self._get_run(ctx)
        return self._render_run(ctx, run, run.run_attempt)

    def _run_attempt(self, ctx: Ctx) -> Answer:
        return self._render_run(ctx, self._get_run(ctx), ctx.path_int("attempt_number"))

    def _job_listing(self, ctx: Ctx, run: Run, jobs: list[Job]) -> Answer:
        wf = self.scenario.workflows[run.workflow_id]
        repo, api = ctx.repo, self.api_url
        return self._listing(ctx, "jobs", jobs, lambda job: bodies.job(job, run, repo, wf, api))

    def _run_jobs(self, ctx: Ctx) -> Answer:
        run = self._get_run(ctx)
        which = ctx.query.get("filter", "latest")
        if which not in ("latest", "all"):
            raise Invalid(f"filter={which!r} (latest or all)")
        return self._job_listing(ctx, run, run.all_jobs() if which == "all" else run.latest_jobs())

    def _attempt_jobs(self, ctx: Ctx) -> Answer:
        run = self._get_run(ctx)
        attempt = run.attempt(ctx.path_int("attempt_number"))
        if attempt is None:
            raise NotFound
        return self._job_listing(ctx, run, attempt.jobs)

    def _get_job(self, ctx: Ctx) -> tuple[Job, Run]:
        job = self.scenario.job(ctx.path_int("job_id"))
        run = self.scenario.run(job.run_id) if job is not None else None
        if job is None or run is None or run.repo_id != ctx.repo.id:
            raise NotFound
        return job, run

    def _job(self, ctx: Ctx) -> Answer:
        job, run = self._get_job(ctx)
        wf = self.scenario.workflows[run.workflow_id]
        return Answer(200, bodies.job(job, run, ctx.repo, wf, self.api_url))

    def _job_logs(self, ctx: Ctx) -> Answer:
        job, _run = self._get_job(ctx)
        if job.status != "completed":
            raise NotFound  # logs are archived when the job ends
        return self._redirect(f"/jobs/{job.id}/signedlogcontent", {})

    def _artifacts_listing(self, ctx: Ctx, items: list[Artifact]) -> Answer:
        if name := ctx.query.get("name"):
            items = [a for a in items if a.name == name]

        def render(item: Artifact) -> bodies.Json:
            run = self.scenario.runs[item.run_id]
            return bodies.artifact(item, run, ctx.repo, self.api_url)

        return self._listing(ctx, "artifacts", items, render)

    def _run_artifacts(self, ctx: Ctx) -> Answer:
        return self._artifacts_listing(ctx, self.scenario.artifacts_of(self._get_run(ctx).id))

    def _repo_artifacts(self, ctx: Ctx) -> Answer:
        runs = self.scenario.runs_of(ctx.repo.id)
        items = [a for run in runs for a in reversed(self.scenario.artifacts_of(run.id))]
        return self._artifacts_listing(ctx, items)

    def _get_artifact(self, ctx: Ctx) -> tuple[Artifact, Run]:
        item = self.scenario.artifact(ctx.path_int("artifact_id"))
        run = self.scenario.run(item.run_id) if item is not None else None
        if item is None or run is None or run.repo_id != ctx.repo.id:
            raise NotFound
        return item, run

    def _artifact(self, ctx: Ctx) -> Answer:
        item, run = self._get_artifact(ctx)
        return Answer(200, bodies.artifact(item, run, ctx.repo, self.api_url))

    def _artifact_download(self, ctx: Ctx) -> Answer:
        item, _run = self._get_artifact(ctx)
        if ctx.request.path_params["archive_format"] != "zip":
            raise NotFound
        if item.expired:
            return Answer(410, bodies.error("Artifact has expired", 410))
        path = f"/artifacts/{item.id}/signedartifactscontent"
        return self._redirect(path, {"artifactName": item.name})

    def _contents(self, ctx: Ctx) -> Answer:
        return contents.answer(self.files, ctx, self.api_url)

    def _redirect(self, path: str, params: dict[str, str]) -> Answer:
        """302 to a pre-signed URL on the download host (no body, like GitHub's)."""
        full_path = DOWNLOAD_PREFIX + path
        expires = str(math.ceil(time.time() + self.signed_url_ttl))
        query = urlencode({**params, "expires": expires, "sig": self._sign(full_path, expires)})
        location = f"{self.download_url}{quote(full_path)}?{query}"
        return Answer(302, b"", {"location": location}, "text/html;charset=utf-8")

    def _sign(self, path: str, expires: str) -> str:
        return hmac.new(self._secret, f"{path}\n{expires}".encode(), hashlib.sha256).hexdigest()

    # ----------------------------------------------------------------------------------------
    # the download host

    def _download_app(self) -> Starlette:
        return Starlette(
            routes=[
                Route(
                    DOWNLOAD_PREFIX + "/jobs/{job_id:int}/signedlogcontent",
                    self._download_endpoint("download/job-logs"),
                ),
                Route(
                    DOWNLOAD_PREFIX + "/artifacts/{artifact_id:int}/signedartifactscontent",
                    self._download_endpoint("download/artifact"),
                ),
                Route("/{path:path}", self._download_endpoint("download/unknown")),
            ]
        )

    def _download_endpoint(self, op: str) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            answer = self._serve_download(op, request)
            self._record(request, op, answer.status)
            return Response(answer.body or b"", answer.status, answer.headers, answer.media_type)

        return endpoint

    def _serve_download(self, op: str, request: Request) -> Answer:
        with self._lock:
            fault = self._take_fault("download", request)
        if fault is not None:
            return self._fault_answer(fault, None)
        xml = "application/xml"
        if "authorization" in request.headers:
            # Like S3/Azure behind GitHub's signed URLs: a second credential is refused.
            message = (
                "<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed; "
                "only the signature query string parameter or the Authorization header should "
                "be specified</Message></Error>"
            )
            return Answer(400, message, {}, xml)
        expires = request.query_params.get("expires", "")
        signature = request.query_params.get("sig", "")
        good = hmac.compare_digest(signature, self._sign(request.url.path, expires))
        if op == "download/unknown" or not good or not expires.isdigit():
            return Answer(403, "<Error><Code>AuthenticationFailed</Code></Error>", {}, xml)
        if time.time() > int(expires):
            expired = (
                "<Error><Code>AuthenticationFailed</Code>"
                "<Message>Signed expiry time has passed</Message></Error>"
            )
            return Answer(403, expired, {}, xml)
        with self.scenario.lock:
            if op == "download/job-logs":
                job = self.scenario.job(request.path_params["job_id"])
                if job is None:
                    return Answer(404, "<Error><Code>BlobNotFound</Code></Error>", {}, xml)
                run = self.scenario.runs[job.run_id]
                repo = self.scenario.repos[run.repo_id]
                if job.id in self.job_logs:
                    return Answer(200, self.job_logs[job.id], {}, "text/plain; charset=utf-8")
                wf: Workflow = self.scenario.workflows[run.workflow_id]
                text = bodies.job_log(job, run, repo, wf)
                return Answer(200, text.encode(), {}, "text/plain; charset=utf-8")
            item = self.scenario.artifact(request.path_params["artifact_id"])
            if item is None or item.expired:
                return Answer(404, "<Error><Code>BlobNotFound</Code></Error>", {}, xml)
            disposition = f"attachment; filename*=UTF-8''{quote(item.name)}.zip"
            return Answer(
                200, item.zip_bytes, {"content-disposition": disposition}, "application/zip"
            )
