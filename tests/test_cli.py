from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def cipulse(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cipulse", *args],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("args", [[], ["serve"], ["demo"], ["db"], ["db", "upgrade"]])
def test_help(args: list[str], tmp_path: Path) -> None:
    r = cipulse(*args, "--help", env={"CIPULSE_DATA_DIR": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    assert "Usage" in r.stdout


def test_db_upgrade_then_current(database_url: str, tmp_path: Path) -> None:
    env = {"CIPULSE_DATABASE_URL": database_url, "CIPULSE_DATA_DIR": str(tmp_path)}
    r = cipulse("db", "upgrade", env=env)
    assert r.returncode == 0, r.stderr
    assert "database at revision" in r.stderr
    current = cipulse("db", "current", env=env)
    lines = dict(line.split(":", 1) for line in current.stdout.splitlines())
    assert lines["current"].strip() == lines["head"].strip() != "None"


def test_db_upgrade_reports_unreachable_database(tmp_path: Path) -> None:
    env = {
        "CIPULSE_DATABASE_URL": "postgresql+psycopg://nobody:topsecret@127.0.0.1:1/none",
        "CIPULSE_DATA_DIR": str(tmp_path),
    }
    r = cipulse("db", "upgrade", env=env)
    assert r.returncode == 1
    assert "could not upgrade the database" in r.stderr
    assert "topsecret" not in r.stderr
    assert "Traceback" not in r.stderr


def test_serve_reports_unreachable_database(tmp_path: Path) -> None:
    env = {
        "CIPULSE_DATABASE_URL": "postgresql+psycopg://nobody:topsecret@127.0.0.1:1/none",
        "CIPULSE_DATA_DIR": str(tmp_path),
    }
    r = cipulse("serve", "--port", "8799", env=env)
    assert r.returncode == 1
    assert "cannot use the database" in r.stderr
    assert "topsecret" not in r.stderr
    assert "Traceback" not in r.stderr
