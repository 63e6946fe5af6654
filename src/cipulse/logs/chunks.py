"""The stored form of a job log: independent gzip members plus an index.

``log.gz`` is a series of gzip members of about 1 MB of text each, cut at line ends (so the file
as a whole is still one valid gzip stream for any tool). ``index.json`` names, for each member,
its first line number, byte offset and length, and the fold open where it starts, plus the
log's errors and warnings. A page of the viewer therefore reads one or two members, never the
whole log; a search or a download walks the members one at a time.
"""

from __future__ import annotations

import bisect
import gzip
import json
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from cipulse.logs import parse
from cipulse.storage import Storage, safe_key

CHUNK_BYTES = 1024 * 1024
MAX_ISSUES = 1000  # errors and warnings listed in the index; the counts stay exact
INDEX_VERSION = 1
LOG_FILE = "log.gz"
INDEX_FILE = "index.json"


@dataclass(frozen=True)
class Chunk:
    first_line: int
    offset: int
    length: int  # compressed bytes
    lines: int
    group_line: int | None  # the ``##[group]`` open where this chunk starts, if any
    group_title: str | None


@dataclass
class Index:
    lines: int = 0
    raw_bytes: int = 0
    chunks: list[Chunk] = field(default_factory=list)
    issues: list[tuple[int, str, str]] = field(default_factory=list)  # (line, kind, text)
    errors: int = 0
    warnings: int = 0
    first_error: tuple[int, str] | None = None

    @property
    def compressed_bytes(self) -> int:
        return sum(c.length for c in self.chunks)

    def chunk_for(self, line: int) -> int:
        """Position in ``chunks`` of the chunk holding ``line`` (clamped to the log)."""
        starts = [c.first_line for c in self.chunks]
        return max(0, bisect.bisect_right(starts, line) - 1)

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "version": INDEX_VERSION,
                "lines": self.lines,
                "raw_bytes": self.raw_bytes,
                "chunks": [
                    [c.first_line, c.offset, c.length, c.lines, c.group_line, c.group_title]
                    for c in self.chunks
                ],
                "issues": [list(i) for i in self.issues],
                "errors": self.errors,
                "warnings": self.warnings,
                "first_error": list(self.first_error) if self.first_error else None,
            },
            separators=(",", ":"),
        ).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Index:
        data: dict[str, Any] = json.loads(raw)
        if data.get("version") != INDEX_VERSION:
            raise ValueError(f"log index version {data.get('version')!r} is not supported")
        first = data.get("first_error")
        return cls(
            lines=int(data["lines"]),
            raw_bytes=int(data["raw_bytes"]),
            chunks=[Chunk(*c) for c in data["chunks"]],
            issues=[(int(i[0]), str(i[1]), str(i[2])) for i in data["issues"]],
            errors=int(data["errors"]),
            warnings=int(data["warnings"]),
            first_error=(int(first[0]), str(first[1])) if first else None,
        )


_MARKERS = re.compile(rb"##\[|::")


def _marker_lines(block: bytes, first: int) -> Iterator[tuple[int, bytes]]:
    """(line number, line) of each line of ``block`` that holds ``##[`` or ``::``."""
    counted_to = 0
    number = first
    position = 0
    while True:
        match = _MARKERS.search(block, position)
        if match is None:
            return
        start = block.rfind(b"\n", 0, match.start()) + 1
        end = block.find(b"\n", match.end())
        end = len(block) if end == -1 else end
        number += block.count(b"\n", counted_to, start)
        counted_to = start
        yield number, block[start:end]
        position = end + 1


class ChunkWriter:
    """Feeds raw lines in, writes gzip members out, and builds the index on the way."""

    def __init__(self, out: BinaryIO, *, chunk_bytes: int = CHUNK_BYTES) -> None:
        self.out = out
        self.chunk_bytes = chunk_bytes
        self.index = Index()
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._buffer_first = 1
        self._offset = 0
        self._group: tuple[int, str] | None = None  # open fold: (line, title)
        self._chunk_group: tuple[int, str] | None = None
        self._fallback_error: tuple[int, str] | None = None
        self._specific_error: tuple[int, str] | None = None
        self._unterminated = False
        self._buffer_lines = 0

    def add(self, block: bytes) -> None:
        """Whole lines, each with its ``\\n``; only the log's last line may come without one.

        Lines are counted and scanned for markers in C (``count``, ``find``): only lines that
        hold ``##[`` or ``::`` are parsed in Python, so a 100 MB log is stored at disk speed.
        """
        if not block:
            return
        if self._unterminated:
            raise ValueError("a line without its line end can only be the last one")
        self._unterminated = not block.endswith(b"\n")
        if self._buffer and self._buffered + len(block) > self.chunk_bytes:
            self._flush()
        first = self.index.lines + 1
        if not self._buffer:
            self._buffer_first = first
            self._chunk_group = self._group
        lines = block.count(b"\n") + (1 if self._unterminated else 0)
        self._buffer.append(block)
        self._buffered += len(block)
        self._buffer_lines += lines
        self.index.lines += lines
        self.index.raw_bytes += len(block)
        for number, line in _marker_lines(block, first):
            self._note(parse.parse_line(parse.decode(line), number))
        if self._buffered >= self.chunk_bytes:
            self._flush()

    def _note(self, line: parse.LogLine) -> None:
        if line.kind == "group":
            self._group = (line.number, line.plain[:500])
        elif line.kind == "endgroup":
            self._group = None
        elif line.kind in parse.ISSUE_KINDS:
            text = line.plain[:500]
            if line.kind == "error":
                self.index.errors += 1
                if self._fallback_error is None:
                    self._fallback_error = (line.number, text)
                if self._specific_error is None and not parse.is_generic_error(line):
                    self._specific_error = (line.number, text)
            else:
                self.index.warnings += 1
            if len(self.index.issues) < MAX_ISSUES:
                self.index.issues.append((line.number, line.kind, text))

    def _flush(self) -> None:
        if not self._buffer:
            return
        member = gzip.compress(b"".join(self._buffer), compresslevel=6, mtime=0)
        group = self._chunk_group
        self.index.chunks.append(
            Chunk(
                first_line=self._buffer_first,
                offset=self._offset,
                length=len(member),
                lines=self._buffer_lines,
                group_line=group[0] if group else None,
                group_title=group[1] if group else None,
            )
        )
        self.out.write(member)
        self._offset += len(member)
        self._buffer = []
        self._buffered = 0
        self._buffer_lines = 0

    def close(self) -> Index:
        self._flush()
        self.index.first_error = self._specific_error or self._fallback_error
        return self.index


def write_log(storage: Storage, prefix: str, source: BinaryIO) -> Index:
    """Store the log read from ``source`` under ``prefix``; the index is written last."""
    with storage.open_write(safe_key(prefix, LOG_FILE)) as out:
        writer = ChunkWriter(out)
        for block in parse.iter_blocks(source, CHUNK_BYTES):
            writer.add(block)
        index = writer.close()
    with storage.open_write(safe_key(prefix, INDEX_FILE)) as out:
        out.write(index.to_json())
    return index


def read_index(storage: Storage, prefix: str) -> Index:
    with storage.open_read(safe_key(prefix, INDEX_FILE)) as handle:
        return Index.from_json(handle.read())


def read_chunk_text(storage: Storage, prefix: str, chunk: Chunk) -> str:
    member = storage.read_range(
        safe_key(prefix, LOG_FILE), chunk.offset, chunk.offset + chunk.length
    )
    return parse.decode(zlib.decompress(member, wbits=31))


def read_chunk(storage: Storage, prefix: str, chunk: Chunk) -> list[str]:
    """The chunk's lines as text, without their line ends."""
    lines = read_chunk_text(storage, prefix, chunk).split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def iter_chunks(
    storage: Storage, prefix: str, index: Index, start: int = 0
) -> Iterator[tuple[Chunk, list[str]]]:
    """Every chunk from position ``start`` on, read one at a time."""
    for chunk in index.chunks[start:]:
        yield chunk, read_chunk(storage, prefix, chunk)


def iter_raw(storage: Storage, prefix: str, index: Index) -> Iterator[bytes]:
    """The log's original bytes, one decompressed member at a time (for the download)."""
    with storage.open_read(safe_key(prefix, LOG_FILE)) as handle:
        for chunk in index.chunks:
            handle.seek(chunk.offset)
            member = handle.read(chunk.length)
            yield zlib.decompress(member, wbits=31)
