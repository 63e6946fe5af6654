"""What ``create_app`` builds once and every route and task shares."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from cipulse.alerts.tasks import MailWorker
from cipulse.db import Database
from cipulse.live.bus import Bus
from cipulse.live.service import MetricsBroadcaster
from cipulse.settings import Settings
from cipulse.sync.tasks import SyncCoordinator
from cipulse.webhooks.tasks import WebhookWorker


@dataclass
class AppContext:
    settings: Settings
    db: Database
    bus: Bus
    broadcaster: MetricsBroadcaster
    mail_worker: MailWorker
    sync: SyncCoordinator
    webhook_worker: WebhookWorker

    @classmethod
    def build(cls, settings: Settings) -> AppContext:
        db = Database(settings.resolved_database_url)
        bus = Bus()
        return cls(
            settings=settings,
            db=db,
            bus=bus,
            broadcaster=MetricsBroadcaster(
                db=db, bus=bus, min_interval_ms=settings.live_min_interval_ms
            ),
            mail_worker=MailWorker(db=db, settings=settings),
            sync=SyncCoordinator(db=db, settings=settings),
            webhook_worker=WebhookWorker(db=db, bus=bus),
        )


def get_ctx(request: Request) -> AppContext:
    return request.app.state.ctx  # type: ignore[no-any-return]
