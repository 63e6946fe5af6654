"""Pure parsing of GitHub Actions job logs, one line at a time.

A raw line is ``<timestamp> <text>``: the runner's UTC timestamp with seven fraction digits, then
the text, which may open or close a fold (``##[group]``/``##[endgroup]``), mark an annotation
(``##[error]``, ``##[warning]``, ``##[notice]``; the ``::error::`` workflow-command form when it
reaches the log unconverted) and carry ANSI colour codes. Nothing here does I/O, so the stored
chunks, the viewer, the search and the fuzz tests all share one reading of a line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from html import escape
from typing import BinaryIO, Literal

Kind = Literal[
    "text", "group", "endgroup", "error", "warning", "notice", "debug", "command", "section"
]
ISSUE_KINDS = frozenset({"error", "warning"})
MAX_LINE_BYTES = 1024 * 1024  # longer lines are cut into pieces of this size

_TIMESTAMP = re.compile(r"(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(\.\d{1,9})?Z(?: |$)")
_MARKER = re.compile(
    r"##\[(group|endgroup|error|warning|notice|debug|command|section)\]", re.IGNORECASE
)
_COMMAND = re.compile(
    r"::(error|warning|notice|debug|group|endgroup)(?:\s+([^:]*))?::(.*)", re.IGNORECASE | re.DOTALL
)
# CSI sequences (SGR and cursor/erase codes), OSC sequences and lone two-byte escapes.
_ESCAPE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b\n]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]?")
_SGR = re.compile(r"\x1b\[([0-9;:]*)m")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# The runner's last words on a failed step; an earlier, more specific error is worth more.
_GENERIC_ERROR = re.compile(r"^Process completed with exit code \d+\.?$")


@dataclass(frozen=True, slots=True)
class LogLine:
    number: int  # 1-based, as GitHub numbers the lines of a job log
    timestamp: str | None  # ISO 8601 as the runner wrote it
    kind: Kind
    text: str  # the line after the timestamp and marker; ANSI codes kept
    title: str | None = None  # workflow-command properties (``file=a.py,line=3``)

    @property
    def plain(self) -> str:
        return strip_ansi(self.text)

    @property
    def short_time(self) -> str | None:
        return compact_time(self.timestamp)


def parse_line(raw: str, number: int) -> LogLine:
    """One line of a job log; never raises, whatever the text."""
    text = raw.rstrip("\r\n").lstrip("\ufeff")
    timestamp = None
    match = _TIMESTAMP.match(text)
    if match:
        timestamp = match.group(0).rstrip(" ")
        text = text[match.end() :].lstrip("\ufeff")
    head = _leading_ansi(text)
    rest = text[head:]
    marker = _MARKER.match(rest)
    if marker:
        kind: Kind = marker.group(1).lower()  # type: ignore[assignment]
        return LogLine(number, timestamp, kind, rest[marker.end() :])
    command = _COMMAND.match(rest)
    if command:
        name: Kind = command.group(1).lower()  # type: ignore[assignment]
        props = (command.group(2) or "").strip() or None
        return LogLine(number, timestamp, name, command.group(3), props)
    return LogLine(number, timestamp, "text", text)


def _leading_ansi(text: str) -> int:
    """How many characters of escape codes come before the first visible one."""
    position = 0
    while text.startswith("\x1b", position):
        match = _ESCAPE.match(text, position)
        if not match or match.end() == position:
            break
        position = match.end()
    return position


def compact_time(timestamp: str | None) -> str | None:
    """``2024-07-08T16:48:09.3750041Z`` as ``16:48:09``: the date is in the tooltip."""
    if not timestamp:
        return None
    match = _TIMESTAMP.match(timestamp)
    return match.group(2) if match else None


def strip_ansi(text: str) -> str:
    """The text as a terminal would show it, without colours: also after the last ``\\r``."""
    return _CONTROL.sub("", _ESCAPE.sub("", _last_carriage_segment(text)))


def _last_carriage_segment(text: str) -> str:
    if "\r" not in text:
        return text
    parts = [p for p in text.split("\r") if p]
    return parts[-1] if parts else ""


# -- ANSI colours to HTML -------------------------------------------------------------------


@dataclass(slots=True)
class _Style:
    fg: str | None = None  # a class suffix ("1", "b3") or "#rrggbb"
    bg: str | None = None
    bold: bool = False
    dim: bool = False
    italic: bool = False
    underline: bool = False

    def empty(self) -> bool:
        return not (self.fg or self.bg or self.bold or self.dim or self.italic or self.underline)

    def open_tag(self) -> str:
        classes = []
        styles = []
        for layer, value in (("fg", self.fg), ("bg", self.bg)):
            if value is None:
                continue
            if value.startswith("#"):
                styles.append(f"{'color' if layer == 'fg' else 'background-color'}:{value}")
            else:
                classes.append(f"ansi-{layer}-{value}")
        for flag, name in (
            (self.bold, "bold"),
            (self.dim, "dim"),
            (self.italic, "italic"),
            (self.underline, "underline"),
        ):
            if flag:
                classes.append(f"ansi-{name}")
        attrs = f' class="{" ".join(classes)}"' if classes else ""
        if styles:
            attrs += f' style="{";".join(styles)}"'
        return f"<span{attrs}>"


_CUBE = (0, 95, 135, 175, 215, 255)


def _color_256(index: int) -> str:
    if index < 8:
        return str(index)
    if index < 16:
        return f"b{index - 8}"
    if index < 232:
        index -= 16
        r, g, b = _CUBE[index // 36], _CUBE[(index // 6) % 6], _CUBE[index % 6]
        return f"#{r:02x}{g:02x}{b:02x}"
    grey = 8 + (index - 232) * 10
    return f"#{grey:02x}{grey:02x}{grey:02x}"


def _apply_sgr(style: _Style, params: str) -> None:
    codes = [int(p) if p.isdigit() and len(p) < 6 else 0 for p in re.split("[;:]", params)]
    i = 0
    while i < len(codes):
        code = codes[i]
        if code == 0:
            style.fg = style.bg = None
            style.bold = style.dim = style.italic = style.underline = False
        elif code == 1:
            style.bold = True
        elif code == 2:
            style.dim = True
        elif code == 3:
            style.italic = True
        elif code == 4:
            style.underline = True
        elif code == 22:
            style.bold = style.dim = False
        elif code == 23:
            style.italic = False
        elif code == 24:
            style.underline = False
        elif 30 <= code <= 37:
            style.fg = str(code - 30)
        elif 90 <= code <= 97:
            style.fg = f"b{code - 90}"
        elif 40 <= code <= 47:
            style.bg = str(code - 40)
        elif 100 <= code <= 107:
            style.bg = f"b{code - 100}"
        elif code == 39:
            style.fg = None
        elif code == 49:
            style.bg = None
        elif code in (38, 48):
            value, used = _extended_color(codes[i + 1 :])
            if value is not None:
                if code == 38:
                    style.fg = value
                else:
                    style.bg = value
            i += used
        i += 1


def _extended_color(rest: list[int]) -> tuple[str | None, int]:
    """``5;n`` (256 colours) or ``2;r;g;b`` (true colour); returns the colour and codes used."""
    if len(rest) >= 2 and rest[0] == 5:
        return (_color_256(rest[1]) if rest[1] < 256 else None), 2
    if len(rest) >= 4 and rest[0] == 2:
        r, g, b = (min(v, 255) for v in rest[1:4])
        return f"#{r:02x}{g:02x}{b:02x}", 4
    return None, len(rest)


def ansi_to_html(text: str) -> str:
    """Escaped HTML of the line with its SGR colours as spans; other escapes are dropped."""
    text = _last_carriage_segment(text)
    out: list[str] = []
    style = _Style()
    open_span = False
    position = 0
    for match in _ESCAPE.finditer(text):
        if match.start() > position:
            out.append(escape(_CONTROL.sub("", text[position : match.start()])))
        position = match.end()
        sgr = _SGR.fullmatch(match.group(0))
        if sgr is None:
            continue
        _apply_sgr(style, sgr.group(1))
        if open_span:
            out.append("</span>")
            open_span = False
        if not style.empty():
            out.append(style.open_tag())
            open_span = True
    if position < len(text):
        out.append(escape(_CONTROL.sub("", text[position:])))
    if open_span:
        out.append("</span>")
    return "".join(out)


# -- whole logs -----------------------------------------------------------------------------


def iter_raw_lines(stream: BinaryIO) -> Iterator[bytes]:
    """Lines of a binary stream with their ``\\n`` (the last may have none). A line over 1 MB
    is cut into lines of 1 MB, so that no reader ever holds more than that of one line."""
    while True:
        line = stream.readline(MAX_LINE_BYTES)
        if not line:
            return
        if len(line) == MAX_LINE_BYTES and not line.endswith(b"\n"):
            line += b"\n"
        yield line


def iter_blocks(stream: BinaryIO, size: int) -> Iterator[bytes]:
    """About ``size`` bytes at a time, cut after a ``\\n``: the lines of ``iter_raw_lines``,
    joined (a line over 1 MB is cut the same way), with a fraction of the Python calls."""
    carry = b""
    while True:
        data = stream.read(size)
        if not data:
            break
        data = carry + data
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            carry = data
        else:
            carry = data[cut:]
            yield data[:cut]
        while len(carry) >= MAX_LINE_BYTES:  # one line longer than the limit: cut it
            yield carry[:MAX_LINE_BYTES] + b"\n"
            carry = carry[MAX_LINE_BYTES:]
    if carry:
        yield carry


def decode(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def parse_lines(texts: Iterable[str], start: int = 1) -> Iterator[LogLine]:
    for offset, text in enumerate(texts):
        yield parse_line(text, start + offset)


def is_generic_error(line: LogLine) -> bool:
    return bool(_GENERIC_ERROR.match(line.plain.strip()))


def first_error(lines: Iterable[LogLine]) -> LogLine | None:
    """The error worth quoting: the first specific one, else the runner's exit-code line."""
    fallback = None
    for line in lines:
        if line.kind != "error":
            continue
        if not is_generic_error(line):
            return line
        if fallback is None:
            fallback = line
    return fallback
