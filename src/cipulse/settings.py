"""One typed source of configuration: every knob is a ``CIPULSE_*`` environment variable.

Secrets may also be read from a file named by ``CIPULSE_<NAME>_FILE`` so that they can come from
Docker/Kubernetes secrets instead of the environment.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

ENV_PREFIX = "CIPULSE_"
SECRET_FIELDS = (
    "ingest_token",
    "admin_token",
    "smtp_password",
    "github_token",
    "webhook_secret",
)
REPO_PATTERN = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(@[^\s@]+)?$")


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "cipulse"


class SettingsError(Exception):
    """A setting has a bad value; the message names the environment variable."""


class _SecretFileSource(PydanticBaseSettingsSource):
    """Reads ``CIPULSE_<SECRET>_FILE`` for the secret fields."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        env = f"{ENV_PREFIX}{field_name.upper()}_FILE"
        path = os.environ.get(env)
        if field_name not in SECRET_FIELDS or not path:
            return None, field_name, False
        try:
            return Path(path).read_text(encoding="utf-8").strip(), field_name, False
        except OSError as exc:
            raise SettingsError(f"{env}: cannot read the file {path!r} ({exc.strerror})") from None

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            value, key, _ = self.get_field_value(field, name)
            if value is not None:
                values[key] = value
        return values


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="Folder for the SQLite database, logs and downloaded files.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default: SQLite file `cipulse.db` in the data dir. "
        "Use `postgresql+psycopg://user@host/db` for PostgreSQL.",
    )
    auto_migrate: bool = Field(
        default=True,
        description="Apply database migrations when the server starts. Turn off when several "
        "processes share one database and `cipulse db upgrade` runs on deploy.",
    )
    base_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Public address of the dashboard, used for links in emails.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Log verbosity."
    )
    ingest_token: SecretStr | None = Field(
        default=None,
        description="When set, `POST /api/events/run` needs `Authorization: Bearer <token>`.",
    )
    admin_token: SecretStr | None = Field(
        default=None,
        description="When set, admin endpoints (`POST /api/simulate`) need "
        "`Authorization: Bearer <token>`.",
    )
    smtp_host: str | None = Field(
        default=None, description="SMTP server for email alerts; email is off when unset."
    )
    smtp_port: int = Field(default=587, ge=1, le=65535, description="SMTP port.")
    smtp_username: str | None = Field(default=None, description="SMTP login user, if any.")
    smtp_password: SecretStr | None = Field(default=None, description="SMTP login password.")
    smtp_from: str = Field(default="cipulse@localhost", description="Sender address.")
    smtp_to: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Recipients of the default email alert channel, comma separated.",
    )
    smtp_security: Literal["auto", "starttls", "tls", "none"] = Field(
        default="auto",
        description="`starttls` upgrades a plain connection (port 587), `tls` is implicit TLS "
        "(port 465), `none` never encrypts, `auto` upgrades when the server offers it.",
    )
    smtp_timeout_seconds: float = Field(default=15.0, gt=0, description="SMTP socket timeout.")
    mail_max_attempts: int = Field(
        default=10,
        ge=1,
        description="Tries before an alert delivery (any channel) is given up; it stays listed.",
    )
    mail_retry_seconds: float = Field(
        default=30.0,
        gt=0,
        description="First retry delay after a failed delivery; doubles each try, capped at 1 h.",
    )
    alerts_file: Path | None = Field(
        default=None,
        description="YAML or JSON file with alert channels and rules (docs/alerts.md).",
    )
    alert_remind_after_minutes: int = Field(
        default=240,
        ge=0,
        description="Minutes between reminders while a subject stays broken; 0: no reminders.",
    )
    alert_evaluate_seconds: float = Field(
        default=30.0,
        gt=0,
        description="Seconds between two passes of the alert evaluator over newly finished runs.",
    )
    alert_lookback_hours: float = Field(
        default=24.0,
        gt=0,
        description="Runs that finished longer ago update the alert state without alerting.",
    )
    live_min_interval_ms: int = Field(
        default=200,
        ge=0,
        description="Least time between two `metrics_update` broadcasts; a burst of ingests is "
        "folded into one update so that live clients never fall behind.",
    )

    github_token: SecretStr | None = Field(
        default=None,
        description="Token for GitHub's REST API (a fine-grained token with Actions: read). "
        "Falls back to the plain `GITHUB_TOKEN` variable.",
    )
    github_api_url: str = Field(
        default="https://api.github.com",
        description="GitHub's REST API; GitHub Enterprise Server users set `https://HOST/api/v3`.",
    )
    github_app_id: int | None = Field(
        default=None,
        ge=1,
        description="GitHub App mode: the App's id. With the private key, repositories are "
        "synced with their installation's token instead of CIPULSE_GITHUB_TOKEN.",
    )
    github_app_private_key_file: Path | None = Field(
        default=None, description="GitHub App mode: path to the App's private key (PEM)."
    )
    github_concurrency: int = Field(
        default=1, ge=1, le=8, description="Requests in flight at once per token."
    )
    repos: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Repositories to track, comma separated: `owner/name` for every branch, "
        "`owner/name@branch` (repeatable) for some.",
    )
    initial_sync_days: int = Field(
        default=30, ge=1, le=400, description="How far back the first sync of a repository goes."
    )
    poll_interval_minutes: float = Field(
        default=5,
        ge=0,
        description="Minutes between two polls of each tracked repository; 0 turns polling off.",
    )
    reconcile_cron: str = Field(
        default="0 6 * * *",
        description="Cron expression (UTC) of the daily full reconcile; empty turns it off.",
    )
    webhook_secret: SecretStr | None = Field(
        default=None,
        description="The secret set on the GitHub webhook or App; `POST /webhooks/github` "
        "verifies `X-Hub-Signature-256` with it and is off without it.",
    )
    webhook_allow_unsigned: bool = Field(
        default=False,
        description="Development only: accept webhook deliveries without a secret or signature.",
    )
    webhook_max_body_mb: float = Field(
        default=25, gt=0, le=100, description="Largest webhook body accepted (GitHub caps at 25)."
    )
    webhook_worker_in_serve: bool = Field(
        default=True,
        description="`cipulse serve` processes webhook deliveries itself; false when "
        "`cipulse worker` processes do (PostgreSQL).",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["*"],
        description="Origins allowed to call `/api/*` from a browser, comma separated; "
        "empty turns CORS off.",
    )
    max_concurrent_downloads: int = Field(
        default=3, ge=1, le=32, description="Artifact downloads in flight at once."
    )
    max_file_size_mb: float = Field(
        default=100, gt=0, description="Largest single file extracted from an artifact, in MB."
    )
    artifact_max_files: int = Field(
        default=10_000, ge=1, description="Most files one artifact may hold; more is refused."
    )
    artifact_max_total_mb: float = Field(
        default=1024, gt=0, description="Most bytes one artifact may extract to, in MB."
    )
    artifact_max_ratio: float = Field(
        default=200,
        ge=1,
        description="Largest compression ratio (extracted / zipped bytes) before an artifact "
        "is refused as a zip bomb.",
    )
    cleanup_old_files_days: int = Field(
        default=30,
        ge=0,
        description="Extracted artifact files older than this many days are deleted; 0 keeps "
        "them forever.",
    )
    flaky_window_days: int = Field(
        default=14,
        ge=1,
        le=365,
        description="A test that failed and passed on the same commit within this many days "
        "counts as flaky.",
    )
    storage_url: str | None = Field(
        default=None,
        description="Where job logs and artifact files are stored: any fsspec URL "
        "(`s3://bucket/prefix` with s3fs installed, `memory://` for tests); default: the "
        "folder `storage` in the data dir.",
    )
    fetch_all_logs: bool = Field(
        default=False,
        description="Fetch and store the log of every completed job, not only of failed ones.",
    )
    log_fetch_seconds: float = Field(
        default=15.0,
        gt=0,
        description="Seconds between two passes of the log fetcher over newly completed jobs.",
    )
    test_report_max_mb: float = Field(
        default=50, gt=0, le=1024, description="Largest JUnit report accepted, in MB."
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _SecretFileSource(settings_cls), file_secret_settings)

    @field_validator("smtp_to", "repos", "cors_origins", mode="before")
    @classmethod
    def _split_recipients(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("smtp_to")
    @classmethod
    def _check_recipients(cls, value: list[str]) -> list[str]:
        for address in value:
            if "@" not in address:
                raise ValueError(f"{address!r} is not an email address")
        return value

    @field_validator("repos")
    @classmethod
    def _check_repos(cls, value: list[str]) -> list[str]:
        for entry in value:
            if not REPO_PATTERN.match(entry):
                raise ValueError(f"{entry!r} is not owner/name or owner/name@branch")
        return value

    @field_validator("reconcile_cron")
    @classmethod
    def _check_cron(cls, value: str) -> str:
        if value.strip():
            from cronsim import CronSim, CronSimError

            try:
                CronSim(value, datetime.now(UTC))
            except CronSimError as exc:
                raise ValueError(f"{value!r} is not a cron expression ({exc})") from None
        return value.strip()

    @field_validator("github_api_url", "base_url")
    @classmethod
    def _check_http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _check_app(self) -> Settings:
        if (self.github_app_id is None) != (self.github_app_private_key_file is None):
            raise ValueError(
                "CIPULSE_GITHUB_APP_ID and CIPULSE_GITHUB_APP_PRIVATE_KEY_FILE go together"
            )
        key = self.github_app_private_key_file
        if key is not None and not key.is_file():
            raise ValueError(f"CIPULSE_GITHUB_APP_PRIVATE_KEY_FILE: no file at {key}")
        return self

    @field_validator("alerts_file")
    @classmethod
    def _check_alerts_file(cls, value: Path | None) -> Path | None:
        if value is not None:
            if not value.is_file():
                raise ValueError(f"no file at {value}")
            from cipulse.alerts.config import ConfigError, load_file

            try:
                load_file(value)  # fail fast: a bad file stops start-up with what is wrong
            except ConfigError as exc:
                raise ValueError(str(exc).removeprefix("CIPULSE_ALERTS_FILE: ")) from None
        return value

    @model_validator(mode="after")
    def _github_token_fallback(self) -> Settings:
        if self.github_token is None and os.environ.get("GITHUB_TOKEN"):
            self.github_token = SecretStr(os.environ["GITHUB_TOKEN"])
        return self

    @property
    def tracked_repos(self) -> dict[str, list[str]]:
        """``CIPULSE_REPOS`` as {owner/name: [branches]}; an empty list means every branch."""
        out: dict[str, list[str]] = {}
        for entry in self.repos:
            name, _, branch = entry.partition("@")
            branches = out.setdefault(name, [])
            if branch and branch not in branches:
                branches.append(branch)
        return out

    @field_validator("database_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("sqlite", "postgresql")):
            raise ValueError("only sqlite:/// and postgresql+psycopg:// URLs are supported")
        return value

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            if self.database_url.startswith("postgresql://"):
                return "postgresql+psycopg://" + self.database_url.removeprefix("postgresql://")
            return self.database_url
        return f"sqlite:///{self.data_dir / 'cipulse.db'}"

    @property
    def smtp_enabled(self) -> bool:
        return bool(self.smtp_host and self.smtp_to)


def load_settings(**overrides: Any) -> Settings:
    """Build settings, turning pydantic's errors into one line per bad variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            name = ENV_PREFIX + "_".join(str(p) for p in error["loc"][:1]).upper()
            lines.append(f"{name}: {error['msg']}")
        raise SettingsError("invalid setting " + "; ".join(lines)) from None
