"""Failure emails go into an outbox in the run's own transaction; a worker sends them later.

So a slow or broken mail server never delays the ingest answer, and a crash between the commit
and the send only delays the email.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from cipulse.models import MailOutbox, PipelineRun, utcnow
from cipulse.settings import Settings

CLAIM_SECONDS = 120
MAX_BACKOFF_SECONDS = 3600


def _fmt(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "unknown"


def failure_mail(run: PipelineRun, settings: Settings) -> tuple[str, str]:
    name = run.pipeline.name
    subject = f"[cipulse] {name} failed"
    if run.branch:
        subject += f" on {run.branch}"
    if run.commit_sha:
        subject += f" ({run.commit_sha[:8]})"
    duration = f"{run.duration_sec:.0f} s" if run.duration_sec is not None else "unknown"
    body = "\n".join(
        [
            f"The pipeline {name!r} failed.",
            "",
            f"Branch:       {run.branch or '-'}",
            f"Commit:       {run.commit_sha or '-'}",
            f"Triggered by: {run.triggered_by or '-'}",
            f"Started:      {_fmt(run.started_at)}",
            f"Finished:     {_fmt(run.finished_at)}",
            f"Duration:     {duration}",
            "",
            f"Dashboard: {settings.base_url.rstrip('/')}/",
            "",
            "-- cipulse",
        ]
    )
    return subject, body


def enqueue_failure_mail(session: Session, *, run: PipelineRun, settings: Settings) -> bool:
    if not settings.smtp_enabled:
        return False
    subject, body = failure_mail(run, settings)
    session.add(
        MailOutbox(
            pipeline_run_id=run.id,
            recipients=", ".join(settings.smtp_to),
            subject=subject,
            body_text=body,
        )
    )
    return True


def claim_due(session: Session, *, now: datetime, limit: int = 20) -> list[MailOutbox]:
    """Claim due mails with a conditional UPDATE, so two workers never send the same one."""
    candidates = session.scalars(
        select(MailOutbox.id)
        .where(MailOutbox.state == "pending", MailOutbox.next_attempt_at <= now)
        .where(or_(MailOutbox.claimed_until.is_(None), MailOutbox.claimed_until < now))
        .order_by(MailOutbox.next_attempt_at)
        .limit(limit)
    ).all()
    claimed = []
    for mail_id in candidates:
        result = session.execute(
            update(MailOutbox)
            .where(MailOutbox.id == mail_id)
            .where(or_(MailOutbox.claimed_until.is_(None), MailOutbox.claimed_until < now))
            .values(claimed_until=now + timedelta(seconds=CLAIM_SECONDS))
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            claimed.append(mail_id)
    return list(session.scalars(select(MailOutbox).where(MailOutbox.id.in_(claimed))).all())


def mark_sent(session: Session, *, mail_id: int, now: datetime) -> None:
    mail = session.get_one(MailOutbox, mail_id)
    mail.state = "sent"
    mail.sent_at = now
    mail.attempts += 1
    mail.claimed_until = None
    mail.last_error = None


def mark_failed(
    session: Session, *, mail_id: int, error: str, now: datetime, settings: Settings
) -> MailOutbox:
    mail = session.get_one(MailOutbox, mail_id)
    mail.attempts += 1
    mail.last_error = error[:1000]
    mail.claimed_until = None
    if mail.attempts >= settings.mail_max_attempts:
        mail.state = "failed"
    else:
        delay = min(settings.mail_retry_seconds * 2 ** (mail.attempts - 1), MAX_BACKOFF_SECONDS)
        mail.next_attempt_at = now + timedelta(seconds=delay)
    return mail


def next_due(session: Session) -> datetime | None:
    return session.scalar(
        select(MailOutbox.next_attempt_at)
        .where(MailOutbox.state == "pending")
        .order_by(MailOutbox.next_attempt_at)
        .limit(1)
    )


def pending_count(session: Session) -> int:
    return len(session.scalars(select(MailOutbox.id).where(MailOutbox.state == "pending")).all())


__all__ = ["claim_due", "enqueue_failure_mail", "mark_failed", "mark_sent", "next_due", "utcnow"]
