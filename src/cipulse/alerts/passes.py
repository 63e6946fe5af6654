"""What one evaluation pass shares: the rules' per-subject state and writing alerts with their
deliveries (the outbox). Used by the evaluator and by the checks of each rule kind.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cipulse.models import (
    AlertChannel,
    AlertDelivery,
    AlertEvent,
    AlertRule,
    AlertState,
)
from cipulse.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Result:
    runs: int = 0
    events: int = 0


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


@dataclass
class Pass:
    """One evaluation: the session, the rules and channels, and the alerts written so far."""

    session: Session
    settings: Settings
    now: datetime
    channels: list[AlertChannel]
    result: Result = field(default_factory=Result)
    _states: dict[tuple[int, str], AlertState] = field(default_factory=dict)

    def state(self, rule: AlertRule, subject: str, since: datetime) -> AlertState:
        key = (rule.id, subject)
        found = self._states.get(key) or self.session.scalar(
            select(AlertState).where(AlertState.rule_id == rule.id, AlertState.subject == subject)
        )
        if found is None:
            found = AlertState(
                rule_id=rule.id, subject=subject, status="ok", since=since, detail={}
            )
            self.session.add(found)
        self._states[key] = found
        return found

    def emit(
        self,
        *,
        rule: AlertRule,
        kind: str,
        subject: str,
        title: str,
        context: dict[str, Any],
        key: str,
    ) -> AlertEvent | None:
        """Write one alert and its deliveries; a second call with the same key does nothing."""
        dedupe = f"{rule.id}:{digest(subject)}:{kind}:{key}"
        if self.session.scalar(select(AlertEvent.id).where(AlertEvent.dedupe_key == dedupe)):
            return None
        context = {"rule": rule.name, "rule_kind": rule.kind, "subject": subject, **context}
        context.setdefault("links", []).append(
            ["Alert history", f"{self.settings.base_url}/alerts"]
        )
        event = AlertEvent(
            rule_id=rule.id,
            rule_name=rule.name,
            kind=kind,
            subject=subject[:500],
            title=title[:500],
            context=context,
            dedupe_key=dedupe,
            created_at=self.now,
        )
        self.session.add(event)
        self.session.flush()
        wanted = set(rule.channels or [])
        for channel in self.channels:
            if channel.enabled and (not wanted or channel.name in wanted):
                self.session.add(
                    AlertDelivery(
                        event_id=event.id, channel_id=channel.id, next_attempt_at=self.now
                    )
                )
        self.result.events += 1
        return event


def set_detail(state: AlertState, detail: dict[str, Any]) -> None:
    state.detail = json.loads(json.dumps(detail))  # a new object, so the JSON column is saved
