"""Serve the tests' fake GitHub in its own process, so it does not share the GIL with the sync.

Prints the API URL and token as one JSON line, then serves until stdin closes.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fakegithub import FakeGitHub, Scenario


def main() -> None:
    runs, jobs, latency = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    now = datetime.now(UTC).replace(microsecond=0)
    scenario = Scenario.generate(
        seed=2026, runs=runs, jobs_per_run=jobs, days=30, now=now, in_progress=0
    )
    with FakeGitHub(scenario, latency_ms=latency) as gh:
        print(
            json.dumps(
                {
                    "api_url": gh.api_url,
                    "token": gh.token,
                    "runs": len(scenario.runs),
                    "jobs": len(scenario.jobs),
                }
            ),
            flush=True,
        )
        sys.stdin.read()


if __name__ == "__main__":
    main()
