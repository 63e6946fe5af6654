"""``create_app(settings)`` builds everything; nothing is built at import time."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from cipulse import migrate
from cipulse.activity.routes import router as activity_router
from cipulse.alerts.routes import router as alerts_router
from cipulse.analytics.routes import router as analytics_router
from cipulse.artifacts import tasks as artifact_tasks
from cipulse.artifacts.routes import router as artifacts_router
from cipulse.context import AppContext
from cipulse.explore.routes import router as explore_router
from cipulse.github.errors import GitHubError
from cipulse.ingest.routes import router as ingest_router
from cipulse.jobstats.routes import router as jobstats_router
from cipulse.live.routes import router as live_router
from cipulse.logs import tasks as log_tasks
from cipulse.logs.routes import router as logs_router
from cipulse.settings import Settings
from cipulse.simulator.routes import router as simulator_router
from cipulse.stats import tasks as stats_tasks
from cipulse.stats.routes import router as stats_router
from cipulse.sync import tasks as sync_tasks
from cipulse.sync.routes import router as sync_router
from cipulse.system.routes import router as system_router
from cipulse.testreports.routes import router as testreports_router
from cipulse.web.routes import router as web_router
from cipulse.webhooks.routes import router as webhooks_router

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).parent / "web" / "static"

BackgroundJob = Callable[[AppContext], Coroutine[Any, Any, None]]


def _describe(error: dict[str, Any]) -> str:
    loc = [str(p) for p in error.get("loc", ()) if p not in ("body", "query", "header", "path")]
    return f"{'.'.join(loc) or 'body'}: {error.get('msg', 'invalid')}"


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 body plus one readable line that names each bad field."""
    assert isinstance(exc, RequestValidationError)
    errors = [{k: v for k, v in e.items() if k != "ctx"} for e in exc.errors()]
    for error in errors:
        if "input" in error and not isinstance(error["input"], str | int | float | None):
            error.pop("input")
    message = "; ".join(_describe(e) for e in errors)
    return JSONResponse({"detail": errors, "message": message}, status_code=422)


class ApiOnlyCors:
    """CORS for ``/api/*`` only (design A); pages and webhooks are same-origin."""

    def __init__(self, app: ASGIApp, origins: list[str]) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
            expose_headers=["X-Data-Source"],
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/api/"):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


async def _stop(tasks: list[asyncio.Task[Any]], *, grace_seconds: float = 15.0) -> None:
    """Cancel the background tasks and wait for them, cancelling again those still running.

    One cancel is not always enough: on Python 3.11 ``asyncio.wait_for`` can swallow a
    cancellation that lands as its inner wait completes, and the loop around it carries on.
    Shutdown must not hang on that, so stragglers get another cancel every half second and are
    left behind, named in the log, after the grace period.
    """
    for task in tasks:
        task.cancel()
    pending = set(tasks)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace_seconds
    while pending and loop.time() < deadline:
        _, pending = await asyncio.wait(pending, timeout=0.5)
        for task in pending:
            task.cancel()
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            log.warning(
                "background task %s ended with an error", task.get_name(), exc_info=task.exception()
            )
    if pending:
        log.warning(
            "background tasks still running at shutdown: %s", sorted(t.get_name() for t in pending)
        )


def create_app(
    settings: Settings | None = None, *, background: list[BackgroundJob] | None = None
) -> FastAPI:
    settings = settings or Settings()
    extra_jobs = list(background or [])

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx = AppContext.build(settings)
        app.state.ctx = ctx
        if settings.auto_migrate:
            await asyncio.to_thread(migrate.upgrade, ctx.db.engine)
        ctx.bus.bind(asyncio.get_running_loop())
        tasks = [
            asyncio.create_task(ctx.broadcaster.run(), name="live-metrics"),
            asyncio.create_task(ctx.webhook_worker.run(), name="webhook-worker"),
            asyncio.create_task(artifact_tasks.worker(ctx).run(), name="artifact-worker"),
            asyncio.create_task(log_tasks.fetch_forever(ctx), name="log-fetcher"),
            asyncio.create_task(stats_tasks.rollup_forever(ctx), name="stats-rollup"),
        ]
        await asyncio.to_thread(ctx.alert_worker.load_config)
        tasks.append(asyncio.create_task(ctx.alert_worker.run(), name="alert-worker"))
        await asyncio.to_thread(sync_tasks.register_configured_repos, ctx.db, settings)
        if ctx.sync.app_mode:
            try:
                found = await ctx.sync.discover_installations()
                log.info("GitHub App: %d installations", found.installations)
            except GitHubError as exc:
                log.warning("GitHub App: could not list installations now: %s", exc)
        if (settings.github_token is not None or ctx.sync.app_mode) and (
            settings.poll_interval_minutes or settings.reconcile_cron
        ):
            tasks.append(
                asyncio.create_task(
                    sync_tasks.schedule_forever(ctx.sync, ctx.db, settings), name="sync-schedule"
                )
            )
        tasks += [asyncio.create_task(job(ctx)) for job in extra_jobs]
        try:
            yield
        finally:
            await _stop(tasks)
            await ctx.sync.aclose()
            await asyncio.to_thread(ctx.inbox_writer.close)
            await asyncio.to_thread(ctx.db.dispose)

    app = FastAPI(
        title="cipulse",
        summary="CI health and observability for GitHub Actions and any CI",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.add_exception_handler(RequestValidationError, _validation_error)
    if settings.cors_origins:
        app.add_middleware(ApiOnlyCors, origins=settings.cors_origins)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for router in (
        system_router,
        ingest_router,
        analytics_router,
        simulator_router,
        sync_router,
        jobstats_router,
        artifacts_router,
        stats_router,
        webhooks_router,
        activity_router,
        alerts_router,
        explore_router,
        testreports_router,
        logs_router,
        live_router,
        web_router,
    ):
        app.include_router(router)
    return app
