"""The history behind ``Scenario.generate``: workflows, runs, jobs, re-runs and artifacts drawn
from one seeded ``random.Random``, so the same seed and ``now`` give the same scenario."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta

from tests.fakegithub.scenario import (
    NOT_RERUN,
    Attempt,
    Job,
    Run,
    Scenario,
    Workflow,
    conclusion_from_jobs,
    make_zip,
    stable_hash,
)

# Job names per workflow; ``jobs_per_run`` takes the first n (more: numbered shards).
CI_JOBS = [
    "lint",
    "test (ubuntu-latest, 3.11)",
    "test (ubuntu-latest, 3.12)",
    "test (macos-latest, 3.12)",
    "test (windows-latest, 3.12)",
    "build / compile",
    "Тесты 🚀",
    "deploy",
    "integration / e2e",
    "docs",
]
NIGHTLY_JOBS = [
    "ビルド",
    "benchmark",
    "fuzz",
    "test (ubuntu-latest, 3.13)",
    "test (ubuntu-latest, 3.14-dev)",
    "sanitizers / asan",
    "sanitizers / ubsan",
    "report",
]
RELEASE_JOBS = [
    "package (linux)",
    "package (macos)",
    "package (windows)",
    "sign",
    "sbom",
    "publish / pypi",
    "publish / github",
    "announce",
]
ASCII_NAMES = {"Тесты 🚀": "tests-ru", "ビルド": "build-nightly"}
FLAKY_WEIGHT = {"test (windows-latest, 3.12)": 4, "integration / e2e": 4, "Тесты 🚀": 3}


class History:
    """Builds ``Scenario.generate``'s history; every random choice comes from ``rng``."""

    def __init__(self, scenario: Scenario, rng: random.Random) -> None:
        self.s = scenario
        self.rng = rng
        self.run_numbers: dict[int, int] = {}

    def build(
        self,
        *,
        repo: str,
        runs: int,
        jobs_per_run: int,
        days: int,
        branches: Sequence[str],
        failure_rate: float,
        rerun_rate: float,
        in_progress: int,
        unicode: bool,
    ) -> None:
        rng, s = self.rng, self.s
        the_repo = s.add_repo(repo, id=500_000_000 + rng.randrange(100_000_000))
        ci = s.add_workflow(the_repo, "CI", path=".github/workflows/ci.yml")
        nightly = s.add_workflow(the_repo, "Nightly", path=".github/workflows/nightly.yml")
        release = s.add_workflow(the_repo, "Release", path=".github/workflows/release.yml")
        pools = {ci.id: CI_JOBS, nightly.id: NIGHTLY_JOBS, release.id: RELEASE_JOBS}
        if not unicode:
            pools = {k: [ASCII_NAMES.get(n, n) for n in v] for k, v in pools.items()}
        window = max(days * 86_400 - 60, 3_601)
        # Completed runs are at least an hour old, so every job of theirs ended before ``now``.
        ages = sorted((rng.uniform(3_600, window) for _ in range(runs)), reverse=True)
        pending = min(in_progress, runs)
        rerun_chance = min(1.0, rerun_rate / failure_rate) if failure_rate > 0 else 0.0
        for index, age in enumerate(ages):
            newest_rank = runs - index  # 1 for the newest run
            if newest_rank <= pending:
                age = 90.0 * newest_rank  # the running ones started minutes ago
            created = s.now - timedelta(seconds=round(age))
            roll = rng.random()
            wf = ci if roll < 0.8 else nightly if roll < 0.93 else release
            branch = rng.choice(list(branches)) if wf is ci else the_repo.default_branch
            event = {ci.id: "push", nightly.id: "schedule", release.id: "workflow_dispatch"}
            run_event = event[wf.id]
            if wf is ci and branch != the_repo.default_branch:
                run_event = "pull_request"
            names = _job_names(pools[wf.id], jobs_per_run)
            if newest_rank <= pending:
                self._pending_run(wf, branch, run_event, created, names, queued=newest_rank == 1)
                continue
            run = self._completed_run(wf, branch, run_event, created, names, failure_rate)
            if (
                run.conclusion in ("failure", "cancelled")
                and run.all_jobs()
                and rng.random() < rerun_chance
            ):
                self._reruns(run)
            if wf is ci and run.all_jobs():
                self._artifacts(run)

    def _new_run(
        self, wf: Workflow, branch: str, event: str, created: datetime, status: str
    ) -> tuple[Run, Attempt]:
        rng, s = self.rng, self.s
        self.run_numbers[wf.id] = number = self.run_numbers.get(wf.id, 0) + 1
        actor = rng.choice(["octocat", "monalisa", "hubot", "dependabot[bot]"])
        run = Run(
            id=s._take("run"),
            repo_id=wf.repo_id,
            workflow_id=wf.id,
            name=wf.name,
            head_branch=branch,
            head_sha=f"{rng.getrandbits(160):040x}",
            event=event,
            run_number=number,
            created_at=created,
            actor_login=actor,
            attempts=[],
            display_title=rng.choice(
                ["Fix flaky test", "Bump deps", "Update README.md", "Add feature", "Refactor"]
            ),
        )
        attempt = Attempt(1, status, None, created, created, triggering_actor=actor)
        run.attempts.append(attempt)
        s.runs[run.id] = run
        return run, attempt

    def _timed_job(self, run: Run, attempt: Attempt, name: str, start: datetime) -> Job:
        """A job created at ``start`` and started after a short queue wait."""
        job = self.s._new_job(run, attempt, name, start + timedelta(seconds=self.rng.randint(0, 3)))
        wait = self.rng.randint(2, 150 if "self-hosted" in job.labels else 40)
        self.s._start_job(job, job.created_at + timedelta(seconds=wait))
        return job

    def _duration(self, name: str) -> timedelta:
        base = 40 + stable_hash(name) % 600
        return timedelta(seconds=round(base * self.rng.uniform(0.6, 1.6)))

    def _pending_run(
        self,
        wf: Workflow,
        branch: str,
        event: str,
        created: datetime,
        names: list[str],
        *,
        queued: bool,
    ) -> None:
        run, attempt = self._new_run(
            wf, branch, event, created, "queued" if queued else "in_progress"
        )
        for index, name in enumerate(names):
            if queued:
                self.s._new_job(run, attempt, name, created + timedelta(seconds=1))
                continue
            job = self._timed_job(run, attempt, name, created)
            if index < len(names) // 3:  # a few jobs already done, the rest still running
                done = min(job.started_at + timedelta(seconds=30), self.s.now)
                self.s._complete_job(job, "success", done)
        attempt.updated_at = max([created] + [j.started_at for j in attempt.jobs])

    def _completed_run(
        self,
        wf: Workflow,
        branch: str,
        event: str,
        created: datetime,
        names: list[str],
        failure_rate: float,
    ) -> Run:
        rng = self.rng
        run, attempt = self._new_run(wf, branch, event, created, "in_progress")
        kind = "success"
        if rng.random() < failure_rate:
            kind = rng.choices(
                ["failure", "timed_out", "cancelled", "startup_failure", "action_required"],
                weights=[70, 8, 10, 6, 6],
            )[0]
        if kind in ("startup_failure", "action_required"):  # no job ever starts
            self.s._finish_attempt(attempt, kind, created + timedelta(seconds=rng.randint(1, 5)))
            return run
        outcome = self._outcomes(names, kind, branch == self.s.repos[run.repo_id].default_branch)
        last = created
        for name in names:
            job = self._timed_job(run, attempt, name, created)
            self.s._complete_job(job, outcome[name], job.started_at + self._duration(name))
            last = max(last, job.completed_at or last)
        self.s._finish_attempt(
            attempt, conclusion_from_jobs(attempt.jobs), last + timedelta(seconds=2)
        )
        return run

    def _outcomes(self, names: list[str], kind: str, on_default_branch: bool) -> dict[str, str]:
        """The conclusion of each job of a first attempt of the given kind."""
        rng = self.rng
        outcome = dict.fromkeys(names, "success")
        candidates = [n for n in names if n != "deploy"]
        weights = [FLAKY_WEIGHT.get(n, 1) for n in candidates]
        if kind == "success" and rng.random() < 0.05:
            outcome[rng.choice(candidates)] = "neutral"
        elif kind == "failure":
            for name in set(rng.choices(candidates, weights=weights, k=rng.choice([1, 1, 2]))):
                outcome[name] = "timed_out" if rng.random() < 0.1 else "failure"
        elif kind == "timed_out":
            outcome[rng.choices(candidates, weights=weights)[0]] = "timed_out"
        elif kind == "cancelled":
            for name in rng.sample(candidates, k=min(len(candidates), rng.randint(1, 3))):
                outcome[name] = "cancelled"
        if "deploy" in outcome and (kind != "success" or not on_default_branch):
            outcome["deploy"] = "cancelled" if kind == "cancelled" else "skipped"
        return outcome

    def _reruns(self, run: Run) -> None:
        """Attempt 2 (and sometimes 3): mostly green again, which is what makes a job flaky."""
        rng, s = self.rng, self.s
        for _ in range(2):
            start = run.updated_at + timedelta(minutes=rng.randint(2, 60))
            if start + timedelta(hours=1) > s.now:
                return  # would still be running now; keep the history simple
            attempt = s.rerun(run.id, failed_only=rng.random() < 0.7, at=start)
            attempt.status = "in_progress"
            green = rng.random() < 0.75
            last = start
            for job in attempt.jobs:
                s._start_job(job, start + timedelta(seconds=rng.randint(2, 40)))
                previous = _previous_conclusion(run, job)
                if previous in NOT_RERUN:
                    conclusion = previous or "success"
                else:
                    conclusion = "success" if green else "failure"
                s._complete_job(job, conclusion, job.started_at + self._duration(job.name))
                last = max(last, job.completed_at or last)
            s._finish_attempt(attempt, conclusion_from_jobs(run.latest_jobs()), last)
            if green or rng.random() < 0.5:
                return

    def _artifacts(self, run: Run) -> None:
        rng, s = self.rng, self.s
        when = run.updated_at
        cases = "".join(
            f'  <testcase classname="{j.name}" name="test_ok"/>\n' for j in run.all_jobs()
        )
        junit = (
            f'<?xml version="1.0" encoding="utf-8"?>\n<testsuite name="ci">\n{cases}</testsuite>\n'
        )
        s.add_artifact(
            run.id,
            "test-results",
            zip_bytes=make_zip({"junit.xml": junit}, when),
            expired=rng.random() < 0.05,
        )
        if rng.random() < 0.3:
            text = f"coverage of {run.head_sha}: {rng.randint(60, 99)}%\n"
            s.add_artifact(
                run.id, "coverage-report", zip_bytes=make_zip({"coverage.txt": text}, when)
            )


def _previous_conclusion(run: Run, job: Job) -> str | None:
    for attempt in reversed(run.attempts[: job.run_attempt - 1]):
        for earlier in attempt.jobs:
            if earlier.name == job.name:
                return earlier.conclusion
    return None


def _job_names(pool: Sequence[str], count: int) -> list[str]:
    names = list(pool[:count])
    for shard in range(1, count - len(names) + 1):
        names.append(f"shard ({shard}/{count - len(pool)})")
    return names
