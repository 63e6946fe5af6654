"""The docs name every setting and every route, and nothing that no longer exists."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.routing import APIRoute, APIWebSocketRoute

from cipulse.app import create_app
from cipulse.settings import SECRET_FIELDS, Settings

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_every_setting_is_documented() -> None:
    text = (DOCS / "configuration.md").read_text()
    documented = set(re.findall(r"`(CIPULSE_[A-Z0-9_]+)`", text))
    expected = {f"CIPULSE_{name.upper()}" for name in Settings.model_fields}
    assert expected - documented == set(), "settings missing from docs/configuration.md"
    stale = {d for d in documented if d not in expected and not d.endswith("_FILE")}
    assert stale == set(), "docs/configuration.md names settings that do not exist"
    for name in SECRET_FIELDS:
        row = next(
            line for line in text.splitlines() if line.startswith(f"| `CIPULSE_{name.upper()}`")
        )
        assert "*secret*" in row, f"{name} is read from *_FILE too; the docs must say so"


def test_every_route_is_documented() -> None:
    text = (DOCS / "api.md").read_text()
    app = create_app(Settings(database_url="sqlite://"))
    missing = []
    for route in app.routes:
        if isinstance(route, APIRoute) and route.include_in_schema:
            for method in route.methods - {"HEAD"}:
                if f"`{method} {route.path}" not in text:
                    missing.append(f"{method} {route.path}")
        elif isinstance(route, APIWebSocketRoute) and f"`WS {route.path}" not in text:
            missing.append(f"WS {route.path}")
    assert missing == [], "routes missing from docs/api.md"


def test_every_cli_command_is_documented() -> None:
    from typer.main import get_command

    from cipulse.cli import app

    text = (DOCS / "cli.md").read_text()
    root = get_command(app)
    names = []
    for name, command in root.commands.items():  # type: ignore[attr-defined]
        sub = getattr(command, "commands", None)
        names += [f"cipulse {name} {s}" for s in sub] if sub else [f"cipulse {name}"]
    missing = [n for n in names if f"`{n}" not in text]
    assert missing == [], "commands missing from docs/cli.md"
