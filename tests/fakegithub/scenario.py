"""What the fake GitHub holds: repositories, workflows, runs with their attempts, jobs, steps and
artifacts, plus the mutators tests use while the server runs and the reference job counts.

Plain data, no HTTP. All times are timezone-aware UTC ``datetime`` values. Every mutator takes
``Scenario.lock``; a test that edits objects directly while a server runs should hold it too.

Attempts and jobs
-----------------
A run has one or more ``Attempt`` objects. Each attempt keeps its own status, conclusion,
``run_started_at``, ``updated_at`` and the jobs that *executed* in it (``Attempt.jobs``, every one
with ``run_attempt == attempt.number`` and its own id). The run's ``run_attempt``, ``status``,
``conclusion``, ``run_started_at`` and ``updated_at`` are read from the latest attempt.

``rerun(run_id, failed_only=True)`` mirrors GitHub's "Re-run failed jobs": attempt n+1 gets new job
records only for the jobs whose latest execution did not end in success, neutral or skipped; the
others are *carried over*: they keep their id and ``run_attempt`` and still appear in the run's
``filter=latest`` job list. ``failed_only=False`` ("Re-run all jobs") re-creates every job.
(GitHub re-runs the dependents of a failed job too; the fake has no job dependencies.)
"""

from __future__ import annotations

import hashlib
import io
import random
import threading
import zipfile
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypedDict

SUCCESS_CONCLUSIONS = frozenset({"success", "neutral"})
FAILURE_CONCLUSIONS = frozenset({"failure", "timed_out", "startup_failure"})
# cancelled, skipped, action_required and stale are not counted at all.
NOT_RERUN = frozenset({"success", "neutral", "skipped"})

WORKFLOW_CREATED_AT = datetime(2024, 1, 8, 23, 48, 37, tzinfo=UTC)

JobSpec = str | tuple[str, str | None]
"""A job for ``add_run``: a name (success when the run is completed, else pending), or
``(name, conclusion)`` where a ``None`` conclusion means not finished yet."""


@dataclass
class Repo:
    id: int
    owner: str
    name: str
    default_branch: str = "main"

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


@dataclass
class Workflow:
    id: int
    repo_id: int
    name: str
    path: str
    state: str = "active"
    created_at: datetime = WORKFLOW_CREATED_AT
    updated_at: datetime = WORKFLOW_CREATED_AT


@dataclass
class Step:
    number: int
    name: str
    status: str
    conclusion: str | None
    started_at: datetime | None
    completed_at: datetime | None


@dataclass
class Job:
    id: int
    run_id: int
    run_attempt: int
    name: str
    status: str
    conclusion: str | None
    created_at: datetime
    started_at: datetime  # GitHub never sends null here; a queued job has its creation time
    completed_at: datetime | None
    runner_name: str | None
    runner_group_name: str | None
    labels: list[str]
    steps: list[Step]
    runner_id: int | None = None
    runner_group_id: int | None = None
    step_names: list[str] = field(default_factory=list)  # the plan; ``steps`` once started


@dataclass
class Attempt:
    number: int
    status: str
    conclusion: str | None
    run_started_at: datetime
    updated_at: datetime
    jobs: list[Job] = field(default_factory=list)  # executed in this attempt
    latest_job_ids: list[int] = field(default_factory=list)  # carried-over + own, in order
    triggering_actor: str = "octocat"


@dataclass
class Run:
    id: int
    repo_id: int
    workflow_id: int
    name: str
    head_branch: str
    head_sha: str
    event: str
    run_number: int
    created_at: datetime
    actor_login: str
    attempts: list[Attempt]
    display_title: str = ""

    @property
    def latest(self) -> Attempt:
        return self.attempts[-1]

    @property
    def run_attempt(self) -> int:
        return self.latest.number

    @property
    def status(self) -> str:
        return self.latest.status

    @property
    def conclusion(self) -> str | None:
        return self.latest.conclusion

    @property
    def run_started_at(self) -> datetime:
        return self.latest.run_started_at

    @property
    def updated_at(self) -> datetime:
        return self.latest.updated_at

    def attempt(self, number: int) -> Attempt | None:
        if 1 <= number <= len(self.attempts):
            return self.attempts[number - 1]
        return None

    def all_jobs(self) -> list[Job]:
        """Every job record of every attempt (``filter=all``)."""
        return [job for attempt in self.attempts for job in attempt.jobs]

    def latest_jobs(self) -> list[Job]:
        """The most recent execution of each job (``filter=latest``)."""
        by_id = {job.id: job for job in self.all_jobs()}
        return [by_id[job_id] for job_id in self.latest.latest_job_ids]


@dataclass
class Artifact:
    id: int
    run_id: int
    name: str
    size_in_bytes: int
    expired: bool
    zip_bytes: bytes
    created_at: datetime | None = None


@dataclass
class Installation:
    """A GitHub App installation: the account (user or organisation) and the repositories it
    gives the App (``repository_selection: selected``)."""

    id: int
    account_login: str
    account_type: str = "Organization"
    repo_ids: list[int] = field(default_factory=list)
    suspended_at: datetime | None = None
    created_at: datetime = WORKFLOW_CREATED_AT


class JobStats(TypedDict):
    totalRuns: int
    failures: int
    successes: int


def stable_hash(text: str) -> int:
    """A hash of a string that does not change between processes (unlike ``hash``)."""
    return zlib.crc32(text.encode())


def _step_names(job_name: str) -> list[str]:
    """3 to 6 steps, always the same for the same job name."""
    middle = [
        "Run actions/checkout@v4",
        "Set up Python",
        "Install dependencies",
        "Run tests",
    ]
    count = 1 + stable_hash(job_name) % 4  # 1..4 middle steps
    return ["Set up job", *middle[-count:], "Complete job"]


def _labels(job_name: str) -> list[str]:
    if "macos" in job_name:
        return ["macos-latest"]
    if "windows" in job_name:
        return ["windows-latest"]
    if any(word in job_name for word in ("integration", "benchmark", "ビルド")):
        return ["self-hosted", "linux", "x64"]
    return ["ubuntu-latest"]


def make_zip(files: Mapping[str, str], when: datetime) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            info = zipfile.ZipInfo(name, date_time=when.timetuple()[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, text)
    return buffer.getvalue()


class Scenario:
    """Everything the fake GitHub serves. ``now`` is the scenario clock (fixed, UTC)."""

    def __init__(self, *, now: datetime | None = None) -> None:
        self.now = now or datetime.now(UTC).replace(microsecond=0)
        self.lock = threading.RLock()
        self.repos: dict[int, Repo] = {}
        self.workflows: dict[int, Workflow] = {}
        self.runs: dict[int, Run] = {}
        self.jobs: dict[int, Job] = {}
        self.artifacts: dict[int, Artifact] = {}
        self.installations: dict[int, Installation] = {}
        self._next_installation_id = 57_463_101
        self._next_repo_id = 540_180_744
        self._next_workflow_id = 35_593_280
        self._next_run_id = 3_109_327_341  # past 2**31, as real run ids are
        self._next_job_id = 8_652_030_778  # past 2**32, as real job ids are
        self._next_artifact_id = 362_518_594

    # ----------------------------------------------------------------------------------------
    # lookups

    def repo(self, repo_id: int) -> Repo | None:
        return self.repos.get(repo_id)

    def repo_named(self, full_name: str) -> Repo | None:
        """Case-insensitive, as GitHub is."""
        wanted = full_name.lower()
        return next((r for r in self.repos.values() if r.full_name.lower() == wanted), None)

    def workflows_of(self, repo_id: int) -> list[Workflow]:
        return sorted((w for w in self.workflows.values() if w.repo_id == repo_id), key=_by_id)

    def runs_of(self, repo_id: int) -> list[Run]:
        """Newest ``created_at`` first (the order of GitHub's listing)."""
        runs = [r for r in self.runs.values() if r.repo_id == repo_id]
        return sorted(runs, key=lambda r: (r.created_at, r.id), reverse=True)

    def run(self, run_id: int) -> Run | None:
        return self.runs.get(run_id)

    def job(self, job_id: int) -> Job | None:
        return self.jobs.get(job_id)

    def artifact(self, artifact_id: int) -> Artifact | None:
        return self.artifacts.get(artifact_id)

    def artifacts_of(self, run_id: int) -> list[Artifact]:
        return sorted((a for a in self.artifacts.values() if a.run_id == run_id), key=_by_id)

    def installation(self, installation_id: int) -> Installation | None:
        return self.installations.get(installation_id)

    def installations_of(self, repo_id: int) -> list[Installation]:
        return [i for i in self.installations.values() if repo_id in i.repo_ids]

    def tick(self, seconds: float = 1.0) -> datetime:
        """Advance the scenario clock and return the new time (default time of mutators)."""
        with self.lock:
            self.now += timedelta(seconds=seconds)
            return self.now

    # ----------------------------------------------------------------------------------------
    # mutators

    def add_repo(
        self, full_name: str, *, id: int | None = None, default_branch: str = "main"
    ) -> Repo:
        owner, name = full_name.split("/", 1)
        with self.lock:
            repo_id = id if id is not None else self._take("repo")
            repo = Repo(id=repo_id, owner=owner, name=name, default_branch=default_branch)
            self.repos[repo.id] = repo
            return repo

    def add_installation(
        self,
        account: str,
        *,
        repos: Sequence[Repo | int | str] = (),
        account_type: str = "Organization",
        id: int | None = None,
    ) -> Installation:
        """The App installed on ``account`` for ``repos`` (objects, ids or full names)."""
        with self.lock:
            ids = []
            for item in repos:
                repo = item if isinstance(item, Repo) else None
                if isinstance(item, int):
                    repo = self.repos[item]
                elif isinstance(item, str):
                    repo = self.repo_named(item)
                if repo is None:
                    raise KeyError(f"no repository {item!r}")
                ids.append(repo.id)
            installation = Installation(
                id=id if id is not None else self._take("installation"),
                account_login=account,
                account_type=account_type,
                repo_ids=ids,
            )
            self.installations[installation.id] = installation
            return installation

    def add_workflow(
        self,
        repo: Repo | int,
        name: str,
        *,
        path: str | None = None,
        state: str = "active",
        id: int | None = None,
    ) -> Workflow:
        repo_id = repo.id if isinstance(repo, Repo) else repo
        if path is None:
            slug = "".join(c if c.isascii() and c.isalnum() else "-" for c in name.lower())
            path = f".github/workflows/{slug.strip('-') or 'workflow'}.yml"
        with self.lock:
            workflow = Workflow(
                id=id if id is not None else self._take("workflow"),
                repo_id=repo_id,
                name=name,
                path=path,
                state=state,
            )
            self.workflows[workflow.id] = workflow
            return workflow

    def add_run(
        self,
        workflow: Workflow | int,
        *,
        jobs: Sequence[JobSpec] = (),
        head_branch: str | None = None,
        head_sha: str | None = None,
        event: str = "push",
        status: str = "completed",
        conclusion: str | None = None,
        created_at: datetime | None = None,
        actor_login: str = "octocat",
        display_title: str | None = None,
        run_number: int | None = None,
        id: int | None = None,
    ) -> Run:
        """A run with one attempt and its jobs.

        ``status`` is ``queued``, ``in_progress`` or ``completed``. For a completed run without a
        ``conclusion``, it is derived from the jobs (failure if a job failed or timed out,
        cancelled if one was cancelled, else success). Jobs are created 2 s apart, start 5 s after
        creation and take 60 s; the run's ``updated_at`` follows its last job.
        """
        with self.lock:
            wf = workflow if isinstance(workflow, Workflow) else self.workflows[workflow]
            repo = self.repos[wf.repo_id]
            created = created_at or self.tick()
            number = run_number or 1 + sum(1 for r in self.runs.values() if r.workflow_id == wf.id)
            sha = head_sha or hashlib.sha256(f"{wf.id}:{number}".encode()).hexdigest()[:40]
            run = Run(
                id=id if id is not None else self._take("run"),
                repo_id=repo.id,
                workflow_id=wf.id,
                name=wf.name,
                head_branch=head_branch or repo.default_branch,
                head_sha=sha,
                event=event,
                run_number=number,
                created_at=created,
                actor_login=actor_login,
                attempts=[],
                display_title=display_title or f"Run {wf.name} #{number}",
            )
            attempt = Attempt(
                number=1,
                status="queued",
                conclusion=None,
                run_started_at=created,
                updated_at=created,
                triggering_actor=actor_login,
            )
            run.attempts.append(attempt)
            self.runs[run.id] = run
            last = created
            for index, spec in enumerate(jobs):
                name, job_conclusion = (spec, None) if isinstance(spec, str) else spec
                if isinstance(spec, str) and status == "completed":
                    job_conclusion = "success"
                job = self._new_job(run, attempt, name, created + timedelta(seconds=2 * index))
                if status == "queued" and job_conclusion is None:
                    continue
                self._start_job(job, job.created_at + timedelta(seconds=5))
                if job_conclusion is not None:
                    self._complete_job(job, job_conclusion, job.started_at + timedelta(seconds=60))
                    last = max(last, job.completed_at or last)
            if status != "queued":
                attempt.status = "in_progress"
            if status == "completed":
                if conclusion is None:
                    conclusion = conclusion_from_jobs(attempt.jobs)
                self._finish_attempt(attempt, conclusion, last + timedelta(seconds=1))
            else:
                attempt.updated_at = last
            self.now = max(self.now, attempt.updated_at)  # later mutations happen after this
            return run

    def rerun(
        self, run_id: int, *, failed_only: bool = True, at: datetime | None = None
    ) -> Attempt:
        """Add attempt n+1 (queued). See the module docstring for which jobs are re-created."""
        with self.lock:
            run = self.runs[run_id]
            previous = run.latest
            if previous.status != "completed":
                raise ValueError(f"run {run_id} is {previous.status}; only a completed run re-runs")
            when = at or self.tick()
            latest = run.latest_jobs()
            if failed_only:
                to_rerun = [job for job in latest if job.conclusion not in NOT_RERUN]
                if not to_rerun and latest:
                    raise ValueError(f"run {run_id} has no failed job to re-run")
            else:
                to_rerun = latest
            attempt = Attempt(
                number=previous.number + 1,
                status="queued",
                conclusion=None,
                run_started_at=when,
                updated_at=when,
                triggering_actor=run.actor_login,
            )
            run.attempts.append(attempt)
            rerun_ids = {job.id for job in to_rerun}
            for index, job in enumerate(latest):
                if job.id in rerun_ids:
                    self._new_job(run, attempt, job.name, when + timedelta(seconds=index))
                else:
                    attempt.latest_job_ids.append(job.id)
            return attempt

    def start_run(self, run_id: int, *, at: datetime | None = None) -> Run:
        """Latest attempt queued -> in_progress; its queued jobs start on a runner."""
        with self.lock:
            run = self.runs[run_id]
            attempt = run.latest
            if attempt.status == "completed":
                raise ValueError(f"run {run_id} is already completed")
            when = at or self.tick()
            attempt.status = "in_progress"
            for job in attempt.jobs:
                if job.status == "queued":
                    self._start_job(job, when)
            attempt.updated_at = when
            return run

    def complete_run(
        self,
        run_id: int,
        conclusion: str,
        *,
        job_conclusions: Mapping[str, str] | None = None,
        at: datetime | None = None,
    ) -> Run:
        """Finish the latest attempt: every unfinished job of it gets
        ``job_conclusions.get(job.name, conclusion)``; jobs already completed keep theirs."""
        with self.lock:
            run = self.runs[run_id]
            attempt = run.latest
            if attempt.status == "completed":
                raise ValueError(f"run {run_id} is already completed")
            when = at or self.tick()
            for job in attempt.jobs:
                if job.status == "queued":
                    self._start_job(job, when)
                if job.status != "completed":
                    wanted = (job_conclusions or {}).get(job.name, conclusion)
                    self._complete_job(job, wanted, when)
            self._finish_attempt(attempt, conclusion, when)
            return run

    def add_artifact(
        self,
        run_id: int,
        name: str,
        *,
        zip_bytes: bytes | None = None,
        expired: bool = False,
        id: int | None = None,
    ) -> Artifact:
        with self.lock:
            run = self.runs[run_id]
            when = run.updated_at
            data = zip_bytes if zip_bytes is not None else make_zip({f"{name}.txt": name}, when)
            artifact = Artifact(
                id=id if id is not None else self._take("artifact"),
                run_id=run_id,
                name=name,
                size_in_bytes=len(data),
                expired=expired,
                zip_bytes=data,
                created_at=when,
            )
            self.artifacts[artifact.id] = artifact
            return artifact

    def expire_artifact(self, artifact_id: int) -> None:
        with self.lock:
            self.artifacts[artifact_id].expired = True

    # ----------------------------------------------------------------------------------------
    # building blocks (callers hold the lock)

    def _take(self, kind: str) -> int:
        attr = f"_next_{kind}_id"
        value: int = getattr(self, attr)
        existing: Mapping[int, object] = getattr(self, f"{kind}s")
        while value in existing:
            value += 1
        setattr(self, attr, value + 1)
        return value

    def _new_job(self, run: Run, attempt: Attempt, name: str, created_at: datetime) -> Job:
        job = Job(
            id=self._take("job"),
            run_id=run.id,
            run_attempt=attempt.number,
            name=name,
            status="queued",
            conclusion=None,
            created_at=created_at,
            started_at=created_at,
            completed_at=None,
            runner_name=None,
            runner_group_name=None,
            labels=_labels(name),
            steps=[],
            step_names=_step_names(name),
        )
        attempt.jobs.append(job)
        attempt.latest_job_ids.append(job.id)
        self.jobs[job.id] = job
        return job

    @staticmethod
    def _start_job(job: Job, at: datetime) -> None:
        job.status = "in_progress"
        job.started_at = at
        if "self-hosted" in job.labels:
            number = job.id % 5 + 1
            job.runner_name, job.runner_id = f"runner-{number:02d}", 100 + number
            job.runner_group_name, job.runner_group_id = "Default", 1
        else:
            number = job.id % 20 + 1
            job.runner_name, job.runner_id = f"GitHub Actions {number}", number
            job.runner_group_name, job.runner_group_id = "GitHub Actions", 2
        job.steps = [
            Step(
                number=i,
                name=step,
                status="in_progress" if i == 1 else "queued",
                conclusion=None,
                started_at=at if i == 1 else None,
                completed_at=None,
            )
            for i, step in enumerate(job.step_names, start=1)
        ]

    @staticmethod
    def _complete_job(job: Job, conclusion: str, at: datetime) -> None:
        job.status = "completed"
        job.conclusion = conclusion
        job.completed_at = max(at, job.started_at)
        if conclusion == "skipped":  # as in real data: no steps, no runner, started == completed
            job.started_at = job.completed_at
            job.steps = []
            job.runner_name = job.runner_group_name = None
            job.runner_id = job.runner_group_id = None
            return
        names = job.step_names
        span = (job.completed_at - job.started_at) / len(names)
        failing = len(names) - 2  # the step before "Complete job"
        steps = []
        for index, name in enumerate(names):
            step_conclusion = "success"
            if conclusion not in SUCCESS_CONCLUSIONS:
                if index == failing:
                    step_conclusion = conclusion
                elif failing < index < len(names) - 1:
                    step_conclusion = "skipped"
            steps.append(
                Step(
                    number=index + 1,
                    name=name,
                    status="completed",
                    conclusion=step_conclusion,
                    started_at=job.started_at + span * index,
                    completed_at=job.started_at + span * (index + 1),
                )
            )
        job.steps = steps

    @staticmethod
    def _finish_attempt(attempt: Attempt, conclusion: str, at: datetime) -> None:
        attempt.status = "completed"
        attempt.conclusion = conclusion
        attempt.updated_at = max(at, attempt.run_started_at)

    # ----------------------------------------------------------------------------------------
    # generated history

    @classmethod
    def generate(
        cls,
        seed: int,
        *,
        repo: str = "octo-org/hello-world",
        runs: int = 200,
        jobs_per_run: int = 8,
        days: int = 30,
        now: datetime | None = None,
        branches: Sequence[str] = ("main", "main", "main", "dev", "feature/x"),
        failure_rate: float = 0.15,
        rerun_rate: float = 0.1,
        in_progress: int = 3,
        unicode: bool = True,
    ) -> Scenario:
        """A deterministic history of ``runs`` runs over the last ``days`` days of one repo.

        The same arguments (and the same ``now``) give the same scenario. ``failure_rate`` is the
        share of completed runs whose *first attempt* does not succeed; ``rerun_rate`` the share
        of all runs that were re-run, taken from those (so at most ``failure_rate``); most
        re-runs pass, which makes the job that failed flaky. More than 8 ``jobs_per_run`` adds
        ``shard (i/n)`` jobs. The newest
        ``in_progress`` runs are still queued or running. Runs that fail at start-up or wait for
        approval (``startup_failure``, ``action_required``) have no jobs, as on GitHub.
        """
        from tests.fakegithub.history import History  # here: history imports this module

        scenario = cls(now=now)
        History(scenario, random.Random(seed)).build(
            repo=repo,
            runs=runs,
            jobs_per_run=jobs_per_run,
            days=days,
            branches=branches,
            failure_rate=failure_rate,
            rerun_rate=rerun_rate,
            in_progress=in_progress,
            unicode=unicode,
        )
        return scenario


def _by_id(item: Workflow | Artifact) -> int:
    return item.id


def conclusion_from_jobs(jobs: Sequence[Job]) -> str:
    conclusions = {job.conclusion for job in jobs}
    if conclusions & {"failure", "timed_out", "startup_failure"}:
        return "failure"
    if "cancelled" in conclusions:
        return "cancelled"
    return "success"


def iter_jobs(scenario: Scenario, repo_id: int) -> Iterator[tuple[Run, Job]]:
    """Every job record of every run of a repo, oldest run first."""
    for run in reversed(scenario.runs_of(repo_id)):
        for job in run.all_jobs():
            yield run, job


def expected_job_stats(
    scenario: Scenario,
    repo_full_name: str,
    branch: str | None = None,
    since: datetime | None = None,
) -> dict[str, JobStats]:
    """Reference per-job-name counts, the numbers a correct sync must reproduce.

    Runs are chosen by branch (``head_branch``) and by ``created_at >= since``. Every attempt's
    jobs count: a job that failed in attempt 1 and passed in attempt 2 is one failure and one
    success. Only completed jobs count; success and neutral are successes; failure, timed_out and
    startup_failure are failures; cancelled, skipped, action_required and stale are not counted.
    """
    with scenario.lock:
        repo = scenario.repo_named(repo_full_name)
        if repo is None:
            raise KeyError(repo_full_name)
        stats: dict[str, JobStats] = {}
        for run, job in iter_jobs(scenario, repo.id):
            if branch is not None and run.head_branch != branch:
                continue
            if since is not None and run.created_at < since:
                continue
            if job.status != "completed":
                continue
            if job.conclusion in SUCCESS_CONCLUSIONS:
                is_failure = False
            elif job.conclusion in FAILURE_CONCLUSIONS:
                is_failure = True
            else:
                continue
            entry = stats.setdefault(job.name, {"totalRuns": 0, "failures": 0, "successes": 0})
            entry["totalRuns"] += 1
            if is_failure:
                entry["failures"] += 1
            else:
                entry["successes"] += 1
        return stats
