"""What ``create_app`` builds once and every route and task shares."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from cipulse.alerts.tasks import AlertWorker
from cipulse.db import Database
from cipulse.live.bus import Bus
from cipulse.live.service import MetricsBroadcaster
from cipulse.settings import Settings
from cipulse.storage import Storage
from cipulse.storage import from_settings as storage_from_settings
from cipulse.sync.tasks import SyncCoordinator
from cipulse.webhooks.tasks import InboxWriter, WebhookWorker


@dataclass
class AppContext:
    settings: Settings
    db: Database
    bus: Bus
    broadcaster: MetricsBroadcaster
    alert_worker: AlertWorker
    sync: SyncCoordinator
    webhook_worker: WebhookWorker
    inbox_writer: InboxWriter
    storage: Storage

    @classmethod
    def build(cls, settings: Settings) -> AppContext:
        db = Database(settings.resolved_database_url)
        bus = Bus()
        webhook_worker = WebhookWorker(
            db=db, bus=bus, relay_only=not settings.webhook_worker_in_serve
        )
        return cls(
            settings=settings,
            db=db,
            bus=bus,
            broadcaster=MetricsBroadcaster(
                db=db, bus=bus, min_interval_ms=settings.live_min_interval_ms
            ),
            alert_worker=AlertWorker(db=db, settings=settings, bus=bus),
            sync=SyncCoordinator(db=db, settings=settings),
            webhook_worker=webhook_worker,
            inbox_writer=InboxWriter(
                db=db,
                on_stored=webhook_worker.wake,
                announce=not settings.webhook_worker_in_serve,
            ),
            storage=storage_from_settings(settings),
        )


async def get_ctx(request: Request) -> AppContext:
    """Async so that FastAPI does not hand this dependency to a worker thread per request."""
    return request.app.state.ctx  # type: ignore[no-any-return]
