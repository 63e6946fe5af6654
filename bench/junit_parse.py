"""JUnit parsing throughput and peak memory: cipulse's streaming parser against the naive method.

    .venv/bin/python bench/junit_parse.py                 # a 50 MB report, 3 rounds
    .venv/bin/python bench/junit_parse.py --mb 200 --rounds 1

A report of about ``--mb`` MB is generated once (Surefire-like: suites of test cases, ~8 % failing
with a stack trace, ~3 % skipped, ~1 % passing after ``flakyFailure`` retries, captured
``system-out`` on many cases, so most bytes are output text as in real reports). Then each method
runs in its own fresh Python process, so peak memory is that method's alone:

* **stream file**: ``cipulse.testreports.parse.parse(open(path, "rb"))`` (artifact files);
* **stream bytes**: the same on the whole body already in memory (``POST /api/test-reports``);
* **naive**: ``xml.etree.ElementTree.fromstring(path.read_bytes())`` and a walk over every
  ``<testcase>`` collecting the same fields (no retry folding, no safety against entities).

Figures: test cases per second (wall clock of the parse only) and peak resident memory above the
process's baseline after imports (``ru_maxrss``). The best of ``--rounds`` is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

TRACE = "\n".join(
    f"\tat org.acme.module{n}.Service.call(Service.java:{100 + n})" for n in range(25)
)
OUTPUT = "INFO starting container for test, pulling image, waiting for port 5432 ... ok\n" * 6


def generate(path: Path, megabytes: float, seed: int = 20261123) -> int:
    """Write a report of about ``megabytes`` MB; returns how many distinct tests it names."""
    rng = random.Random(seed)
    target = int(megabytes * 1024 * 1024)
    written = 0
    cases = 0
    suite = 0
    with path.open("w", encoding="utf-8") as out:
        out.write('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="bench">\n')
        while written < target:
            suite += 1
            parts = [f'  <testsuite name="org.acme.Suite{suite}" tests="50" time="12.5">\n']
            for n in range(50):
                cases += 1
                roll = rng.random()
                head = (
                    f'    <testcase classname="org.acme.Suite{suite}" '
                    f'name="test_case_{n}[param-{rng.randint(0, 999)}]" '
                    f'time="{rng.random() * 2:.3f}">'
                )
                if roll < 0.08:
                    body = (
                        '<failure message="expected: &lt;1&gt; but was: &lt;2&gt;" '
                        f'type="org.opentest4j.AssertionFailedError">{TRACE}</failure>'
                        f"<system-out>{OUTPUT}</system-out>"
                    )
                elif roll < 0.11:
                    body = '<skipped message="disabled on CI"/>'
                elif roll < 0.12:
                    body = (
                        '<flakyFailure message="timeout" type="java.util.concurrent.Timeout">'
                        f"<stackTrace>{TRACE}</stackTrace></flakyFailure>"
                    )
                elif roll < 0.5:
                    body = f"<system-out>{OUTPUT}</system-out>"
                else:
                    body = ""
                parts.append(f"{head}{body}</testcase>\n")
            parts.append("  </testsuite>\n")
            chunk = "".join(parts)
            out.write(chunk)
            written += len(chunk)
        out.write("</testsuites>\n")
    return cases


def _rss_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def child(method: str, path: Path) -> None:
    """Run one method in this (fresh) process and print its figures as JSON."""
    import xml.etree.ElementTree as ET

    from cipulse.testreports import parse

    data = path.read_bytes() if method == "stream-bytes" else None
    baseline = _rss_kb()
    start = time.perf_counter()
    if method == "stream-file":
        with path.open("rb") as handle:
            cases = len(parse.parse(handle).cases)
    elif method == "stream-bytes":
        assert data is not None
        cases = len(parse.parse(data).cases)
    else:
        root = ET.fromstring(path.read_bytes())  # noqa: S314 - the naive method, on purpose
        found = []
        for case in root.iter("testcase"):
            outcome = "passed"
            message = None
            for result in case:
                if result.tag in ("failure", "error", "skipped"):
                    outcome = result.tag
                    message = result.get("message")
            found.append(
                (case.get("classname"), case.get("name"), case.get("time"), outcome, message)
            )
        cases = len(found)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"cases": cases, "seconds": seconds, "peak_kb": peak - baseline}))


def measure(method: str, path: Path, rounds: int) -> dict[str, float]:
    best: dict[str, float] | None = None
    for _ in range(rounds):
        out = subprocess.run(
            [sys.executable, __file__, "--child", method, "--file", str(path)],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        ).stdout
        figures = json.loads(out.strip().splitlines()[-1])
        if best is None or figures["seconds"] < best["seconds"]:
            best = figures
    assert best is not None
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=float, default=50.0, help="report size in MB")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.file)
        return

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "TEST-bench.xml"
        start = time.perf_counter()
        written = generate(path, args.mb)
        size = path.stat().st_size / (1024 * 1024)
        print(
            f"report: {size:.1f} MB, {written:,} testcases "
            f"(generated in {time.perf_counter() - start:.1f} s)"
        )
        print(f"{'method':<14} {'cases':>9} {'seconds':>8} {'cases/s':>10} {'peak MB':>8}")
        results = {}
        for method in ("stream-file", "stream-bytes", "naive"):
            figures = measure(method, path, args.rounds)
            results[method] = figures
            print(
                f"{method:<14} {figures['cases']:>9,} {figures['seconds']:>8.2f} "
                f"{figures['cases'] / figures['seconds']:>10,.0f} "
                f"{figures['peak_kb'] / 1024:>8.1f}"
            )
        naive, stream = results["naive"], results["stream-file"]
        print(
            f"streaming from the file: {stream['peak_kb'] / max(naive['peak_kb'], 1):.2f}x the "
            f"naive peak memory, {naive['seconds'] / stream['seconds']:.2f}x its speed"
        )


if __name__ == "__main__":
    main()
