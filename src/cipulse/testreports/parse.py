"""Pure, streaming JUnit XML parsing.

Real reports come from dozens of tools that each read "JUnit XML" their own way, so the parser is
tolerant where tools differ (nested suites, missing attributes, ``status`` attributes, several
result elements in one case, control characters and broken UTF-8 in captured output) and strict
where the input is not a report at all (empty, truncated, not XML, not JUnit): those raise
:class:`JUnitParseError`, whose ``kind`` and message say what is wrong. Nothing else escapes.

Safety and size: the input streams through expat in 64 KB blocks with callbacks, no tree. The
expat parser refuses entity declarations and external references exactly as defusedxml does
(with defusedxml's own exceptions): no "billion laughs", no file reads. Captured output
(``system-out``) is never kept and failure text is clipped, so a 50 MB report is never held
whole; only one small record per distinct test is kept, which the caller needs anyway. Clean
reports are parsed as they are; a report with a character XML forbids is parsed again through
a cleaner that replaces it (a file is rewound; a stream that cannot be rewound is cleaned at
once).

Retries inside one report are folded by test identity (class name, or suite when there is none,
plus test name): Surefire's ``flakyFailure``/``flakyError``/``rerunFailure``/``rerunError`` and
testcases repeated by rerun plugins give one final outcome per test, the other attempts kept in
``retries``. A test that passed in any attempt counts as passed, and as flaky when another
attempt failed; retries are never counted as extra tests.
"""

from __future__ import annotations

import codecs
import math
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Literal
from xml.parsers import expat
from xml.parsers.expat import XMLParserType as xmlparser

from defusedxml import (  # type: ignore[import-untyped]
    DefusedXmlException,
    EntitiesForbidden,
    ExternalReferenceForbidden,
)

Outcome = Literal["passed", "failed", "error", "skipped"]
ErrorKind = Literal["empty", "not_xml", "truncated", "not_junit", "unsafe"]

OUTCOMES: tuple[Outcome, ...] = ("passed", "failed", "error", "skipped")
MAX_MESSAGE = 2000
MAX_DETAILS = 8000
MAX_NAME = 1000
_CHUNK = 1 << 16
_HEAD = 8192
_BLANK = b" \t\r\n\x00\xef\xbb\xbf\xfe\xff"
# expat errors the cleaning pass repairs: invalid token (a control character, a byte that is not
# UTF-8), bad character reference, unknown or incorrect encoding, partial character.
_REPAIRABLE_CODES = frozenset({4, 6, 14, 18, 19})
_TRUNCATED_CODES = frozenset({3, 5, 6})  # expat: no element found, unclosed token, partial char

_JUNIT_ROOTS = frozenset({"testsuites", "testsuite", "testcase"})
# Attempts that did not count: the test ran again afterwards.
_RETRY_TAGS: dict[str, Outcome] = {
    "flakyFailure": "failed",
    "flakyError": "error",
    "rerunFailure": "failed",
    "rerunError": "error",
}
_RESULT_TAGS: dict[str, Outcome] = {"failure": "failed", "error": "error", "skipped": "skipped"}
_SEVERITY: dict[Outcome, int] = {"passed": 0, "skipped": 1, "failed": 2, "error": 3}
_SKIP_STATUSES = frozenset({"disabled", "skipped", "notrun", "not_run", "ignored", "pending"})

# Characters XML 1.0 forbids, raw or as character references; test output is full of them
# (ANSI colour escapes, NULs from crashed processes).
_BAD_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_BAD_REFS = re.compile(
    r"&#(?:x0*(?:[0-8bcef]|1[0-9a-f]|fff[ef]|d[89a-f][0-9a-f]{2})|0*(?:[0-8]|1[124-9]|2[0-9]|3[01]))"
    r";",
    re.IGNORECASE,
)
_DECL_ENCODING = re.compile(rb"""^<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_DECL_TEXT = re.compile(r"""^(\s*<\?xml[^>]*?encoding\s*=\s*["'])[A-Za-z0-9._-]+(["'])""")
_FIRST_ELEMENT = re.compile(
    r"^\s*(?:(?:<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>\[]*(?:\[.*?\])?\s*>)\s*)*"
    r"<(?:[\w.-]+:)?([\w.-]+)[\s/>]",
    re.DOTALL,
)


class JUnitParseError(ValueError):
    """The bytes are not a JUnit report cipulse can read; ``kind`` and the message say why."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind


@dataclass(slots=True)
class Attempt:
    """One run of a test that was not its last word (a retry's failure, or a repeated case)."""

    outcome: Outcome
    message: str | None
    duration: float


@dataclass(slots=True)
class TestCaseResult:
    """One test's final result in one report."""

    suite: str
    classname: str
    name: str
    file: str | None
    outcome: Outcome
    duration: float
    message: str | None = None
    details: str | None = None
    retries: list[Attempt] = field(default_factory=list)

    @property
    def identity(self) -> tuple[str, str]:
        return (self.classname or self.suite, self.name)

    @property
    def attempts(self) -> int:
        return 1 + len(self.retries)

    @property
    def flaky(self) -> bool:
        """Passed in the end after at least one failing attempt in the same report."""
        return self.outcome == "passed" and any(
            retry.outcome in ("failed", "error") for retry in self.retries
        )


@dataclass(slots=True)
class Report:
    """A parsed report: one entry per distinct test, in order of first appearance."""

    name: str | None
    timestamp: datetime | None
    suites: int
    cases: list[TestCaseResult]

    def count(self, outcome: Outcome) -> int:
        return sum(1 for case in self.cases if case.outcome == outcome)

    @property
    def flaky(self) -> int:
        return sum(1 for case in self.cases if case.flaky)

    @property
    def duration(self) -> float:
        return sum(case.duration for case in self.cases)


# --- sniffing ------------------------------------------------------------------------------


def _detect_encoding(head: bytes) -> str:
    """The encoding to decode with: BOM first, then the XML declaration, then UTF-8."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if head.startswith(b"<\x00") or head.startswith(b"\x00<"):
        return "utf-16-le" if head[0] == 0x3C else "utf-16-be"
    match = _DECL_ENCODING.match(head)
    if match:
        name = match.group(1).decode("ascii").lower()
        try:
            codec = codecs.lookup(name).name
        except LookupError:
            return "utf-8"
        # The declaration was read as ASCII, so the bytes are not UTF-16/32 whatever it says.
        return "utf-8" if codec.startswith(("utf-16", "utf-32")) else codec
    return "utf-8"


def looks_like_junit(head: bytes) -> bool:
    """Whether the first few KB of a file look like a JUnit report: judged by content, not name.

    Tolerates a BOM, whitespace, the XML declaration, comments, processing instructions and a
    DOCTYPE before the root; the root must be ``testsuites``, ``testsuite`` or ``testcase``.
    """
    head = head[:_HEAD]
    if not head:
        return False
    encoding = _detect_encoding(head)
    text = head.decode("utf-8-sig" if encoding == "utf-8" else encoding, errors="replace")
    text = text.lstrip("\ufeff")
    match = _FIRST_ELEMENT.match(text)
    return bool(match and match.group(1) in _JUNIT_ROOTS)


# --- input cleaning ------------------------------------------------------------------------


def _chunks(source: bytes | IO[bytes]) -> Iterator[bytes]:
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        for start in range(0, len(data), _CHUNK):
            yield data[start : start + _CHUNK]
        return
    while chunk := source.read(_CHUNK):
        yield chunk


def _clean_text(text: str) -> str:
    text = _BAD_CHARS.sub("\ufffd", text)
    return _BAD_REFS.sub("\ufffd", text)


class _Cleaner:
    """Turns the input into UTF-8 blocks with the characters XML forbids replaced by U+FFFD.

    The input is decoded leniently in its own encoding (BOM, then declaration, then UTF-8) and
    the declaration rewritten to say UTF-8, so a stray Latin-1 byte or an ANSI escape in
    captured output costs one replacement character, not the whole report.
    """

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self.nonblank = False  # any byte besides whitespace, BOMs and NULs

    def blocks(self) -> Iterator[bytes]:
        decoder: codecs.IncrementalDecoder | None = None
        pending = ""  # held back: may be the start of a character reference
        declaration_seen = False
        for chunk in self._chunks:
            if not self.nonblank and chunk.strip(_BLANK):
                self.nonblank = True
            if decoder is None:
                encoding = _detect_encoding(chunk[:_HEAD])
                codec = "utf-8-sig" if encoding == "utf-8" else encoding
                decoder = codecs.getincrementaldecoder(codec)(errors="replace")
            text = pending + decoder.decode(chunk)
            amp = text.rfind("&", max(0, len(text) - 12))
            if amp != -1 and ";" not in text[amp:]:
                text, pending = text[:amp], text[amp:]
            else:
                pending = ""
            if text and not declaration_seen:
                declaration_seen = True
                text = _DECL_TEXT.sub(r"\1utf-8\2", text.lstrip("\ufeff"), count=1)
            yield _clean_text(text).encode("utf-8")
        if decoder is not None:
            text = pending + decoder.decode(b"", final=True)
            if text and not declaration_seen:
                text = _DECL_TEXT.sub(r"\1utf-8\2", text.lstrip("\ufeff"), count=1)
            yield _clean_text(text).encode("utf-8")


# --- values --------------------------------------------------------------------------------


def _seconds(raw: str | None) -> float:
    """``time`` in seconds; tools write "1,234.5", "0.5s" or nothing at all."""
    if not raw:
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        try:
            value = float(raw.strip().rstrip("sS").replace(",", ""))
        except ValueError:
            return 0.0
    if math.isnan(value) or math.isinf(value) or value < 0:
        return 0.0
    return min(value, 1e9)


def _timestamp(raw: str | None) -> datetime | None:
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _clip(text: str | None, limit: int) -> str | None:
    if text is None:
        return None
    text = text.strip()
    if not text:
        return None
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- parsing -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Suite:
    name: str  # clipped and interned once: every case of the suite shares it
    file: str | None


@dataclass(slots=True)
class _Result:
    """A result element of the open testcase: failure, error, skipped or a retry."""

    tag: str
    attrs: dict[str, str]
    text: list[str] = field(default_factory=list)
    size: int = 0

    @property
    def body(self) -> str | None:
        return _clip("".join(self.text), MAX_DETAILS)

    @property
    def message(self) -> str | None:
        message = self.attrs.get("message")
        if message and message.strip():
            return _clip(message, MAX_MESSAGE)
        body = self.body
        if body:
            return _clip(body.splitlines()[0], MAX_MESSAGE)
        return _clip(self.attrs.get("type"), MAX_MESSAGE)


def _read_case(
    attrs: dict[str, str], results: list[_Result], suite: _Suite, position: int
) -> TestCaseResult:
    name = attrs.get("name") or ""
    if not name.strip():
        # Cases without a name are distinct tests, not retries of one another.
        name = f"(unnamed test #{position})"
    classname = attrs.get("classname") or attrs.get("class") or ""
    if len(classname) > MAX_NAME or classname[:1].isspace() or classname[-1:].isspace():
        classname = _clip(classname, MAX_NAME) or ""
    outcome: Outcome = "passed"
    message: str | None = None
    details: str | None = None
    retries: list[Attempt] = []
    for result in results:
        if result.tag in _RESULT_TAGS:
            found = _RESULT_TAGS[result.tag]
            if _SEVERITY[found] > _SEVERITY[outcome]:
                outcome = found
                details = result.body
                message = result.message
        else:
            retries.append(
                Attempt(_RETRY_TAGS[result.tag], result.message, _seconds(result.attrs.get("time")))
            )
    status = (attrs.get("status") or "").strip().lower()
    if outcome == "passed" and status in _SKIP_STATUSES:
        outcome = "skipped"
    elif outcome == "passed" and status in ("failed", "failure"):
        outcome = "failed"
    elif outcome == "passed" and status in ("error", "errored"):
        outcome = "error"
    # Surefire: a test that failed every rerun has <failure> plus <rerunFailure>s; one that
    # passed on a rerun has only <flakyFailure>s. Either way the retries are evidence only.
    file = attrs.get("file")
    return TestCaseResult(
        suite=suite.name,
        classname=sys.intern(classname),
        name=name.strip()[:MAX_NAME],
        file=_clip(file, 500) if file else suite.file,
        outcome=outcome,
        duration=_seconds(attrs.get("time") or attrs.get("duration")),
        message=message,
        details=details,
        retries=retries,
    )


def _fold(existing: TestCaseResult, new: TestCaseResult) -> None:
    """Merge a repeated testcase (a rerun plugin's next attempt) into the first one seen."""
    passed = existing.outcome == "passed" or new.outcome == "passed"
    if existing.outcome == "passed" and new.outcome != "passed":
        final, earlier = existing, new
    elif new.outcome == "passed" and existing.outcome != "passed":
        final, earlier = new, existing
    else:
        final, earlier = new, existing  # the later attempt is the final word
    retries = [
        *existing.retries,
        *new.retries,
        Attempt(earlier.outcome, earlier.message, earlier.duration),
    ]
    existing.outcome = "passed" if passed else final.outcome
    existing.message = final.message
    existing.details = final.details
    existing.duration = final.duration
    existing.file = existing.file or new.file
    existing.retries = retries


class _Handler:
    """Expat callbacks: keeps only the open suites, the open testcase and one record per test.

    No tree is built, captured output (``system-out``) is never stored, and a result's text is
    kept only up to ``MAX_DETAILS``, so memory follows the number of tests, not the file size.
    """

    def __init__(self) -> None:
        self.root_seen = False
        self.root_name: str | None = None
        self.timestamp: datetime | None = None
        self.suites: list[_Suite] = []
        self.suite_count = 0
        self.position = 0
        self.cases: dict[tuple[str, str], TestCaseResult] = {}
        self._case: dict[str, str] | None = None
        self._case_depth = 0  # open elements inside the testcase
        self._results: list[_Result] = []
        self._capture: _Result | None = None
        self._capture_depth = 0

    def start(self, raw: str, attrs: dict[str, str]) -> None:
        tag = raw.rpartition(":")[2]
        if not self.root_seen:
            self.root_seen = True
            if tag not in _JUNIT_ROOTS:
                raise JUnitParseError(
                    "not_junit",
                    f"the root element is <{tag}>, not <testsuites> or <testsuite>: "
                    "this is XML but not a JUnit report",
                )
            self.root_name = attrs.get("name")
        if self._case is not None:
            self._case_depth += 1
            if self._capture is not None:
                self._capture_depth += 1
            elif self._case_depth == 1 and (tag in _RESULT_TAGS or tag in _RETRY_TAGS):
                self._capture = _Result(tag, attrs)
                self._capture_depth = 0
            return
        if tag == "testsuite":
            parent = self.suites[-1] if self.suites else None
            name = _clip(attrs.get("name"), MAX_NAME)
            self.suites.append(
                _Suite(
                    sys.intern(name) if name else (parent.name if parent else ""),
                    _clip(attrs.get("file"), 500) or (parent.file if parent else None),
                )
            )
            self.suite_count += 1
            if self.timestamp is None:
                self.timestamp = _timestamp(attrs.get("timestamp"))
        elif tag == "testcase":
            self._case = attrs
            self._case_depth = 0
            self._results = []

    def end(self, raw: str) -> None:
        if self._case is not None:
            if self._case_depth == 0:  # the testcase itself closes
                self.position += 1
                suite = self.suites[-1] if self.suites else _Suite("", None)
                case = _read_case(self._case, self._results, suite, self.position)
                self._case, self._results, self._capture = None, [], None
                known = self.cases.get(case.identity)
                if known is None:
                    self.cases[case.identity] = case
                else:
                    _fold(known, case)
                return
            self._case_depth -= 1
            if self._capture is not None:
                if self._capture_depth == 0:
                    self._results.append(self._capture)
                    self._capture = None
                else:
                    self._capture_depth -= 1
            return
        if raw.rpartition(":")[2] == "testsuite" and self.suites:
            self.suites.pop()

    def text(self, data: str) -> None:
        capture = self._capture
        if capture is None or capture.size > MAX_DETAILS:
            return
        # A retry's trace sits in <stackTrace>; other nested output (system-out) is not kept.
        if self._capture_depth and capture.tag not in _RETRY_TAGS:
            return
        capture.text.append(data)
        capture.size += len(data)


def _forbid_entity(name: str, *_args: object) -> None:
    raise EntitiesForbidden(name, None, None, None, None, None)


def _forbid_external(context: str, base: str | None, sysid: str | None, pubid: str | None) -> int:
    raise ExternalReferenceForbidden(context, base, sysid, pubid)


def _parser(handler: _Handler, *, encoding: str | None) -> xmlparser:
    parser = expat.ParserCreate(encoding)
    parser.buffer_text = True
    parser.buffer_size = _CHUNK
    parser.StartElementHandler = handler.start
    parser.EndElementHandler = handler.end
    parser.CharacterDataHandler = handler.text
    # The same refusals as defusedxml: no entity declarations, no external references.
    parser.EntityDeclHandler = _forbid_entity
    parser.UnparsedEntityDeclHandler = _forbid_entity
    parser.ExternalEntityRefHandler = _forbid_external
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    return parser


def _describe(error: expat.ExpatError, data_seen: bool) -> JUnitParseError:
    text = expat.ErrorString(error.code) if error.code else str(error)
    if not data_seen:
        return JUnitParseError("empty", "the report is empty")
    if error.code in _TRUNCATED_CODES:
        return JUnitParseError(
            "truncated", f"the report ends early (truncated?): {text} at line {error.lineno}"
        )
    return JUnitParseError(
        "not_xml",
        f"the report is not well-formed XML: {text} at line {error.lineno}, column {error.offset}",
    )


def _run(blocks: Iterator[bytes], *, encoding: str | None) -> _Handler:
    handler = _Handler()
    parser = _parser(handler, encoding=encoding)
    for block in blocks:
        parser.Parse(block, False)
    parser.Parse(b"", True)
    return handler


class _Watch:
    """Passes chunks through, noting whether any was more than blanks (empty vs broken)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self.nonblank = False

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            if not self.nonblank and chunk.strip(_BLANK):
                self.nonblank = True
            yield chunk


def _handle(source: bytes | IO[bytes]) -> _Handler:
    """Parse as is first (expat knows BOMs and declared encodings; most reports are clean),
    then, only if a forbidden character or undecodable byte stopped it, again through the
    cleaner. A stream that cannot be rewound goes through the cleaner at once."""
    rewind: int | None = None
    if not isinstance(source, bytes | bytearray | memoryview):
        rewind = source.tell() if source.seekable() else None
        if rewind is None:
            return _cleaned(source)
    watch = _Watch(_chunks(source))
    try:
        return _run(iter(watch), encoding=None)
    except expat.ExpatError as exc:
        if exc.code not in _REPAIRABLE_CODES:
            raise _describe(exc, watch.nonblank) from None
    if rewind is not None:
        source.seek(rewind)  # type: ignore[union-attr]
    return _cleaned(source)


def _cleaned(source: bytes | IO[bytes]) -> _Handler:
    cleaner = _Cleaner(_chunks(source))
    try:
        return _run(cleaner.blocks(), encoding="utf-8")
    except expat.ExpatError as exc:
        raise _describe(exc, cleaner.nonblank) from None


def parse(source: bytes | IO[bytes], *, name: str | None = None) -> Report:
    """Parse a JUnit report from bytes or a binary file; raises :class:`JUnitParseError`."""
    try:
        handler = _handle(source)
    except JUnitParseError:
        raise
    except DefusedXmlException as exc:
        raise JUnitParseError(
            "unsafe", f"the report declares XML entities or external references ({exc})"
        ) from None
    except (ValueError, LookupError, UnicodeError) as exc:
        raise JUnitParseError("not_xml", f"the report could not be decoded: {exc}") from None
    if not handler.root_seen:
        raise JUnitParseError("empty", "the report is empty")
    return Report(
        name=name or handler.root_name,
        timestamp=handler.timestamp,
        suites=handler.suite_count,
        cases=list(handler.cases.values()),
    )
