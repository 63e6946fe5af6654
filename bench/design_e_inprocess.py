"""Where the summary's time goes, measured in the benchmark's own process (no HTTP).

The HTTP figures say whether the target is met; these say which query to look at when it is not:
each ``cipulse.analytics.repository`` read is timed separately, and the database's plan for each
statement is kept, so a cost that grows with history points at its cause.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

import design_e_naive as naive
from cipulse.analytics import repository
from cipulse.analytics import service as analytics

READS = ("rollup_counts", "raw_counts", "pipeline_names", "last_finished", "last_finished_overall")


def breakdown(
    engine: Engine, *, minutes: int, timed: Callable[[Callable[[], None]], list[float]]
) -> tuple[list[float], dict[str, float]]:
    """Timings (ms) of whole in-process summaries, and the median of each repository read."""
    parts: dict[str, list[float]] = defaultdict(list)
    originals = {name: getattr(repository, name) for name in READS}

    def wrap(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed_read(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                parts[name].append((time.perf_counter() - t0) * 1000)

        return timed_read

    def call() -> None:
        with Session(engine) as session:
            analytics.summary(session, minutes=minutes)

    for name, fn in originals.items():
        setattr(repository, name, wrap(name, fn))
    try:
        totals = timed(call)
    finally:
        for name, fn in originals.items():
            setattr(repository, name, fn)
    return totals, {name: round(_median(parts[name]), 3) for name in READS if parts[name]}


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else 0.0


def query_plans(engine: Engine, *, minutes: int, method: str = "rollup") -> list[dict[str, str]]:
    """The database's plan for every statement one summary issues (EXPLAIN, not executed);
    ``method`` is ``rollup`` (the application's) or one of the naive recounts."""
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and all(s != statement for s, _ in seen):
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        with Session(engine) as session:
            if method == "rollup":
                analytics.summary(session, minutes=minutes)
            else:
                naive.summary(session, minutes=minutes, method=method)
    finally:
        event.remove(engine, "before_cursor_execute", record)

    sqlite = engine.dialect.name == "sqlite"
    plans = []
    with engine.connect() as conn:
        for statement, parameters in seen:
            prefix = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN "
            rows = conn.exec_driver_sql(prefix + statement, parameters).all()
            lines = [str(row[-1] if sqlite else row[0]) for row in rows]
            head = " ".join(statement.split())
            table = head.split(" FROM ", 1)[1].split()[0] if " FROM " in head else "?"
            plans.append({"table": table, "sql": head[:160], "plan": " / ".join(lines)})
    return plans
