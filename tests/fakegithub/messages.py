"""What the fake's servers pass around: a request's context, an answer, a rate-limit bucket,
an injected fault, and the stats tests read."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from starlette.datastructures import QueryParams
from starlette.requests import Request

from tests.fakegithub.scenario import Repo

DOWNLOAD_PREFIX = "/serviceHosts/fake/_apis/pipelines/1"
WINDOW_SECONDS = 3600  # the primary rate limit's window


class LoggedRequest(NamedTuple):
    """One request to either host, as ``gh.stats.log`` keeps it."""

    method: str
    path: str  # path and query string
    status: int
    authorization: bool  # did the request carry an Authorization header?

    @property
    def host(self) -> str:
        return "download" if self.path.startswith(DOWNLOAD_PREFIX) else "api"


@dataclass
class Stats:
    requests: int = 0  # every request to either host
    by_route: dict[str, int] = field(default_factory=dict)  # operation name -> requests
    not_modified: int = 0  # 304 answers
    points: int = 0  # primary rate-limit points used by authenticated requests
    unauthenticated_points: int = 0  # points of the separate 60/h unauthenticated limit
    auth_failures: int = 0  # 401 answers
    token_purchases: int = 0  # installation tokens bought (POST .../access_tokens answered 201)
    log: list[LoggedRequest] = field(default_factory=list)


@dataclass
class Fault:
    status: int
    count: int
    headers: dict[str, str]
    body: Any
    path_contains: str | None
    host: str


@dataclass
class Bucket:
    limit: int
    remaining: int
    reset: int  # UTC epoch seconds

    def refill_if_due(self, now: float) -> None:
        if now >= self.reset:
            self.remaining = self.limit
            self.reset = math.ceil(now) + WINDOW_SECONDS

    def headers(self) -> dict[str, str]:
        return {
            "x-ratelimit-limit": str(self.limit),
            "x-ratelimit-remaining": str(self.remaining),
            "x-ratelimit-used": str(self.limit - self.remaining),
            "x-ratelimit-reset": str(self.reset),
            "x-ratelimit-resource": "core",
        }


@dataclass
class Answer:
    status: int
    body: Any = None  # a JSON value, or bytes/str sent as they are, or None for no body
    headers: dict[str, str] = field(default_factory=dict)
    media_type: str | None = None


class Ctx:
    """What a handler gets: the request, its query and the repository it names (if any)."""

    def __init__(
        self, request: Request, repo: Repo | None, bucket: Bucket, installation_id: int | None
    ) -> None:
        self.request = request
        self.query: QueryParams = request.query_params
        self.repo: Repo = repo  # type: ignore[assignment]  # None only off /repos, /repositories
        self.bucket = bucket
        self.installation_id = installation_id  # set when called with an installation token

    def path_int(self, name: str) -> int:
        value: int = self.request.path_params[name]
        return value


class NotFound(Exception):
    pass


class Invalid(Exception):
    pass


Handler = Callable[[Ctx], Answer]
