"""Load-generator clients for the webhook benchmark: httpx, and a minimal raw HTTP/1.1 one.

Both keep connections alive, give up on a request 10 s after sending it, as GitHub does (an
answer that comes later counts as not acknowledged), and answer ``post(path, content=,
headers=)`` with an object that has ``status_code`` and ``json()``.

- ``httpx``: 16 ``httpx.AsyncClient`` used in turn, each with a small pool. Against a trivial
  server that answered in 0.2 ms, one client with a 256-connection pool used 1.3 ms of CPU per
  request at 200/s, 2.5 ms at 400/s (falling behind: 215/s) and 5.5 ms at 800/s, on this 2-core
  machine. Sharded, it kept up at 400/s (about 1.1 ms per request) but not at 800/s.
- ``raw``: pre-encoded requests written on asyncio streams, answers read by ``Content-Length``
  (or chunked): about 0.2 ms of client CPU per request, so the client stays out of the way when
  the rate is stepped up on a machine whose two cores also run the server and the database.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import time
from types import TracebackType
from typing import Any, Protocol

import httpx

TIMEOUT_S = 10.0  # GitHub gives up on a delivery after 10 s
KEEP_ALIVE_S = 4.0  # below uvicorn's 5 s, so an idle connection is never reused as it closes


class Answer(Protocol):
    status_code: int

    def json(self) -> Any: ...


class Client(Protocol):
    async def post(self, path: str, *, content: bytes, headers: dict[str, str]) -> Answer: ...

    async def __aenter__(self) -> Client: ...

    async def __aexit__(self, *exc: object) -> None: ...


def error_name(exc: BaseException) -> str:
    """The same names for both clients: ConnectError, ReadError, Timeout, ..."""
    if isinstance(exc, httpx.HTTPError):
        return type(exc).__name__
    if isinstance(exc, ConnectionRefusedError):
        return "ConnectError"
    if isinstance(exc, TimeoutError):
        return "Timeout"
    if isinstance(exc, asyncio.IncompleteReadError | ConnectionResetError | BrokenPipeError):
        return "ReadError"
    return type(exc).__name__


class ShardedHttpx:
    def __init__(self, base: str, connections: int, shards: int = 16) -> None:
        per = max(1, connections // shards)
        self.clients = [
            httpx.AsyncClient(
                base_url=base,
                timeout=httpx.Timeout(TIMEOUT_S),
                limits=httpx.Limits(
                    max_connections=per,
                    max_keepalive_connections=per,
                    keepalive_expiry=KEEP_ALIVE_S,
                ),
            )
            for _ in range(shards)
        ]
        self._next = itertools.cycle(self.clients)

    async def post(self, path: str, *, content: bytes, headers: dict[str, str]) -> Answer:
        async with asyncio.timeout(TIMEOUT_S):  # httpx's own timeouts are per phase, not total
            return await next(self._next).post(path, content=content, headers=headers)

    async def __aenter__(self) -> ShardedHttpx:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for client in self.clients:
            await client.aclose()


class RawAnswer:
    __slots__ = ("body", "status_code")

    def __init__(self, status_code: int, body: bytes) -> None:
        self.status_code = status_code
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)


_Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter, float]


class RawClient:
    """HTTP/1.1 keep-alive on loopback; one request per connection at a time."""

    def __init__(self, base: str, connections: int) -> None:
        hostport = base.removeprefix("http://").rstrip("/")
        host, _, port = hostport.partition(":")
        self.host, self.port = host, int(port)
        self.hostport = hostport
        self.slots = asyncio.Semaphore(connections)
        self.idle: collections.deque[_Conn] = collections.deque()

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        while self.idle:
            reader, writer, since = self.idle.pop()
            if time.monotonic() - since < KEEP_ALIVE_S and not reader.at_eof():
                return reader, writer
            writer.close()
        return await asyncio.open_connection(self.host, self.port)

    async def post(self, path: str, *, content: bytes, headers: dict[str, str]) -> Answer:
        head = [f"POST {path} HTTP/1.1", f"Host: {self.hostport}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        head.append(f"Content-Length: {len(content)}")
        request = ("\r\n".join(head) + "\r\n\r\n").encode() + content
        async with self.slots, asyncio.timeout(TIMEOUT_S):
            reader, writer = await self._connection()
            try:
                writer.write(request)
                answer = await self._read(reader)
            except BaseException:
                writer.close()
                raise
            self.idle.append((reader, writer, time.monotonic()))
            return answer

    @staticmethod
    async def _read(reader: asyncio.StreamReader) -> RawAnswer:
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length, chunked = 0, False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if not chunked:
            return RawAnswer(status, await reader.readexactly(length))
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
            data = await reader.readexactly(size + 2)
            if size == 0:
                return RawAnswer(status, b"".join(parts))
            parts.append(data[:-2])

    async def __aenter__(self) -> RawClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        while self.idle:
            self.idle.pop()[1].close()


def make_client(kind: str, base: str, connections: int) -> Client:
    if kind == "raw":
        return RawClient(base, connections)
    return ShardedHttpx(base, connections)
