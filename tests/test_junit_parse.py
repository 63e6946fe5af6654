"""The JUnit parser on every real fixture, on hostile input, and under fuzzing.

Expected counts per file are (distinct tests, passed, failed, error, skipped, flaky). They differ
from a file's own ``tests=`` attribute where the file lies (hand-edited edge cases) or where
retries of one test are folded (Surefire flakyFailure, repeated testcases, TestNG retries).
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cipulse.testreports import parse

FIXTURES = Path(__file__).resolve().parent.parent.parent / "shared" / "fixtures" / "real" / "junit"

EXPECTED: dict[str, tuple[int, int, int, int, int, int]] = {
    "bazel/enricomi-bazel-suite-logs.xml": (1, 0, 0, 1, 0, 0),
    "cpp/mikepenz-catch2-report.xml": (1, 0, 1, 0, 0, 0),
    "dotnet/spekt-junit-testlogger-TestResults.xml": (52, 32, 14, 0, 6, 0),
    "edge-cases/dorny-jest-junit-empty-testsuite.xml": (0, 0, 0, 0, 0, 0),
    "edge-cases/dorny-phpunit-empty.xml": (0, 0, 0, 0, 0, 0),
    "edge-cases/enricomi-disabled.xml": (31, 6, 19, 1, 5, 0),
    "edge-cases/enricomi-empty-system-out-err.xml": (1, 1, 0, 0, 0, 0),
    "edge-cases/enricomi-minimal-attributes.xml": (4, 1, 1, 1, 1, 0),
    "edge-cases/enricomi-multiresult.xml": (4, 1, 1, 1, 1, 0),
    "edge-cases/enricomi-no-attributes.xml": (4, 1, 1, 1, 1, 0),
    "edge-cases/enricomi-no-cases-but-tests.xml": (0, 0, 0, 0, 0, 0),
    "edge-cases/enricomi-no-cases.xml": (0, 0, 0, 0, 0, 0),
    "edge-cases/enricomi-testsuite-in-testsuite.xml": (5, 5, 0, 0, 0, 0),
    "edge-cases/enricomi-testsuite-root.xml": (5, 5, 0, 0, 0, 0),
    "edge-cases/enricomi-unsupported-unicode.xml": (7, 1, 2, 2, 2, 0),
    "edge-cases/enricomi-with-xml-entities.xml": (4, 0, 1, 1, 2, 0),
    "edge-cases/junitparser-jenkins.xml": (3, 1, 1, 0, 1, 0),
    "edge-cases/junitparser-no-suites-tag.xml": (3, 1, 1, 0, 1, 0),
    "edge-cases/mikepenz-flaky-retries-repeated-testcase.xml": (1, 1, 0, 0, 0, 1),
    "edge-cases/mikepenz-marathon-flakyFailure.xml": (1, 1, 0, 0, 0, 1),
    "edge-cases/mikepenz-multiple-errors.xml": (3, 1, 0, 2, 0, 0),
    "edge-cases/mikepenz-nested-multi-level.xml": (3, 3, 0, 0, 0, 0),
    "go/go-junit-report-001-pass-fail-skip.xml": (5, 2, 1, 0, 2, 0),
    "go/go-junit-report-012-subtests.xml": (11, 6, 4, 0, 1, 0),
    "go/go-junit-report-013-syntax-error.xml": (5, 2, 0, 3, 0, 0),
    "go/go-junit-report-014-panic.xml": (2, 0, 0, 2, 0, 0),
    "go/go-junit-report-017-race.xml": (1, 0, 1, 0, 0, 0),
    "go/go-junit-report-101-fail-gojson.xml": (2, 1, 1, 0, 0, 0),
    "go/gotestsum-junitxml-report.golden.xml": (60, 42, 13, 0, 5, 0),
    "gradle/onozaty-gradle-TestCase1.xml": (5, 2, 1, 1, 1, 0),
    "gradle/onozaty-gradle-TestCase2-mojibake.xml": (2, 1, 1, 0, 0, 0),
    "jest/dorny-jest-junit-test-errors.xml": (2, 0, 0, 2, 0, 0),
    "jest/dorny-jest-junit.xml": (6, 1, 4, 0, 1, 0),
    "jest/dorny-jest-react-component.xml": (1, 1, 0, 0, 0, 0),
    "jest/enricomi-jest-junit.xml": (2, 2, 0, 0, 0, 0),
    "mocha/enricomi-mocha-latex-utensils.xml": (101, 101, 0, 0, 0, 0),
    "mocha/mikepenz-mocha.xml": (1, 1, 0, 0, 0, 0),
    "phpunit/dorny-phpunit.xml": (12, 10, 2, 0, 0, 0),
    "pytest/dorny-python-xunit-pytest.xml": (10, 6, 2, 0, 2, 0),
    "pytest/dorny-python-xunit-unittest.xml": (8, 4, 1, 1, 2, 0),
    "pytest/enricomi-horovod-gloo-standalone.xml": (97, 80, 0, 0, 17, 0),
    "pytest/enricomi-horovod-spark-fail-skip.xml": (5, 3, 1, 0, 1, 0),
    "pytest/junitparser-pytest-error.xml": (1, 0, 1, 0, 0, 0),
    "pytest/junitparser-pytest-success.xml": (1, 1, 0, 0, 0, 0),
    "pytest/mikepenz-python-report-flaky.xml": (4, 2, 2, 0, 0, 0),
    "rust/mikepenz-cargo-nextest-basic.xml": (3, 2, 1, 0, 0, 0),
    "scala/enricomi-scalatest-DiffOptionsSuite.xml": (5, 5, 0, 0, 0, 0),
    "surefire/apache-surefire-TEST-FailingTest.xml": (2, 0, 2, 0, 0, 0),
    "surefire/apache-surefire-TEST-MyTest-nestedClass.xml": (1, 0, 0, 1, 0, 0),
    "surefire/apache-surefire-TEST-org.acme.FlakyTest.xml": (2, 2, 0, 0, 0, 1),
    "surefire/dorny-TEST-org.apache.pulsar.AddMissingPatchVersionTest.xml": (1, 0, 1, 0, 0, 0),
    "surefire/mikepenz-TEST-EmailAddressTest.xml": (9, 2, 2, 5, 0, 0),
    "surefire/mikepenz-TEST-StringUtilsTest.xml": (5, 2, 2, 0, 1, 0),
    "surefire/mikepenz-surefire-flakyFailure.xml": (1, 1, 0, 0, 0, 1),
    "swift/dorny-swift-xunit.xml": (3, 2, 1, 0, 0, 0),
}

BROKEN: dict[str, str] = {
    "edge-cases/enricomi-empty-file.xml": "empty",
    "edge-cases/enricomi-non-junit.xml": "not_junit",
    "edge-cases/enricomi-non-xml.xml": "not_xml",
    "edge-cases/enricomi-pytest-corrupt-xml.xml": "truncated",
}

ALL_XML = sorted(p.relative_to(FIXTURES).as_posix() for p in FIXTURES.rglob("*.xml"))


def read(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def counts(report: parse.Report) -> tuple[int, int, int, int, int, int]:
    return (
        len(report.cases),
        report.count("passed"),
        report.count("failed"),
        report.count("error"),
        report.count("skipped"),
        report.flaky,
    )


def test_every_fixture_is_listed() -> None:
    assert set(ALL_XML) == set(EXPECTED) | set(BROKEN)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_report_counts(name: str) -> None:
    report = parse.parse(read(name))
    assert counts(report) == EXPECTED[name]
    assert parse.looks_like_junit(read(name)[:4096])
    for case in report.cases:
        assert case.name
        assert case.duration >= 0
        assert case.outcome in parse.OUTCOMES


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_report_is_a_typed_error(name: str) -> None:
    with pytest.raises(parse.JUnitParseError) as caught:
        parse.parse(read(name))
    assert caught.value.kind == BROKEN[name]
    assert str(caught.value)


def test_reading_from_a_file_object_gives_the_same_result() -> None:
    name = "surefire/apache-surefire-TEST-org.acme.FlakyTest.xml"
    with (FIXTURES / name).open("rb") as handle:
        assert counts(parse.parse(handle)) == EXPECTED[name]


def test_surefire_flaky_failures_fold_into_one_passing_test() -> None:
    report = parse.parse(read("surefire/apache-surefire-TEST-org.acme.FlakyTest.xml"))
    flaky = next(case for case in report.cases if case.name == "testFlaky")
    assert flaky.outcome == "passed"
    assert flaky.flaky
    assert flaky.attempts == 5
    assert [r.outcome for r in flaky.retries] == ["failed", "failed", "failed", "error"]
    assert flaky.retries[0].message == "expected: <1> but was: <0>"
    stable = next(case for case in report.cases if case.name == "testStable")
    assert not stable.flaky and stable.attempts == 1


def test_repeated_testcases_fold_into_one_flaky_pass() -> None:
    report = parse.parse(read("edge-cases/mikepenz-flaky-retries-repeated-testcase.xml"))
    (case,) = report.cases
    assert case.name == "test_success_first"
    assert case.outcome == "passed" and case.flaky
    assert sorted(r.outcome for r in case.retries) == ["error", "failed"]


def test_testng_retry_keeps_the_last_outcome() -> None:
    report = parse.parse(
        read("surefire/dorny-TEST-org.apache.pulsar.AddMissingPatchVersionTest.xml")
    )
    (case,) = report.cases
    assert case.outcome == "failed"
    assert case.message == "expected [1.2.1] but found [1.2.0]"
    assert [r.outcome for r in case.retries] == ["skipped"]
    assert not case.flaky


def test_rerun_failures_of_a_test_that_never_passed_are_not_flaky() -> None:
    xml = b"""<testsuite name="s"><testcase classname="C" name="t" time="1.5">
      <failure message="boom">trace</failure>
      <rerunFailure message="boom again"><stackTrace>t2</stackTrace></rerunFailure>
      <rerunError message="crash"/>
    </testcase></testsuite>"""
    (case,) = parse.parse(xml).cases
    assert case.outcome == "failed"
    assert case.message == "boom"
    assert [r.outcome for r in case.retries] == ["failed", "error"]
    assert not case.flaky
    assert case.duration == 1.5


def test_fields_of_a_pytest_failure() -> None:
    report = parse.parse(read("pytest/mikepenz-python-report-flaky.xml"))
    failing = next(case for case in report.cases if case.name == "test_which_fails")
    assert failing.classname == "python.test_sample"
    assert failing.suite == "pytest"
    assert failing.outcome == "failed"
    assert failing.message is not None and failing.message.startswith("AssertionError")
    assert failing.details is not None and "python/test_sample.py:10" in failing.details


def test_nested_suites_name_the_innermost_suite() -> None:
    report = parse.parse(read("edge-cases/enricomi-testsuite-in-testsuite.xml"))
    suites = {case.name: case.suite for case in report.cases}
    assert suites["TestCase3"] == "TestSuite2.1"
    assert suites["TestCase4"] == "TestSuite2"
    assert suites["TestCase5"] == "Project Test Suite"


def test_status_attribute_disabled_means_skipped() -> None:
    report = parse.parse(read("edge-cases/enricomi-disabled.xml"))
    assert next(c for c in report.cases if c.name == "disabled_test").outcome == "skipped"


def test_bom_and_entities_are_read() -> None:
    report = parse.parse(read("dotnet/spekt-junit-testlogger-TestResults.xml"))
    assert report.cases
    quoted = parse.parse(read("edge-cases/enricomi-with-xml-entities.xml"))
    assert quoted.cases[0].name == 'Test with "quotes" in the test name'


@pytest.mark.parametrize(
    ("xml", "kind"),
    [
        (
            b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
            b"<testsuite><testcase name='&b;'/></testsuite>",
            "unsafe",
        ),
        (
            b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
            b'<testsuite><testcase name="&e;"/></testsuite>',
            "unsafe",
        ),
        (b"   \n\t ", "empty"),
        (b"\xef\xbb\xbf", "empty"),
        (b'<testsuite><testcase name="a"', "truncated"),
        (b"<html><body>502 Bad Gateway</body></html>", "not_junit"),
        (b'{"tests": []}', "not_xml"),
    ],
)
def test_hostile_and_broken_input(xml: bytes, kind: str) -> None:
    with pytest.raises(parse.JUnitParseError) as caught:
        parse.parse(xml)
    assert caught.value.kind == kind


def test_control_characters_and_bad_utf8_cost_one_character_not_the_report() -> None:
    xml = (
        b'<testsuite name="go"><testcase classname="p" name="T\x1b[31mred\xff">'
        b"<failure>&#27;[0m\x00 done</failure></testcase></testsuite>"
    )
    (case,) = parse.parse(xml).cases
    assert case.name == "T\ufffd[31mred\ufffd"
    assert case.outcome == "failed"
    assert case.message == "\ufffd[0m\ufffd done"


@pytest.mark.parametrize("encoding", ["utf-16", "latin-1"])
def test_declared_encodings(encoding: str) -> None:
    xml = (
        f'<?xml version="1.0" encoding="{encoding}"?>'
        '<testsuite><testcase name="Grüße"/></testsuite>'
    )
    data = xml.encode(encoding)
    assert parse.looks_like_junit(data)
    assert parse.parse(data).cases[0].name == "Grüße"


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b'\xef\xbb\xbf  <?xml version="1.0"?>\n<!-- generated -->\n<testsuites>', True),
        (b"<?xml version='1.0'?><?xml-stylesheet href='x'?><ns:testsuite xmlns:ns='u'>", True),
        (b"<!DOCTYPE testsuite><testcase name='x'/>", True),
        (b"<suites><suite/></suites>", False),
        (b"<html><!-- <testsuite> --></html>", False),
        (b"", False),
        (b"PK\x03\x04 zip", False),
    ],
)
def test_looks_like_junit(head: bytes, expected: bool) -> None:
    assert parse.looks_like_junit(head) is expected


def test_a_large_report_streams() -> None:
    case = (
        b'<testcase classname="big.Suite" name="t%d" time="0.01">'
        b"<system-out>%s</system-out></testcase>"
    )
    body = b"".join(case % (i, b"x" * 200) for i in range(20_000))
    data = b"<testsuites><testsuite name='big'>" + body + b"</testsuite></testsuites>"
    report = parse.parse(io.BytesIO(data))
    assert len(report.cases) == 20_000
    assert report.count("passed") == 20_000


# --- fuzzing ---------------------------------------------------------------------------------

FUZZ_SOURCES = [read(name) for name in sorted(EXPECTED)]


def _parse_or_typed_error(data: bytes) -> None:
    try:
        report = parse.parse(data)
    except parse.JUnitParseError as exc:
        assert exc.kind in ("empty", "not_xml", "truncated", "not_junit", "unsafe")
        return
    for case in report.cases:
        assert case.outcome in parse.OUTCOMES
    parse.looks_like_junit(data)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_fuzz_arbitrary_bytes(data: bytes) -> None:
    _parse_or_typed_error(data)
    parse.looks_like_junit(data)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(FUZZ_SOURCES),
    st.lists(
        st.tuples(
            st.integers(min_value=0), st.integers(min_value=0, max_value=40), st.binary(max_size=12)
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_fuzz_mutated_real_reports(source: bytes, edits: list[tuple[int, int, bytes]]) -> None:
    data = bytearray(source)
    for position, length, replacement in edits:
        at = position % (len(data) + 1)
        data[at : at + length] = replacement
    _parse_or_typed_error(bytes(data))


@settings(max_examples=100)
@given(st.sampled_from(FUZZ_SOURCES), st.integers(min_value=0))
def test_fuzz_truncated_real_reports(source: bytes, cut: int) -> None:
    _parse_or_typed_error(source[: cut % (len(source) + 1)])


def test_gzip_is_not_mistaken_for_a_report() -> None:
    data = gzip.compress(read("pytest/junitparser-pytest-success.xml"))
    assert not parse.looks_like_junit(data)
    with pytest.raises(parse.JUnitParseError):
        parse.parse(data)


class _Pipe(io.RawIOBase):
    """A stream that cannot be rewound, like a socket or a decompressor."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        chunk = self._data.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


@pytest.mark.parametrize("wrap", [bytes, io.BytesIO, _Pipe], ids=["bytes", "file", "pipe"])
def test_dirty_reports_from_every_kind_of_source(wrap: type) -> None:
    """Clean input is parsed as is; a forbidden character sends it through the cleaner,
    rewinding a file and cleaning a pipe from the start."""
    clean = read("go/go-junit-report-012-subtests.xml")
    dirty = clean.replace(b"subtests_test.go:10: error message", b"\x1b[31merror\x1b[0m &#27;")
    assert dirty != clean
    for data in (clean, dirty):
        report = parse.parse(wrap(data))
        assert counts(report) == EXPECTED["go/go-junit-report-012-subtests.xml"]
    case = next(c for c in parse.parse(wrap(dirty)).cases if c.name == "TestSubtests/Subtest#01")
    assert case.details == "\ufffd[31merror\ufffd[0m \ufffd"
    with pytest.raises(parse.JUnitParseError) as caught:
        parse.parse(wrap(dirty[: len(dirty) // 2]))
    assert caught.value.kind == "truncated"
