"""What the file page shows: a page of numbered text lines, or a foldable JSON tree.

Pure functions of a readable stream or a parsed value. A text page is found by counting
newlines in 1 MB chunks (never the whole file in memory); a line longer than the cap is cut,
and a JSON document too large or too deep for a tree is shown as pretty-printed text instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, BinaryIO

READ_CHUNK = 1024 * 1024
PAGE_LINES = 500
MAX_LINE_CHARS = 2000
MAX_LINE_BYTES = 2 * 1024 * 1024
TREE_MAX_NODES = 5000
TREE_MAX_DEPTH = 60
TREE_MAX_BYTES = 2 * 1024 * 1024


@dataclass
class TextPage:
    first_line: int  # number of the first line shown (1-based)
    lines: list[str]
    has_more: bool
    cut_lines: int = 0  # lines shortened to MAX_LINE_CHARS


def _skip_lines(stream: BinaryIO, count: int) -> bytes | None:
    """Read past ``count`` newlines; the bytes after the last one, or None at end of file."""
    left = count
    while left > 0:
        chunk = stream.read(READ_CHUNK)
        if not chunk:
            return None
        found = chunk.count(b"\n")
        if found < left:
            left -= found
            continue
        pos = -1
        for _ in range(left):
            pos = chunk.index(b"\n", pos + 1)
        return chunk[pos + 1 :]
    return b""


def text_page(stream: BinaryIO, *, page: int, per_page: int = PAGE_LINES) -> TextPage:
    """Lines ``(page-1)*per_page + 1`` onwards; empty ``lines`` past the end."""
    first = (page - 1) * per_page
    rest = _skip_lines(stream, first)
    if rest is None:
        return TextPage(first + 1, [], False)
    buffer = bytearray(rest)
    lines: list[str] = []
    cut = 0
    eof = False
    while len(lines) < per_page:
        newline = buffer.find(b"\n")
        if newline < 0:
            if eof:
                if buffer:
                    lines.append(_decode(bytes(buffer)))
                    buffer.clear()
                break
            if len(buffer) > MAX_LINE_BYTES:  # one enormous line: show its start
                lines.append(_decode(bytes(buffer[: MAX_LINE_CHARS * 4])))
                cut += 1
                after = _skip_lines(stream, 1)
                eof = after is None
                buffer = bytearray(after or b"")
                continue
            chunk = stream.read(READ_CHUNK)
            if not chunk:
                eof = True
            buffer += chunk
            continue
        raw = bytes(buffer[:newline]).removesuffix(b"\r")
        del buffer[: newline + 1]
        text = _decode(raw)
        if len(text) > MAX_LINE_CHARS:
            text = text[:MAX_LINE_CHARS]
            cut += 1
        lines.append(text)
    has_more = bool(buffer) or (not eof and bool(stream.read(1)))
    return TextPage(first + 1, lines, has_more, cut)


def _decode(raw: bytes) -> str:
    text = raw.removeprefix(b"\xef\xbb\xbf").decode("utf-8", "replace")
    return text[: MAX_LINE_CHARS + 1]


@dataclass
class Node:
    """One value of a JSON tree: a container (``children``) or a scalar (``text``)."""

    key: str | None
    kind: str  # object, array, string, number, boolean, null
    text: str = ""
    children: list[Node] = field(default_factory=list)
    size: int = 0  # members of a container

    @property
    def is_container(self) -> bool:
        return self.kind in ("object", "array")


class TooLarge(Exception):
    pass


def json_tree(value: Any) -> Node:
    """The tree of a parsed JSON value; ``TooLarge`` past the node or depth caps."""
    count = [0]

    def build(key: str | None, item: Any, depth: int) -> Node:
        count[0] += 1
        if count[0] > TREE_MAX_NODES or depth > TREE_MAX_DEPTH:
            raise TooLarge
        if isinstance(item, dict):
            children = [build(str(k), v, depth + 1) for k, v in item.items()]
            return Node(key, "object", children=children, size=len(children))
        if isinstance(item, list):
            children = [build(str(i), v, depth + 1) for i, v in enumerate(item)]
            return Node(key, "array", children=children, size=len(children))
        if isinstance(item, str):
            return Node(key, "string", json.dumps(item, ensure_ascii=False))
        if isinstance(item, bool):
            return Node(key, "boolean", "true" if item else "false")
        if item is None:
            return Node(key, "null", "null")
        return Node(key, "number", json.dumps(item))

    return build(None, value, 0)


def parse_json(data: bytes) -> Any:
    """The document, or ``ValueError``; a UTF-8 BOM is allowed."""
    try:
        return json.loads(data.removeprefix(b"\xef\xbb\xbf"))
    except RecursionError:
        raise ValueError("nested too deeply to show as a tree") from None
