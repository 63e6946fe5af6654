"""The dashboard's Jinja environment: templates, filters and the static-asset helper.

Built at import because it needs nothing from the settings; the request is passed to every
template by Starlette, so links and asset paths follow the app's mount point.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from starlette.templating import Jinja2Templates

from cipulse.web import formatting

WEB_DIR = Path(__file__).parent
STATIC_DIR = WEB_DIR / "static"

templates = Jinja2Templates(
    env=Environment(
        loader=FileSystemLoader(WEB_DIR / "templates"),
        autoescape=select_autoescape(),
        trim_blocks=True,
        lstrip_blocks=True,
    )
)
templates.env.filters.update(
    duration=formatting.duration,
    percent=formatting.percent,
    short_commit=formatting.short_commit,
    utc_title=formatting.utc_title,
    iso=formatting.iso,
    count=formatting.count,
    utc_clock=formatting.utc_clock,
)
templates.env.globals["relative"] = formatting.relative

# The header's sections: (route name, section key, label), one line each so that every
# capability adds its own page without touching the template.
NAV_SECTIONS: list[tuple[str, str, str]] = [
    ("dashboard", "dashboard", "Dashboard"),
    ("overview_page", "overview", "Overview"),
    ("orgs_page", "orgs", "Organizations"),
    ("jobs_page", "jobs", "Jobs"),
    ("compare_page", "compare", "Compare"),
    ("tests_page", "tests", "Tests"),
    ("sync_page", "sync", "Sync"),
    ("alerts_page", "alerts", "Alerts"),
    ("webhooks_page", "webhooks", "Webhooks"),
]
templates.env.globals["nav_sections"] = NAV_SECTIONS


@pass_context
def static_url(context: dict[str, Any], path: str) -> str:
    """Path of a static file with its modification time, so an upgrade is never served stale."""
    request = context["request"]
    url = request.url_for("static", path=path).path
    try:
        version = int((STATIC_DIR / path).stat().st_mtime)
    except OSError:
        return str(url)
    return f"{url}?v={version}"


templates.env.globals["static_url"] = static_url
