"""Pure arithmetic of the metrics: counting rule, exact histograms, percentiles, trends.

Everything here works on plain values so that the rollup task, the read path that folds in
days not rolled up yet, and the tests share one definition (docs/metrics.md).
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

SUCCESS = frozenset({"success", "neutral"})
FAILURE = frozenset({"failure", "timed_out", "startup_failure"})
NO_BRANCH = ""  # runs without a branch (tags, some events) roll up under this key
# Stored rollup rows that sum every branch of a workflow (git forbids "*" in branch names):
# a read without a branch filter reads these, one row per workflow and day.
ALL_BRANCHES = "*"
ALL_WORKFLOWS = "*"  # with ALL_BRANCHES: one run row per repository and day

# A trend needs this many counted samples on each side; below it the change is "too few".
MIN_TREND_SAMPLES = 10
FLAT_RATE_POINTS = 2.0  # percentage points
FLAT_RELATIVE = 0.10  # 10 % for durations and throughput

Hist = Counter[int]


def outcome(status: str | None, conclusion: str | None) -> str | None:
    """success | failure | cancelled | skipped | None (not finished or not counted)."""
    if status != "completed":
        return None
    if conclusion in SUCCESS:
        return "success"
    if conclusion in FAILURE:
        return "failure"
    if conclusion in ("cancelled", "skipped"):
        return conclusion
    return None


def seconds(start: datetime | None, end: datetime | None) -> int | None:
    if start is None or end is None:
        return None
    return max(0, int((end - start).total_seconds()))


def rate(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 2) if whole else None


# -- histograms ----------------------------------------------------------------------------


EXACT_BELOW = 128  # seconds kept exactly; above, 64 buckets per power of two


def bucket(value: int) -> int:
    """The histogram bucket (its lower bound) of a duration in whole seconds.

    Exact below 128 s; above, the value rounded down to a multiple of 2^(bits - 7), so a
    percentile read from the histogram is at most 1/64 (1.6 %) below the exact one. The mapping
    is monotonic, so the percentile of the buckets is the bucket of the exact percentile.
    """
    if value < EXACT_BELOW:
        return value
    shift = value.bit_length() - 7
    return (value >> shift) << shift


def dump_hist(hist: Mapping[int, int]) -> str:
    """``[value, count, value, count, ...]``: plain JSON integers, quick to load and merge."""
    flat = [n for pair in sorted(hist.items()) for n in pair]
    return json.dumps(flat, separators=(",", ":"))


def merge_hist(into: Hist, text: str | None) -> None:
    if not text:
        return
    flat = json.loads(text)
    get = into.get
    for i in range(0, len(flat), 2):
        value = flat[i]
        into[value] = get(value, 0) + flat[i + 1]


def load_hist(text: str | None) -> Hist:
    out: Hist = Counter()
    merge_hist(out, text)
    return out


def percentile(hist: Mapping[int, int], p: float) -> int | None:
    """Nearest-rank percentile: the smallest value with at least p % of samples at or below."""
    total = sum(hist.values())
    if not total:
        return None
    rank = max(1, math.ceil(p / 100.0 * total))
    seen = 0
    for value in sorted(hist):
        seen += hist[value]
        if seen >= rank:
            return value
    return None  # unreachable


def percentile_of(values: Sequence[int], p: float) -> int | None:
    """The same nearest-rank percentile over a plain list (used by raw-row metrics)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100.0 * len(ordered))) - 1]


# -- one day's rollup from raw rows ---------------------------------------------------------


@dataclass(frozen=True)
class RunRow:
    id: int
    github_id: int
    run_attempt: int
    workflow_name: str
    branch: str
    status: str
    conclusion: str | None
    run_started_at: datetime | None
    updated_at: datetime | None
    created_at: datetime | None = None


@dataclass(frozen=True)
class JobRow:
    run_id: int
    run_attempt: int
    name: str
    status: str
    conclusion: str | None
    created_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    runner_group_name: str | None
    labels: Sequence[Any]


@dataclass
class RunAgg:
    attempts: int = 0
    success: int = 0
    failure: int = 0
    cancelled: int = 0
    skipped: int = 0
    runs: int = 0
    first_success: int = 0
    first_failure: int = 0
    final_success: int = 0
    final_failure: int = 0
    retried: int = 0
    retried_seconds: int = 0
    durations: Hist = field(default_factory=Counter)

    def add(self, other: RunAgg) -> None:
        for name in COUNT_FIELDS_RUN:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.durations.update(other.durations)


@dataclass
class JobAgg:
    executions: int = 0
    success: int = 0
    failure: int = 0
    cancelled: int = 0
    skipped: int = 0
    first_success: int = 0
    first_failure: int = 0
    final_success: int = 0
    final_failure: int = 0
    flaky_runs: int = 0
    durations: Hist = field(default_factory=Counter)

    def add(self, other: JobAgg) -> None:
        for name in COUNT_FIELDS_JOB:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.durations.update(other.durations)


@dataclass
class QueueAgg:
    jobs: int = 0
    waits: Hist = field(default_factory=Counter)

    def add(self, other: QueueAgg) -> None:
        self.jobs += other.jobs
        self.waits.update(other.waits)


COUNT_FIELDS_RUN = tuple(f for f in RunAgg.__dataclass_fields__ if f != "durations")
COUNT_FIELDS_JOB = tuple(f for f in JobAgg.__dataclass_fields__ if f != "durations")

RunKey = tuple[str, str]  # workflow name, branch
JobKey = tuple[str, str, str]  # workflow name, job name, branch
QueueKey = tuple[str, str]  # "label" | "group", value


@dataclass
class DayRollup:
    runs: dict[RunKey, RunAgg] = field(default_factory=dict)
    jobs: dict[JobKey, JobAgg] = field(default_factory=dict)
    queues: dict[QueueKey, QueueAgg] = field(default_factory=dict)


def with_all_branches(rollup: DayRollup) -> DayRollup:
    """The day's rollup plus rows summing branches: per workflow (and job), and the whole day."""
    runs: dict[RunKey, RunAgg] = {}
    for (wf, _br), run_agg in rollup.runs.items():
        runs.setdefault((wf, ALL_BRANCHES), RunAgg()).add(run_agg)
        runs.setdefault((ALL_WORKFLOWS, ALL_BRANCHES), RunAgg()).add(run_agg)
    jobs: dict[JobKey, JobAgg] = {}
    for (wf, job, _br), job_agg in rollup.jobs.items():
        jobs.setdefault((wf, job, ALL_BRANCHES), JobAgg()).add(job_agg)
    return DayRollup(
        runs={**rollup.runs, **runs}, jobs={**rollup.jobs, **jobs}, queues=rollup.queues
    )


def _count(agg: Any, kind: str | None) -> None:
    if kind is not None:
        setattr(agg, kind, getattr(agg, kind) + 1)


def _slot(table: dict[Any, Any], key: Any, make: Any) -> Any:
    found = table.get(key)
    if found is None:
        found = table[key] = make()
    return found


def rollup_day(runs: Iterable[RunRow], jobs: Iterable[JobRow], *, queues: bool = True) -> DayRollup:
    """Aggregate the attempts and jobs of the runs created on one day (queues optional)."""
    out = DayRollup()
    by_run: dict[int, list[RunRow]] = defaultdict(list)
    run_by_id: dict[int, RunRow] = {}
    for run in runs:
        by_run[run.github_id].append(run)
        run_by_id[run.id] = run
    for attempts in by_run.values():
        attempts.sort(key=lambda r: r.run_attempt)
        last = attempts[-1]
        agg = _slot(out.runs, (last.workflow_name, last.branch), RunAgg)
        agg.runs += 1
        for i, run in enumerate(attempts):
            kind = outcome(run.status, run.conclusion)
            if kind is not None:
                agg.attempts += 1
                _count(agg, kind)
            took = seconds(run.run_started_at, run.updated_at)
            if kind in ("success", "failure") and took is not None:
                agg.durations[bucket(took)] += 1
            if i < len(attempts) - 1 and run.status == "completed":
                agg.retried += 1
                agg.retried_seconds += took or 0
        first, final = (
            outcome(attempts[0].status, attempts[0].conclusion),
            outcome(last.status, last.conclusion),
        )
        if first in ("success", "failure"):
            _count(agg, f"first_{first}")
        if final in ("success", "failure"):
            _count(agg, f"final_{final}")

    executions: dict[tuple[int, str], list[tuple[int, JobRow]]] = defaultdict(list)
    for job in jobs:
        owner = run_by_id.get(job.run_id)
        if owner is None:
            continue
        executions[(owner.github_id, job.name)].append((job.run_attempt, job))
        if queues:
            _queue(out, job)
    for (github_id, name), rows in executions.items():
        rows.sort(key=lambda pair: pair[0])
        last_run = by_run[github_id][-1]
        agg_j = _slot(out.jobs, (last_run.workflow_name, name, last_run.branch), JobAgg)
        kinds = []
        for _attempt, job in rows:
            kind = outcome(job.status, job.conclusion)
            kinds.append(kind)
            if kind is None:
                continue
            agg_j.executions += 1
            _count(agg_j, kind)
            took = seconds(job.started_at, job.completed_at)
            if kind in ("success", "failure") and took is not None:
                agg_j.durations[bucket(took)] += 1
        if kinds[0] in ("success", "failure"):
            _count(agg_j, f"first_{kinds[0]}")
        if kinds[-1] in ("success", "failure"):
            _count(agg_j, f"final_{kinds[-1]}")
        if "failure" in kinds and "success" in kinds[kinds.index("failure") + 1 :]:
            agg_j.flaky_runs += 1
    return out


def split_hours(
    runs: Sequence[RunRow], jobs: Sequence[JobRow]
) -> dict[int, tuple[list[RunRow], list[JobRow]]]:
    """A day's rows per UTC hour of their run's ``created_at`` (each hour is self-contained)."""
    out: dict[int, tuple[list[RunRow], list[JobRow]]] = {}
    hour_of: dict[int, int] = {}
    for run in runs:
        hour = run.created_at.hour if run.created_at is not None else 0
        hour_of[run.id] = hour
        out.setdefault(hour, ([], []))[0].append(run)
    for job in jobs:
        owner = hour_of.get(job.run_id)
        if owner is not None:
            out[owner][1].append(job)
    return out


def _queue(out: DayRollup, job: JobRow) -> None:
    if job.conclusion == "skipped":
        return
    wait = seconds(job.created_at, job.started_at)
    if wait is None:
        return
    keys = [("label", str(label)[:255]) for label in dict.fromkeys(job.labels or [])]
    if job.runner_group_name:
        keys.append(("group", job.runner_group_name[:255]))
    for key in keys:
        agg = _slot(out.queues, key, QueueAgg)
        agg.jobs += 1
        agg.waits[bucket(wait)] += 1


# -- trends --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Trend:
    """A value against its baseline; ``direction`` is worded so "no data" is never "no change".

    direction: up | down | flat | too_few | no_data (nothing now) | no_baseline (nothing before)
    """

    value: float | None
    baseline: float | None
    samples: int
    baseline_samples: int
    change: float | None
    direction: str
    better: bool | None


def trend(
    value: float | None,
    baseline: float | None,
    *,
    samples: int,
    baseline_samples: int,
    higher_is_better: bool | None,
    relative: bool,
) -> Trend:
    """Compare a window with the previous one; a change on few samples is not a trend."""

    def make(direction: str, change: float | None = None, better: bool | None = None) -> Trend:
        return Trend(value, baseline, samples, baseline_samples, change, direction, better)

    if value is None or samples == 0:
        return make("no_data")
    if baseline is None or baseline_samples == 0:
        return make("no_baseline")
    diff = value - baseline
    change: float | None
    if relative:
        rel = diff / baseline if baseline else (math.inf if diff else 0.0)
        flat = abs(rel) < FLAT_RELATIVE
        change = round(100.0 * rel, 2) if math.isfinite(rel) else None
    else:
        flat = abs(diff) < FLAT_RATE_POINTS
        change = round(diff, 2)
    if min(samples, baseline_samples) < MIN_TREND_SAMPLES:
        return make("too_few", change)
    if flat:
        return make("flat", change)
    up = value > baseline
    better = None if higher_is_better is None else up == higher_is_better
    return make("up" if up else "down", change, better)


def duration_baselines(daily: Iterable[Hist]) -> tuple[float | None, int | None]:
    """Median of the daily p50s and worst of the daily p95s (days with samples only)."""
    p50s: list[int] = []
    p95s: list[int] = []
    for hist in daily:
        if sum(hist.values()):
            p50s.append(percentile(hist, 50) or 0)
            p95s.append(percentile(hist, 95) or 0)
    if not p50s:
        return None, None
    return float(statistics.median(p50s)), max(p95s)


def days_between(first: date, last: date) -> list[date]:
    return [date.fromordinal(d) for d in range(first.toordinal(), last.toordinal() + 1)]
