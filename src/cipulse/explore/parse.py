"""Pure functions behind the run page's graph: a workflow file's jobs and their ``needs``, the
GitHub job names they produce, and the stages (columns) of the graph.

GitHub names a job by its ``name:`` (or its key), adds ``(a, b)`` with the matrix values when
the name does not use them, and ``caller / callee`` for the jobs of a reusable workflow; a name
may be a template (``Test (python-${{ matrix.python-version }}, ${{ matrix.os }})``). Names are
matched back to job keys from those rules.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import yaml  # type: ignore[import-untyped]

EXPRESSION = re.compile(r"\$\{\{.*?\}\}", re.DOTALL)
MAX_FILE_BYTES = 512 * 1024  # GitHub's own limit for a workflow file is far below this


@dataclass(frozen=True)
class JobSpec:
    """One job of a workflow file: its key, display name (maybe a template) and needs."""

    key: str
    name: str
    needs: tuple[str, ...] = ()
    matrix: bool = False
    uses: str | None = None

    @property
    def templated(self) -> bool:
        return "${{" in self.name


@dataclass(frozen=True)
class WorkflowSpec:
    name: str | None
    jobs: tuple[JobSpec, ...]

    def by_key(self) -> dict[str, JobSpec]:
        return {job.key: job for job in self.jobs}


def _needs(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(str(item) for item in value if isinstance(item, str | int))
    return ()


def parse_workflow(text: str) -> WorkflowSpec | None:
    """The jobs of a workflow file; None when it is not YAML or has no ``jobs`` mapping."""
    if len(text.encode("utf-8", "replace")) > MAX_FILE_BYTES:
        return None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("jobs"), dict):
        return None
    jobs = []
    for key, body in data["jobs"].items():
        if not isinstance(body, dict):
            body = {}
        key = str(key)
        raw_name = body.get("name")
        strategy = body.get("strategy")
        matrix = isinstance(strategy, dict) and strategy.get("matrix") is not None
        uses = body.get("uses")
        jobs.append(
            JobSpec(
                key=key,
                name=str(raw_name) if isinstance(raw_name, str | int | float) else key,
                needs=_needs(body.get("needs")),
                matrix=matrix,
                uses=uses if isinstance(uses, str) else None,
            )
        )
    name = data.get("name")
    return WorkflowSpec(name=name if isinstance(name, str) else None, jobs=tuple(jobs))


def _name_pattern(spec: JobSpec) -> re.Pattern[str]:
    """The job names ``spec`` can produce: the name (templates filled by anything), matrix
    values in parentheses, then a called workflow's job after `` / ``."""
    pieces = EXPRESSION.split(spec.name.strip())
    base = ".+?".join(re.escape(piece) for piece in pieces)
    return re.compile(rf"{base}(?: \(.+\))?(?: / .+)?", re.DOTALL)


def match_jobs(names: Sequence[str], spec: WorkflowSpec) -> dict[str, str]:
    """Job name -> job key, for the names that come from ``spec``.

    An exact name wins; otherwise the most specific pattern (the longest literal name) does,
    so ``test`` does not swallow ``test-e2e (x)`` when a ``test-e2e`` job exists.
    """
    exact = {job.name.strip(): job.key for job in spec.jobs if not job.templated}
    patterns = sorted(
        ((len(EXPRESSION.sub("", job.name)), _name_pattern(job), job.key) for job in spec.jobs),
        key=lambda item: -item[0],
    )
    found: dict[str, str] = {}
    for name in names:
        if name in exact:
            found[name] = exact[name]
            continue
        for _weight, pattern, key in patterns:
            if pattern.fullmatch(name):
                found[name] = key
                break
    return found


def depths(spec: WorkflowSpec) -> dict[str, int]:
    """Each job's stage: 0 without needs, else one more than the deepest job it needs.

    Needs naming no job of the file are ignored; a cycle (GitHub refuses those) cannot loop.
    """
    jobs = spec.by_key()
    memo: dict[str, int] = {}

    def depth(key: str, seen: frozenset[str]) -> int:
        if key in memo:
            return memo[key]
        needs = [n for n in jobs[key].needs if n in jobs and n not in seen]
        value = 1 + max((depth(n, seen | {key}) for n in needs), default=-1)
        memo[key] = value
        return value

    for key in jobs:
        depth(key, frozenset())
    return memo


class Timed(Protocol):
    @property
    def started_at(self) -> datetime | None: ...

    @property
    def completed_at(self) -> datetime | None: ...


def waves_by_time(jobs: Sequence[Timed]) -> list[int]:
    """Without a workflow file: a stage per wave of jobs, by start time.

    A job joins the current wave when it started before any job of that wave finished (they
    ran side by side); otherwise it starts the next wave, as a job that needed them would.
    Jobs that never started form a last wave. Returns the stage of each job, in given order.
    """
    started = sorted(
        (i for i, job in enumerate(jobs) if job.started_at is not None),
        key=lambda i: (jobs[i].started_at, i),
    )
    stage_of = [0] * len(jobs)
    stage = -1
    wave_end: datetime | None = None  # the first finish in the current wave
    running = False  # a job of the current wave has not finished
    for index in started:
        job = jobs[index]
        start = job.started_at
        assert start is not None
        joins = stage >= 0 and (running or wave_end is None or start < wave_end)
        if not joins:
            stage += 1
            wave_end, running = None, False
        if job.completed_at is None:
            running = True
        elif wave_end is None or job.completed_at < wave_end:
            wave_end = job.completed_at
        stage_of[index] = stage
    for index, job in enumerate(jobs):
        if job.started_at is None:
            stage_of[index] = stage + 1
    return stage_of
