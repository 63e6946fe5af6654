"""The alerts page (``GET /alerts``): what is broken now, the channels (with why one is switched
off), the rules, and the alert history with each delivery's result.

Everything on it is readable like the rest of the dashboard; the buttons (send a test alert,
switch a channel or rule on or off, add or delete one, retry a delivery) call the admin API from
``static/alerts.js`` with the token typed into the page (``admin_token.js``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.responses import Response

from cipulse.alerts import repository as alert_repo
from cipulse.alerts import service as alerts
from cipulse.alerts.schemas import ChannelOut, EventOut, IncidentOut, RuleOut
from cipulse.context import AppContext, get_ctx
from cipulse.models import utcnow
from cipulse.web.templating import templates

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

LIMIT = 50
KINDS = ("broken", "fixed", "reminder", "flaky", "test")
TONES = {"broken": "failure", "reminder": "running", "fixed": "success", "flaky": "running"}
STATE_TONES = {"sent": "success", "failed": "failure", "pending": "running"}
RULE_LABELS = {
    "branch": "Branch goes red / green",
    "pipeline": "Pushed pipeline fails / recovers",
    "failure_rate": "Job failure rate over a threshold",
    "flaky_job": "New flaky job",
    "flaky_test": "New flaky test (JUnit)",
    "duration": "Duration regression",
}
HEADERS = {"Cache-Control": "no-cache"}


@dataclass(frozen=True)
class RuleRow:
    rule: RuleOut

    @property
    def label(self) -> str:
        return RULE_LABELS.get(self.rule.kind, self.rule.kind)

    @property
    def scope(self) -> str:
        """The rule's parameters in a few words."""
        p = self.rule.params
        parts = []
        if self.rule.kind == "flaky_test":
            projects = ", ".join(p.get("projects") or []) or "every project"
            return f"{projects} · not flaky in {p['quiet_days']:g} days"
        if self.rule.kind == "pipeline":
            parts.append(", ".join(p.get("pipelines") or []) or "every pipeline")
            parts.append("branches " + ", ".join(p["branches"]) if p.get("branches") else "")
        else:
            parts.append(", ".join(p.get("repos") or []) or "every repository")
            branches = p.get("branches") or []
            parts.append(
                "every branch"
                if "*" in branches
                else ("branches " + ", ".join(branches) if branches else "default branch")
            )
            if p.get("workflows"):
                parts.append("workflows " + ", ".join(p["workflows"]))
        if self.rule.kind == "failure_rate":
            parts.append(f"≥ {p['threshold_pct']:g} % of the last {p['last_runs']} runs")
        if self.rule.kind == "duration":
            parts.append(
                f"p{p['percentile']:g} +{p['threshold_pct']:g} % vs the {p['period_days']:g} "
                "days before"
            )
        if self.rule.kind == "flaky_job":
            parts.append(f"not flaky in {p['quiet_days']:g} days")
        return " · ".join(x for x in parts if x)

    def reminders(self, default: int) -> str:
        if self.rule.kind in ("flaky_job", "flaky_test"):
            return "—"
        minutes = self.rule.remind_after_minutes
        minutes = default if minutes is None else minutes
        if minutes <= 0:
            return "never"
        return f"every {minutes // 60} h" if minutes % 60 == 0 else f"every {minutes} min"


def _tone(kind: str) -> str:
    return TONES.get(kind, "muted")


@router.get("/alerts", response_class=HTMLResponse, name="alerts_page")
def alerts_page(
    request: Request,
    ctx: Annotated[AppContext, Depends(get_ctx)],
    kind: str | None = None,
    before: int | None = None,
) -> Response:
    """Incidents, channels, rules and history on one page; ``kind`` filters the history."""
    chosen = kind if kind in KINDS else None
    now = utcnow()
    admin = ctx.settings.admin_token
    context: dict[str, Any] = {
        "now": now,
        "section": "alerts",
        "kind": chosen,
        "kinds": KINDS,
        "page_path": request.url_for("alerts_page").path,
        "admin_required": bool(admin and admin.get_secret_value()),
        "token_note": "Changing alerts needs the server's admin token.",
    }
    try:
        with ctx.db.read() as session:
            channels: list[ChannelOut] = [
                alerts.channel_out(c, ctx.settings) for c in alert_repo.channels(session)
            ]
            rules = [RuleRow(alerts.rule_out(r)) for r in alert_repo.rules(session)]
            incidents: list[IncidentOut] = alerts.incidents(session)
            history: list[EventOut] = alerts.history(
                session, limit=LIMIT, kind=chosen, before=before
            )
    except SQLAlchemyError:
        log.exception("the alerts page could not read the database")
        return templates.TemplateResponse(
            request, "error.html", context, status_code=503, headers=HEADERS
        )
    context.update(
        channels=channels,
        rules=rules,
        incidents=incidents,
        history=history,
        older=history[-1].id if len(history) == LIMIT else None,
        tone=_tone,
        state_tones=STATE_TONES,
        rule_labels=RULE_LABELS,
        remind_default=ctx.settings.alert_remind_after_minutes,
        alerts_file=str(ctx.settings.alerts_file) if ctx.settings.alerts_file else None,
        smtp_host=ctx.settings.smtp_host,
        api=request.url_for("list_channels").path.rsplit("/", 1)[0],
    )
    return templates.TemplateResponse(request, "alerts.html", context, headers=HEADERS)
