"""Text the GitHub demo stores: workflow files, job logs, JUnit reports and an artifact.

Everything is made in code (no fixture is read at run time), deterministic for a seeded ``rng``.
"""

from __future__ import annotations

import json
import random
import struct
import zipfile
import zlib
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path

from cipulse.models import Job, Step

CHECKOUT_SHA = "11bd71901bbe5b1630ceea73d27597364c9af683"
BROKEN_TEST = ("tests.test_billing", "test_invoice_total_rounds_half_even")
FLAKY_TEST = ("tests.test_cache", "test_eviction_under_concurrent_writes")
COMMANDS = {
    "build": "make build",
    "lint": "ruff check .",
    "integration": "pytest tests/integration -q",
    "e2e": "npx playwright test",
    "typecheck": "mypy src",
    "docs": "mkdocs build --strict",
    "package": "python -m build",
    "coverage": "coverage report --fail-under=85",
    "security": "pip-audit --strict",
    "publish": "twine upload dist/*",
    "notify": "./scripts/notify.sh",
    "soak": "./scripts/soak.sh --minutes 30",
    "benchmark": "pytest bench --benchmark-only",
    "report": "./scripts/report.py",
    "build-docs": "mkdocs build",
    "linkcheck": "lychee --no-progress docs/",
}
# Workflow files as they would be at every commit: the run page draws its graph from them.
WORKFLOW_FILES = {
    "CI": """name: CI
on: [push, pull_request]
jobs:
  build:
    runs-on: ubuntu-latest
    steps: [{uses: actions/checkout@v4}, {run: make build}]
  lint:
    runs-on: ubuntu-latest
    steps: [{uses: actions/checkout@v4}, {run: ruff check .}]
  typecheck:
    runs-on: ubuntu-latest
    steps: [{uses: actions/checkout@v4}, {run: mypy src}]
  unit:
    needs: build
    strategy:
      matrix:
        python: ["3.11", "3.12", "3.13"]
    runs-on: ubuntu-latest
    steps: [{uses: actions/checkout@v4}, {run: pytest tests/unit}]
  integration:
    needs: build
    runs-on: [self-hosted, linux, x64]
    steps: [{uses: actions/checkout@v4}, {run: pytest tests/integration}]
  e2e:
    needs: [build]
    runs-on: ubuntu-latest
    steps: [{uses: actions/checkout@v4}, {run: npx playwright test}]
  docs:
    runs-on: ubuntu-latest
    steps: [{uses: actions/checkout@v4}, {run: mkdocs build --strict}]
  security:
    runs-on: ubuntu-latest
    steps: [{uses: actions/checkout@v4}, {run: pip-audit --strict}]
  coverage:
    needs: [unit, integration]
    runs-on: ubuntu-latest
    steps: [{uses: actions/checkout@v4}, {run: coverage report}]
  package:
    needs: [unit, lint, typecheck]
    runs-on: ubuntu-latest
    steps: [{uses: actions/checkout@v4}, {run: python -m build}]
""",
    "Release": """name: Release
on: {push: {tags: ["v*"]}}
jobs:
  build: {runs-on: ubuntu-latest, steps: [{run: make build}]}
  publish: {needs: build, runs-on: ubuntu-latest, steps: [{run: twine upload dist/*}]}
  notify: {needs: publish, runs-on: ubuntu-latest, steps: [{run: ./scripts/notify.sh}]}
""",
    "Nightly": """name: Nightly
on: {schedule: [{cron: "0 3 * * *"}]}
jobs:
  build: {runs-on: ubuntu-latest, steps: [{run: make build}]}
  soak: {needs: build, runs-on: [self-hosted, linux, x64], steps: [{run: ./scripts/soak.sh}]}
  benchmark: {needs: build, runs-on: ubuntu-latest, steps: [{run: pytest bench}]}
  report: {needs: [soak, benchmark], runs-on: ubuntu-latest, steps: [{run: ./scripts/report.py}]}
""",
    "Docs": """name: Docs
on: [push]
jobs:
  build-docs: {runs-on: ubuntu-latest, steps: [{run: mkdocs build}]}
  linkcheck: {needs: build-docs, runs-on: ubuntu-latest, steps: [{run: lychee docs/}]}
""",
}


RED, GREEN, YELLOW, BOLD, RESET = "\x1b[31m", "\x1b[32m", "\x1b[33m", "\x1b[1m", "\x1b[0m"


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}0Z"


def log_text(
    rng: random.Random, *, job: Job, steps: Sequence[Step], labels: Sequence[str], broken: bool
) -> str:
    """A failed job's log in GitHub's shape: timestamps, folds, colours and error lines."""
    out: list[str] = []
    assert job.started_at is not None
    clock = job.started_at
    repo = (job.html_url or "").split("/actions/")[0].split("github.com/")[-1]

    def say(text: str) -> None:
        nonlocal clock
        clock += timedelta(milliseconds=rng.randint(1, 900))
        out.append(f"{_stamp(clock)} {text}")

    say("Current runner version: '2.321.0'")
    say(f"Runner name: '{job.runner_name or 'runner-1'}'")
    say(f"Runner group name: '{job.runner_group_name or 'Default'}'")
    say("##[group]Operating System")
    say("Ubuntu")
    say("22.04.5")
    say("LTS")
    say("##[endgroup]")
    say("##[group]GITHUB_TOKEN Permissions")
    for scope in ("Actions: read", "Contents: read", "Metadata: read", "Checks: write"):
        say(scope)
    say("##[endgroup]")
    say(f"Runner labels: {', '.join(labels)}")
    say("Prepare workflow directory")
    say("Prepare all required actions")
    say(f"Download action repository 'actions/checkout@v4' (SHA:{CHECKOUT_SHA})")
    for step in steps[1:]:
        if step.started_at is not None and step.started_at > clock:
            clock = step.started_at
        if step.name.startswith("Run actions/checkout"):
            say("##[group]Run actions/checkout@v4")
            say("with:")
            say(f"  ref: {job.head_sha}")
            say("##[endgroup]")
            say(f"Syncing repository: {repo}")
            say("##[group]Fetching the repository")
            say(
                f"[command]/usr/bin/git -c protocol.version=2 fetch --depth=1 origin {job.head_sha}"
            )
            say("##[endgroup]")
            pull = rng.randint(100, 999)
            say(f"HEAD is now at {(job.head_sha or '0' * 40)[:7]} Merge pull request #{pull}")
        elif step.name.startswith("Set up"):
            say(f"##[group]{step.name}")
            say("Version 3.12.7 was found in the local cache")
            say("Successfully set up CPython (3.12.7)")
            say("##[endgroup]")
        elif step.name.startswith("Run ") and step.conclusion == "failure":
            command = step.name[4:]
            say(f"##[group]{step.name}")
            say(f"{BOLD}{command}{RESET}")
            say("shell: /usr/bin/bash -e {0}")
            say("##[endgroup]")
            _test_output(say, rng, broken=broken)
            say("##[error]Process completed with exit code 1.")
        elif step.name.startswith("Run "):
            say(f"##[group]{step.name}")
            say("shell: /usr/bin/bash -e {0}")
            say("##[endgroup]")
            say(f"{GREEN}done{RESET}")
        elif step.name.startswith("Post "):
            say("Post job cleanup.")
            say("[command]/usr/bin/git version")
            say("git version 2.47.1")
        elif step.name == "Complete job":
            say("Cleaning up orphan processes")
    return "\n".join(out) + "\n"


def _test_output(say: Callable[[str], None], rng: random.Random, *, broken: bool) -> None:
    say("============================= test session starts ==============================")
    say("platform linux -- Python 3.12.7, pytest-8.3.4, pluggy-1.5.0")
    say(f"collected {rng.randint(180, 420)} items")
    say("")
    for module in ("tests/test_api.py", "tests/test_models.py", "tests/test_billing.py"):
        dots = "".join(rng.choice("....................s") for _ in range(rng.randint(20, 60)))
        failing = module.endswith("billing.py") and broken
        mark = f"{RED}F{RESET}" if failing else ""
        say(f"{module} {GREEN}{dots}{RESET}{mark}")
    if rng.random() < 0.3:
        say("##[warning]DeprecationWarning: datetime.utcnow() is deprecated")
    say("")
    say("=================================== FAILURES ===================================")
    if broken:
        cls, name = BROKEN_TEST
        say(f"{RED}{BOLD}_____________________ {name} _____________________{RESET}")
        say("    def test_invoice_total_rounds_half_even():")
        say("        invoice = Invoice(lines=[Line(price=Decimal('0.125'), qty=1)])")
        say(">       assert invoice.total == Decimal('0.12')")
        say(f"{RED}E       AssertionError: assert Decimal('0.13') == Decimal('0.12'){RESET}")
        say("")
        say(f"{cls.replace('.', '/')}.py:42: AssertionError")
        summary = f"FAILED {cls.replace('.', '/')}.py::{name} - AssertionError"
    else:
        cls, name = FLAKY_TEST
        say(f"{RED}{BOLD}_____________________ {name} _____________________{RESET}")
        say(">       assert cache.size() <= cache.capacity")
        say(f"{RED}E       TimeoutError: eviction did not finish within 5.0s{RESET}")
        summary = f"FAILED {cls.replace('.', '/')}.py::{name} - TimeoutError"
    say("=========================== short test summary info ============================")
    say(f"{RED}{summary}{RESET}")
    passed, took = rng.randint(170, 400), rng.uniform(30, 200)
    say(f"{RED}========= 1 failed, {passed} passed in {took:.2f}s ========={RESET}")


def junit_xml(
    rng: random.Random, *, failing: Sequence[tuple[str, str]], seconds_scale: float = 1.0
) -> bytes:
    """A pytest-style report: a few suites, the ``failing`` (class, test) pairs failed."""
    suites: dict[str, list[str]] = {
        "tests.test_api": [
            "test_list_runs", "test_get_run", "test_pagination", "test_auth_required",
            "test_rate_limit_headers", "test_etag_roundtrip",
        ],
        "tests.test_models": [
            "test_run_roundtrip", "test_job_labels", "test_attempts_ordered", "test_utc_columns",
        ],
        "tests.test_billing": [
            "test_invoice_total_rounds_half_even", "test_tax_by_region", "test_credit_note",
            "test_currency_conversion",
        ],
        "tests.test_cache": [
            "test_hit_after_put", "test_expiry", "test_eviction_under_concurrent_writes",
        ],
    }  # fmt: skip
    parts = ['<?xml version="1.0" encoding="utf-8"?>', "<testsuites>"]
    for suite, tests in suites.items():
        cases = []
        failures = 0
        for test in tests:
            took = rng.lognormvariate(-1.5, 1.0) * seconds_scale
            if suite == "tests.test_api" and test == "test_pagination":
                took += 4.0  # a reliably slow test for the "slowest" list
            body = ""
            if (suite, test) in failing:
                failures += 1
                body = (
                    "<failure message=\"AssertionError: assert Decimal('0.13') == "
                    "Decimal('0.12')\">tests/test_billing.py:42: AssertionError</failure>"
                    if suite == "tests.test_billing"
                    else '<failure message="TimeoutError: eviction did not finish within 5.0s">'
                    "tests/test_cache.py:88: TimeoutError</failure>"
                )
            cases.append(
                f'<testcase classname="{suite}" name="{test}" time="{took:.3f}">{body}</testcase>'
            )
        parts.append(
            f'<testsuite name="{suite}" tests="{len(tests)}" failures="{failures}" errors="0">'
            + "".join(cases)
            + "</testsuite>"
        )
    parts.append("</testsuites>")
    return "\n".join(parts).encode()


def surefire_xml(rng: random.Random, *, flaky: bool) -> bytes:
    """A Maven Surefire report; ``flaky``: one test failed once and passed on its rerun."""
    rerun = (
        '<flakyFailure message="expected: &lt;200&gt; but was: &lt;503&gt;" '
        'type="org.opentest4j.AssertionFailedError"><stackTrace>at com.example.billing.'
        "GatewayClientTest.retriesOn503(GatewayClientTest.java:57)</stackTrace></flakyFailure>"
        if flaky
        else ""
    )
    cases = [
        ("InvoiceServiceTest", "computesTotals"),
        ("InvoiceServiceTest", "appliesDiscounts"),
        ("GatewayClientTest", "retriesOn503"),
        ("GatewayClientTest", "timesOut"),
    ]
    body = "".join(
        f'<testcase name="{name}" classname="com.example.billing.{cls}" '
        f'time="{rng.uniform(0.01, 0.8):.3f}">{rerun if name == "retriesOn503" else ""}</testcase>'
        for cls, name in cases
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<testsuite name="com.example.billing.BillingSuite" tests="4" failures="0" errors="0" '
        f'skipped="0" time="1.9">{body}</testsuite>'
    ).encode()


def png_chart(width: int = 160, height: int = 90) -> bytes:
    """A small PNG (a bar chart of coverage per package), made with zlib and struct only."""
    bars = [0.62, 0.81, 0.74, 0.93, 0.88, 0.57, 0.79]
    pixels = bytearray()
    for y in range(height):
        pixels.append(0)  # filter: none
        for x in range(width):
            bar = min(x // (width // len(bars)), len(bars) - 1)
            inside = x % (width // len(bars)) > 3 and x < width // len(bars) * len(bars)
            level = 1 - y / height
            if inside and level <= bars[bar]:
                pixels += bytes((46, 160, 67)) if bars[bar] >= 0.75 else bytes((219, 109, 40))
            else:
                pixels += bytes((246, 248, 250))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(pixels), 9))
        + chunk(b"IEND", b"")
    )


def artifact_zip(path: Path, now: datetime) -> None:
    coverage = {
        "generated_at": now.isoformat(),
        "totals": {"covered_lines": 8123, "num_statements": 9544, "percent_covered": 85.11},
        "packages": {"api": 81.2, "billing": 93.4, "cache": 74.0, "models": 88.1},
    }
    summary = "\n".join(
        ["build summary", "=============", "wheel: dist/api-2.4.0-py3-none-any.whl (412 KB)",
         "sdist: dist/api-2.4.0.tar.gz (388 KB)", "tests: 412 passed, 3 skipped", ""]
    )  # fmt: skip
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("coverage/coverage-by-package.png", png_chart())
        archive.writestr("coverage/coverage.json", json.dumps(coverage, indent=2))
        archive.writestr("build-summary.txt", summary)
