"""Pure handling of a webhook delivery: signature, headers and body, before anything is stored."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from gidgethub import BadRequest as GidgetBadRequest
from gidgethub import ValidationFailure, sansio

SIGNATURE_HEADER = "x-hub-signature-256"
KEPT_HEADERS = (
    "x-github-event",
    "x-github-delivery",
    "x-github-hook-id",
    "x-github-hook-installation-target-type",
    "x-github-hook-installation-target-id",
    "user-agent",
    "content-type",
)


class DeliveryError(ValueError):
    """Why a delivery is refused; never includes the secret or the expected signature."""


@dataclass(frozen=True)
class Delivery:
    event: str
    delivery_id: str
    hook_id: str
    action: str | None
    installation_id: int | None
    repository: str | None
    payload: dict[str, Any]
    headers: dict[str, str]


def verify_signature(body: bytes, signature: str | None, secret: str) -> None:
    """HMAC-SHA256 of the raw body, compared in constant time (gidgethub's check)."""
    if not signature:
        raise DeliveryError("missing X-Hub-Signature-256 header")
    if not signature.startswith("sha256="):
        raise DeliveryError("X-Hub-Signature-256 must start with sha256=")
    try:
        sansio.validate_event(body, signature=signature, secret=secret)
    except ValidationFailure:
        raise DeliveryError("signature does not match the body and the secret") from None
    except GidgetBadRequest:
        raise DeliveryError("signature could not be checked") from None


def decode_payload(body: bytes, content_type: str | None) -> dict[str, Any]:
    """JSON, or the form encoding GitHub also offers (the JSON in a ``payload`` field)."""
    text_type = (content_type or "application/json").split(";")[0].strip().lower()
    try:
        if text_type == "application/x-www-form-urlencoded":
            fields = parse_qs(body.decode("utf-8"), strict_parsing=True)
            data = json.loads(fields["payload"][0])
        else:
            data = json.loads(body.decode("utf-8-sig"))
    except (ValueError, KeyError, UnicodeDecodeError) as exc:
        raise DeliveryError(f"body is not a JSON payload ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise DeliveryError("payload is not a JSON object")
    return data


def parse_delivery(headers: Mapping[str, str], body: bytes) -> Delivery:
    lower = {k.lower(): v for k, v in headers.items()}
    event = lower.get("x-github-event", "").strip()
    delivery_id = lower.get("x-github-delivery", "").strip()
    if not event:
        raise DeliveryError("missing X-GitHub-Event header")
    if not delivery_id or len(delivery_id) > 80:
        raise DeliveryError("missing or over-long X-GitHub-Delivery header")
    payload = decode_payload(body, lower.get("content-type"))
    installation = payload.get("installation")
    repo = payload.get("repository")
    action = payload.get("action")
    return Delivery(
        event=event[:80],
        delivery_id=delivery_id,
        hook_id=lower.get("x-github-hook-id", "")[:40],
        action=action[:80] if isinstance(action, str) else None,
        installation_id=installation.get("id")
        if isinstance(installation, dict) and isinstance(installation.get("id"), int)
        else None,
        repository=repo.get("full_name")
        if isinstance(repo, dict) and isinstance(repo.get("full_name"), str)
        else None,
        payload=payload,
        headers={k: lower[k] for k in KEPT_HEADERS if k in lower},
    )
