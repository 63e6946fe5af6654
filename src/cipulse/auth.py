"""Bearer-token checks for ingest and admin endpoints (constant-time compare)."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Header, HTTPException, status

from cipulse.context import AppContext, get_ctx


def _check(expected: str | None, authorization: str | None, what: str) -> None:
    if expected is None:
        return
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail=f"this endpoint needs 'Authorization: Bearer <{what}>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not hmac.compare_digest(token.strip().encode(), expected.encode()):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail=f"the bearer token is not the {what}",
            headers={"WWW-Authenticate": "Bearer"},
        )


def _require(setting: str, what: str) -> Callable[..., None]:
    def dependency(
        ctx: Annotated[AppContext, Depends(get_ctx)],
        authorization: Annotated[str | None, Header()] = None,
    ) -> None:
        secret = getattr(ctx.settings, setting)
        _check(secret.get_secret_value() if secret else None, authorization, what)

    return dependency


require_ingest_token = _require("ingest_token", "ingest token (CIPULSE_INGEST_TOKEN)")
require_admin_token = _require("admin_token", "admin token (CIPULSE_ADMIN_TOKEN)")
