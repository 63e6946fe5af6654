"""What an extracted file is (design D: image, json, text or binary) and how it may be served.

Content decides first, the extension second: a ``.png`` that is really HTML is not an image, and
a report without an extension that starts with ``{`` is JSON. Only raster images are images: an
SVG can carry script, so it is text (its source is shown) and is downloaded, never rendered.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

IMAGE = "image"
JSON = "json"
TEXT = "text"
BINARY = "binary"
KINDS = (IMAGE, JSON, TEXT, BINARY)

# Sniffed raster formats: magic bytes -> content type.
_IMAGES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
)
TEXT_EXTENSIONS = {
    "txt", "log", "md", "rst", "csv", "tsv", "xml", "html", "htm", "svg", "yml", "yaml",
    "toml", "ini", "cfg", "conf", "py", "js", "ts", "css", "sh", "out", "err", "diff", "patch",
    "lcov", "info", "sql", "tap", "properties", "gradle", "java", "kt", "go", "rs", "c", "h",
}  # fmt: skip
# Served as attachments even though they are text: a browser would run them as documents.
ACTIVE_EXTENSIONS = {"html", "htm", "xhtml", "shtml", "svg", "svgz", "xml", "xsl", "xslt", "mht"}
JSON_PARSE_LIMIT = 16 * 1024 * 1024


@dataclass(frozen=True)
class Kind:
    kind: str
    content_type: str


def extension(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


def image_type(head: bytes) -> str | None:
    for magic, content_type in _IMAGES:
        if head.startswith(magic):
            return content_type
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def looks_textual(head: bytes, *, complete: bool = False) -> bool:
    """UTF-8 (or ASCII) without NUL bytes; a character cut at the end of the head is fine,
    unless the head is the ``complete`` file."""
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        cut = exc.start >= len(head) - 3 and exc.reason == "unexpected end of data"
        return cut and not complete
    return True


def _json_start(head: bytes) -> bool:
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    return text[:1] in (b"{", b"[")


def classify(path: str, head: bytes, *, size: int, read_all: bytes | None = None) -> Kind:
    """``head`` is the file's first bytes; ``read_all`` the whole file when it is small enough
    to check that JSON really parses (a ``.json`` that does not parse is shown as text)."""
    ext = extension(path)
    image = image_type(head)
    if image is not None:
        return Kind(IMAGE, image)
    if not looks_textual(head, complete=size <= len(head)):
        return Kind(BINARY, "application/octet-stream")
    json_like = ext == "json" or (_json_start(head) and ext not in TEXT_EXTENSIONS)
    if json_like and (read_all is None or _parses(read_all)):
        return Kind(JSON, "application/json")
    return Kind(TEXT, "text/plain")


def _parses(data: bytes) -> bool:
    try:
        json.loads(data.removeprefix(b"\xef\xbb\xbf"))
    except (ValueError, RecursionError):
        return False
    return True


def is_active(path: str, head: bytes) -> bool:
    """Would a browser treat this as a document able to run script, whatever we label it?"""
    if extension(path) in ACTIVE_EXTENSIONS:
        return True
    start = head.removeprefix(b"\xef\xbb\xbf").lstrip()[:256].lower()
    return start.startswith((b"<!doctype", b"<html", b"<svg", b"<?xml", b"<script"))
