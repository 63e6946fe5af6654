"""Shapes of alert configuration (file and API) and of what the API answers.

A channel's or rule's settings are checked here, once, whether they come from the alerts file or
from the page: a bad value is refused with a message that names it and nothing is stored.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

CHANNEL_KINDS = ("email", "slack", "teams", "webhook", "null")
RULE_KINDS = ("branch", "pipeline", "failure_rate", "flaky_job", "flaky_test", "duration")
Name = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^\s].*$")]


def expand_env(value: str) -> str:
    """``env:NAME`` reads the variable NAME, so secrets need not sit in the alerts file."""
    if value.startswith("env:"):
        name = value.removeprefix("env:")
        found = os.environ.get(name)
        if found is None:
            raise ValueError(f"the environment variable {name} is not set")
        return found
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EmailConfig(_Strict):
    """Recipients, and optionally an SMTP server other than the ``CIPULSE_SMTP_*`` one."""

    to: list[str] = Field(min_length=1)
    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Literal["auto", "starttls", "tls", "none"] | None = None
    username: str | None = None
    password: str | None = None
    sender: str | None = Field(default=None, alias="from")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @field_validator("to", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("to")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            if "@" not in address or any(c.isspace() for c in address):
                raise ValueError(f"{address!r} is not an email address")
        return value

    @field_validator("password")
    @classmethod
    def _env(cls, value: str | None) -> str | None:
        return expand_env(value) if value else value


class UrlConfig(_Strict):
    """Slack and Teams incoming webhooks: the URL is the secret."""

    url: str

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        value = expand_env(value.strip())
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value


class WebhookConfig(UrlConfig):
    """A generic JSON webhook, signed with HMAC-SHA256 when a secret is set."""

    secret: str | None = None

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: str | None) -> str | None:
        return expand_env(value) if value else value


class NullConfig(_Strict):
    """Development: deliveries succeed and are only logged."""


CONFIG_MODELS: dict[str, type[BaseModel]] = {
    "email": EmailConfig,
    "slack": UrlConfig,
    "teams": UrlConfig,
    "webhook": WebhookConfig,
    "null": NullConfig,
}
SECRET_KEYS = {"password", "url", "secret"}


class BranchParams(_Strict):
    """A tracked branch goes red / green: ``branches`` empty means each repository's default."""

    repos: list[str] = Field(default_factory=list)
    branches: list[str] = Field(default_factory=list)
    workflows: list[str] = Field(default_factory=list)


class PipelineParams(_Strict):
    """A pushed pipeline (design E) fails / recovers, per pipeline and branch."""

    pipelines: list[str] = Field(default_factory=list)
    branches: list[str] = Field(default_factory=list)


class FailureRateParams(BranchParams):
    """A job's failure rate over its last ``last_runs`` runs reaches ``threshold_pct``."""

    last_runs: int = Field(default=20, ge=2, le=500)
    min_runs: int = Field(default=5, ge=1, le=500)
    threshold_pct: float = Field(default=30.0, gt=0, le=100)


class FlakyJobParams(BranchParams):
    """A job fails then passes on a re-run, and was not flaky in the last ``quiet_days``."""

    branches: list[str] = Field(default_factory=lambda: ["*"])
    quiet_days: float = Field(default=14.0, gt=0, le=365)


class FlakyTestParams(_Strict):
    """A test (JUnit reports) turns flaky and was not flaky in the last ``quiet_days``."""

    projects: list[str] = Field(default_factory=list)
    quiet_days: float = Field(default=14.0, gt=0, le=365)


class DurationParams(BranchParams):
    """A workflow's ``percentile`` duration grows by more than ``threshold_pct`` against the
    period before."""

    percentile: float = Field(default=95.0, gt=0, le=100)
    threshold_pct: float = Field(default=20.0, gt=0, le=1000)
    period_days: float = Field(default=7.0, gt=0, le=90)
    min_runs: int = Field(default=5, ge=1, le=1000)


PARAM_MODELS: dict[str, type[BaseModel]] = {
    "branch": BranchParams,
    "pipeline": PipelineParams,
    "failure_rate": FailureRateParams,
    "flaky_job": FlakyJobParams,
    "flaky_test": FlakyTestParams,
    "duration": DurationParams,
}


class ChannelIn(_Strict):
    name: Name
    kind: Literal["email", "slack", "teams", "webhook", "null"]
    config: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True

    @model_validator(mode="after")
    def _check_config(self) -> ChannelIn:
        model = CONFIG_MODELS[self.kind].model_validate(self.config)
        self.config = model.model_dump(by_alias=True, exclude_none=True)
        return self


class RuleIn(_Strict):
    name: Name
    kind: Literal["branch", "pipeline", "failure_rate", "flaky_job", "flaky_test", "duration"]
    params: dict[str, Any] = Field(default_factory=dict)
    channels: list[str] = Field(default_factory=list)
    remind_after_minutes: int | None = Field(default=None, ge=0, le=525600)
    enabled: bool = True

    @model_validator(mode="after")
    def _check_params(self) -> RuleIn:
        model = PARAM_MODELS[self.kind].model_validate(self.params)
        self.params = model.model_dump()
        return self


class AlertsFile(_Strict):
    """The alerts file (``CIPULSE_ALERTS_FILE``), YAML or JSON."""

    channels: list[ChannelIn] = Field(default_factory=list)
    rules: list[RuleIn] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> AlertsFile:
        for what, names in (
            ("channel", [c.name for c in self.channels]),
            ("rule", [r.name for r in self.rules]),
        ):
            seen: set[str] = set()
            for name in names:
                if name in seen:
                    raise ValueError(f"two {what}s are named {name!r}")
                seen.add(name)
        known = {c.name for c in self.channels}
        for rule in self.rules:
            for channel in rule.channels:
                if channel not in known:
                    raise ValueError(f"rule {rule.name!r} names an unknown channel {channel!r}")
        return self


class ChannelOut(BaseModel):
    id: int
    name: str
    kind: str
    target: str  # where it goes, secrets masked
    source: str
    enabled: bool
    disabled_reason: str | None
    disabled_at: datetime | None


class RuleOut(BaseModel):
    id: int
    name: str
    kind: str
    params: dict[str, Any]
    channels: list[str]
    remind_after_minutes: int | None
    source: str
    enabled: bool


class DeliveryOut(BaseModel):
    id: int
    channel: str
    channel_kind: str
    state: str
    attempts: int
    last_error: str | None
    next_attempt_at: datetime
    sent_at: datetime | None


class EventOut(BaseModel):
    id: int
    kind: str
    rule: str
    subject: str
    title: str
    created_at: datetime
    deliveries: list[DeliveryOut]


class IncidentOut(BaseModel):
    rule: str
    rule_kind: str
    subject: str
    since: datetime
    last_alert_at: datetime | None


class TestAlertOut(BaseModel):
    event_id: int
    delivery_id: int
