"""Channels and rules from configuration: the alerts file, or defaults from the SMTP settings.

The file (``CIPULSE_ALERTS_FILE``, YAML or JSON) is applied at start-up: rows it names are
created or updated and marked ``source=config`` (the page shows them read-only); config rows it
no longer names are switched off rather than deleted, so their history stays. Without a file,
design E's behaviour is kept: an email channel from ``CIPULSE_SMTP_*`` when set, and two rules,
the default branch of every repository and every pushed pipeline.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import yaml  # type: ignore[import-untyped]
from pydantic import ValidationError
from sqlalchemy.orm import Session

from cipulse.alerts import repository
from cipulse.alerts.schemas import AlertsFile, ChannelIn, RuleIn
from cipulse.models import AlertChannel, AlertRule
from cipulse.settings import Settings

DEFAULT_EMAIL = "email"
REMOVED = "no longer in the alerts file"


class ConfigError(Exception):
    """The alerts file cannot be used; the message names the file and the problem."""


def load_file(path: Path) -> AlertsFile:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"CIPULSE_ALERTS_FILE: cannot read {path} ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"CIPULSE_ALERTS_FILE: {path} is not YAML or JSON ({exc})") from None
    try:
        return AlertsFile.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"CIPULSE_ALERTS_FILE: {path}: {problems}") from None


def default_config(settings: Settings) -> AlertsFile:
    channels = []
    if settings.smtp_enabled:
        channels.append(
            ChannelIn(name=DEFAULT_EMAIL, kind="email", config={"to": list(settings.smtp_to)})
        )
    return AlertsFile(
        channels=channels,
        rules=[
            RuleIn(name="default branches", kind="branch"),
            RuleIn(name="pushed pipelines", kind="pipeline"),
        ],
    )


def configured(settings: Settings) -> AlertsFile:
    if settings.alerts_file is not None:
        return load_file(settings.alerts_file)
    return default_config(settings)


def apply(session: Session, *, config: AlertsFile, now: datetime) -> None:
    """Make the stored config rows match ``config``; rows made in the page are left alone."""
    names = set()
    for item in config.channels:
        names.add(item.name)
        channel = repository.channel_by_name(session, item.name)
        if channel is None:
            channel = AlertChannel(name=item.name, created_at=now)
            session.add(channel)
        elif channel.source == "config" and channel.disabled_reason == REMOVED:
            channel.enabled, channel.disabled_reason, channel.disabled_at = True, None, None
        if channel.kind != item.kind or channel.config != item.config:
            # A changed address or URL deserves a new chance after a permanent error.
            channel.enabled, channel.disabled_reason, channel.disabled_at = True, None, None
        channel.kind, channel.config, channel.source = item.kind, item.config, "config"
        channel.updated_at = now
        if not item.enabled:
            channel.enabled = False
    for channel in repository.channels(session):
        if channel.source == "config" and channel.name not in names and channel.enabled:
            channel.enabled, channel.disabled_reason, channel.disabled_at = False, REMOVED, now

    rule_names = set()
    for rule_in in config.rules:
        rule_names.add(rule_in.name)
        rule = repository.rule_by_name(session, rule_in.name)
        if rule is None:
            rule = AlertRule(name=rule_in.name, created_at=now)
            session.add(rule)
        rule.kind, rule.params, rule.channels = rule_in.kind, rule_in.params, rule_in.channels
        rule.remind_after_minutes = rule_in.remind_after_minutes
        rule.enabled, rule.source, rule.updated_at = rule_in.enabled, "config", now
    for rule in repository.rules(session):
        if rule.source == "config" and rule.name not in rule_names:
            rule.enabled = False
    session.flush()
