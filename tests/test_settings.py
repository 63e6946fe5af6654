from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cipulse.settings import Settings, SettingsError, load_settings


def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    s = load_settings()
    assert s.data_dir == tmp_path / "cipulse"
    assert s.resolved_database_url == f"sqlite:///{tmp_path / 'cipulse' / 'cipulse.db'}"
    assert s.smtp_enabled is False
    assert s.ingest_token is None


def test_env_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIPULSE_SMTP_HOST", "mail.example.org")
    monkeypatch.setenv("CIPULSE_SMTP_TO", "a@example.org, b@example.org")
    monkeypatch.setenv("CIPULSE_DATABASE_URL", "postgresql://u@db/cipulse")
    s = load_settings()
    assert s.smtp_to == ["a@example.org", "b@example.org"]
    assert s.smtp_enabled
    assert s.resolved_database_url == "postgresql+psycopg://u@db/cipulse"


@pytest.mark.parametrize(
    ("var", "value", "needle"),
    [
        ("CIPULSE_SMTP_PORT", "abc", "CIPULSE_SMTP_PORT"),
        ("CIPULSE_SMTP_PORT", "70000", "CIPULSE_SMTP_PORT"),
        ("CIPULSE_SMTP_TO", "not-an-address", "CIPULSE_SMTP_TO"),
        ("CIPULSE_DATABASE_URL", "mysql://x", "CIPULSE_DATABASE_URL"),
        ("CIPULSE_SMTP_SECURITY", "ssl", "CIPULSE_SMTP_SECURITY"),
        ("CIPULSE_AUTO_MIGRATE", "maybe", "CIPULSE_AUTO_MIGRATE"),
    ],
)
def test_bad_value_names_the_setting(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str, needle: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(SettingsError, match=needle):
        load_settings()


def test_secret_from_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("from-a-file\n")
    monkeypatch.setenv("CIPULSE_INGEST_TOKEN_FILE", str(secret))
    s = load_settings()
    assert s.ingest_token is not None
    assert s.ingest_token.get_secret_value() == "from-a-file"
    assert "from-a-file" not in repr(s)


def test_plain_variable_wins_over_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("file")
    monkeypatch.setenv("CIPULSE_SMTP_PASSWORD_FILE", str(secret))
    monkeypatch.setenv("CIPULSE_SMTP_PASSWORD", "env")
    password = Settings().smtp_password
    assert password is not None
    assert password.get_secret_value() == "env"


def test_unreadable_secret_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CIPULSE_ADMIN_TOKEN_FILE", str(tmp_path / "missing"))
    with pytest.raises(SettingsError, match="CIPULSE_ADMIN_TOKEN_FILE"):
        load_settings()


def test_cli_refuses_to_start_with_bad_setting(tmp_path: Path) -> None:
    env = {"CIPULSE_SMTP_PORT": "abc", "CIPULSE_DATA_DIR": str(tmp_path), "PATH": "/usr/bin"}
    r = subprocess.run(
        [sys.executable, "-m", "cipulse", "serve"], env=env, capture_output=True, text=True
    )
    assert r.returncode == 2
    assert "CIPULSE_SMTP_PORT" in r.stderr
    assert "Traceback" not in r.stderr
