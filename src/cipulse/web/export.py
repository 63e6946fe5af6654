"""CSV or JSON export of any table, for the API (``?format=csv|json``) and the pages' links.

A *table* is a list of pydantic models or dicts. JSON keeps the shape; CSV flattens nested
objects into dotted columns (``a.failure_rate``) and lists into ``;``-joined cells, and takes
its columns from the union of the rows' keys in first-seen order. Usage in a route::

    fmt: ExportFormat = None
    ...
    if fmt is not None:
        return export.table(rows, fmt=fmt, name="job-failure-rates")
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import Query
from pydantic import BaseModel
from starlette.responses import Response

FORMATS = ("csv", "json")
ExportFormat = Annotated[
    Literal["csv", "json"] | None,
    Query(
        alias="format",
        description="Answer with the main table as a CSV or JSON file instead of the full object",
    ),
]


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _flatten(row: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{name}."))
        elif isinstance(value, list | tuple):
            out[name] = ";".join("" if v is None else str(_plain(v)) for v in value)
        else:
            out[name] = value
    return out


def rows_of(table: Iterable[Any]) -> list[dict[str, Any]]:
    return [_plain(row) if not isinstance(row, Mapping) else dict(row) for row in table]


def to_csv(table: Iterable[Any]) -> str:
    flat = [_flatten(row) for row in rows_of(table)]
    columns = list(dict.fromkeys(key for row in flat for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in flat:
        writer.writerow({k: "" if v is None else _plain(v) for k, v in row.items()})
    return buffer.getvalue()


def table(table: Iterable[Any], *, fmt: str, name: str) -> Response:
    """A download of the table; ``name`` becomes the file name."""
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in name) or "export"
    headers = {"Content-Disposition": f'attachment; filename="{safe}.{fmt}"'}
    if fmt == "csv":
        return Response(to_csv(table), media_type="text/csv; charset=utf-8", headers=headers)
    body = json.dumps(rows_of(table), default=str, separators=(",", ":"))
    return Response(body, media_type="application/json", headers=headers)


def link(path: str, params: Mapping[str, Any], fmt: str) -> str:
    """The export URL of a view: its own filters plus ``format``."""
    query = {k: v for k, v in params.items() if v not in (None, "")}
    query["format"] = fmt
    return f"{path}?{urlencode(query)}"
