"""Pure helpers of the fake's HTTP side, and the thread that runs one uvicorn server."""

from __future__ import annotations

import json
import math
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request


def json_bytes(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Weak comparison, as for GET: ``W/"x"`` and ``"x"`` match each other."""
    if not if_none_match:
        return False
    strong = etag.removeprefix("W/")
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == strong:
            return True
    return False


def _term(text: str) -> tuple[datetime, datetime]:
    """The interval ``[start, end)`` one date or date-time of GitHub's search syntax covers."""
    text = text.strip().replace(" ", "+")  # an unencoded "+" in an offset arrives as a space
    if len(text) == 10:
        day = date.fromisoformat(text)
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return start, start + timedelta(days=1)
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment, moment + timedelta(microseconds=1)


def created_filter(value: str) -> Callable[[datetime], bool]:
    """Parse ``created=`` (``A..B``, ``>=X``, ``>X``, ``<=X``, ``<X``, ``X``; dates or times).

    Raises ``ValueError`` on anything else."""
    value = value.strip()
    for op in (">=", "<=", ">", "<"):
        if value.startswith(op):
            start, end = _term(value[len(op) :])
            bound = {">=": start, ">": end, "<=": end, "<": start}[op]
            if op.startswith(">"):
                return lambda t: t >= bound
            return lambda t: t < bound
    if ".." in value:
        left, right = value.split("..", 1)
        low = None if left.strip() in ("", "*") else _term(left)[0]
        high = None if right.strip() in ("", "*") else _term(right)[1]
        return lambda t: (low is None or t >= low) and (high is None or t < high)
    start, end = _term(value)
    return lambda t: start <= t < end


def page_rels(page: int, last: int) -> list[tuple[str, int]]:
    """The ``Link`` relations of ``page`` out of ``last``, in GitHub's order: prev, next, last,
    first. Page 1 has no prev (nor first); the last page has only prev and first."""
    rels: list[tuple[str, int]] = []
    if page > 1:
        rels.append(("prev", page - 1))
    if page < last:
        rels += [("next", page + 1), ("last", last)]
    if page > 1:
        rels.append(("first", 1))
    return rels


def last_page(count: int, per_page: int) -> int:
    return max(1, math.ceil(count / per_page))


class ServerThread:
    """One uvicorn server on a free loopback port, in a daemon thread."""

    def __init__(self, app: Starlette, name: str) -> None:
        # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted connections only for
        # such sockets; without it every keep-alive answer stalls ~40 ms (Nagle + delayed ACK).
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))
        self.port: int = self.socket.getsockname()[1]
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws="none",
            loop="asyncio",
            timeout_graceful_shutdown=5,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, name=name, daemon=True
        )

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"{self.thread.name} did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.socket.close()


def cache_headers() -> dict[str, str]:
    return {"cache-control": "private, max-age=60, s-maxage=60"}


def path_and_query(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def to_int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default
