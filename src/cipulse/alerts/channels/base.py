"""What every channel shares: the rendered message, the two kinds of failure, the protocol.

A temporary failure (server down, 5xx, 429, timeout) is retried with backoff; a permanent one
(bad address, revoked or missing webhook) stops retrying, and ``disable`` says whether the
channel itself is broken and should be switched off until someone fixes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx


@dataclass(frozen=True)
class Message:
    """One alert rendered for sending; ``context`` is what the templates were given."""

    event_id: int
    delivery_id: int
    kind: str
    subject: str
    text: str
    html: str
    context: dict[str, Any] = field(default_factory=dict)


class DeliveryError(Exception):
    """A send that did not happen. The message never carries a secret (URL, password)."""


class TemporaryError(DeliveryError):
    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(DeliveryError):
    def __init__(self, message: str, *, disable: bool = True) -> None:
        super().__init__(message)
        self.disable = disable


class Channel(Protocol):
    kind: str

    def describe(self) -> str:
        """Where messages go, with secrets masked, for pages and logs."""
        ...

    async def send(self, message: Message) -> None: ...


def mask_url(url: str) -> str:
    """``https://hooks.slack.com/…`` : the host says where, the path is the secret."""
    scheme, _, rest = url.partition("://")
    host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
    return f"{scheme}://{host}/…" if host else "…"


PERMANENT_STATUSES = {401, 403, 404, 410}


def check_response(response: httpx.Response, what: str) -> None:
    """Map an HTTP answer to success, a retry, or a permanent failure."""
    if 200 <= response.status_code < 300:
        return
    body = response.text.strip().replace("\n", " ")[:200]
    note = f"{what} answered HTTP {response.status_code}" + (f": {body}" if body else "")
    if response.status_code == 429 or response.status_code == 408:
        raw = response.headers.get("retry-after", "")
        retry_after = float(raw) if raw.replace(".", "", 1).isdigit() else None
        raise TemporaryError(note, retry_after=retry_after)
    if response.status_code >= 500:
        raise TemporaryError(note)
    if response.status_code in PERMANENT_STATUSES:
        raise PermanentError(note)
    # Another 4xx: this message was refused; the channel itself may be fine.
    raise PermanentError(note, disable=False)


async def post_json(
    client: httpx.AsyncClient,
    url: str,
    *,
    what: str,
    content: bytes,
    headers: dict[str, str] | None = None,
) -> None:
    """POST JSON bytes; network errors are temporary and never show the (secret) URL."""
    try:
        response = await client.post(
            url, content=content, headers={"Content-Type": "application/json", **(headers or {})}
        )
    except httpx.TimeoutException:
        raise TemporaryError(f"{what} did not answer in time") from None
    except httpx.HTTPError as exc:
        raise TemporaryError(f"{what} could not be reached ({type(exc).__name__})") from None
    check_response(response, what)
