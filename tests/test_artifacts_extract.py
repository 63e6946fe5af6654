"""The pure parts of artifacts: entry names, streaming limits, classification, serving headers,
the text pager and the JSON tree."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cipulse.artifacts import classify, extract, serving, viewer
from tests.fakegithub import artifacts_extra as zips

LIMITS = extract.Limits(max_files=50, max_total_bytes=64 << 20, max_file_bytes=8 << 20)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.txt", "a.txt"),
        ("dir/sub/b.json", "dir/sub/b.json"),
        ("./dir//c.txt", "dir/c.txt"),
        ("résumé/ファイル.txt", "résumé/ファイル.txt"),
    ],
)
def test_safe_names_pass(name: str, expected: str) -> None:
    assert extract.safe_path(name) == expected


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../x", "'..'"),
        ("a/../../x", "'..'"),
        ("/etc/passwd", "absolute"),
        ("C:/x", "drive"),
        ("c:x", "drive"),
        ("a\\..\\x", "backslash"),
        ("a\x00b", "control"),
        ("a/\nb", "control"),
        ("", "empty"),
        ("./", "no file name"),
        ("a/b:stream", "':'"),
        ("x" * 300, "too long"),
    ],
)
def test_unsafe_names_are_refused(name: str, reason: str) -> None:
    with pytest.raises(extract.Refused, match=reason):
        extract.safe_path(name)


@given(st.text(max_size=80))
def test_no_name_escapes_its_folder(name: str) -> None:
    try:
        path = extract.safe_path(name)
    except extract.Refused:
        return
    parts = path.split("/")
    assert ".." not in parts and "" not in parts and "." not in parts
    assert not path.startswith("/") and "\\" not in path and ":" not in path


class Counting:
    """A sink that keeps what was written, per file, and counts every byte."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.bytes = 0

    @contextmanager
    def __call__(self, path: str) -> Iterator[BinaryIO]:
        out = io.BytesIO()
        real_write = out.write

        def write(data: bytes) -> int:  # type: ignore[override]
            self.bytes += len(data)
            return real_write(data)

        out.write = write  # type: ignore[method-assign]
        yield out
        self.files[path] = out.getvalue()


def _zip(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "a.zip"
    path.write_bytes(data)
    return path


def test_lying_bomb_stops_within_the_first_chunk(tmp_path: Path) -> None:
    sink = Counting()
    with pytest.raises(extract.Refused, match="inflates past the 1,000 bytes its header declares"):
        extract.extract(_zip(tmp_path, zips.lying_bomb_zip()), sink, extract.Limits())
    assert sink.bytes <= extract.CHUNK  # 64 MB inside; nothing past the first chunk written
    assert sink.files == {}


def test_ratio_bomb_stops_early(tmp_path: Path) -> None:
    sink = Counting()
    data = zips.ratio_bomb_zip()
    with pytest.raises(extract.Refused, match="inflates more than 200 times"):
        extract.extract(_zip(tmp_path, data), sink, extract.Limits())
    assert sink.bytes <= 200 * len(data) + extract.CHUNK  # about 6 MB of 27 MB


def test_actual_bytes_count_against_the_file_limit(tmp_path: Path) -> None:
    """A header that says 1,000 bytes does not let 2 MB through."""
    data = bytearray(zips.oversized_zip(2))
    real = (2 * 1024 * 1024).to_bytes(4, "little")
    for marker, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.index(marker) + offset
        assert data[at : at + 4] == real
        data[at : at + 4] = (1000).to_bytes(4, "little")
    sink = Counting()
    with pytest.raises(extract.Refused, match="header"):
        extract.extract(_zip(tmp_path, bytes(data)), sink, LIMITS)
    assert sink.bytes <= extract.CHUNK


def test_entry_count_is_read_before_the_central_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _zip(tmp_path, zips.many_files_zip(3000))
    opened: list[object] = []
    monkeypatch.setattr(zipfile, "ZipFile", lambda *a, **k: opened.append(a))
    with pytest.raises(extract.Refused, match="lists 3,000 entries"):
        extract.extract(path, Counting(), LIMITS)
    assert opened == []  # refused from the end record alone


def test_total_size_limit(tmp_path: Path) -> None:
    limits = extract.Limits(max_total_bytes=1000)
    data = zips.make({"a.txt": b"a" * 600, "b.txt": b"b" * 600})
    with pytest.raises(extract.Refused, match="add up to"):
        extract.extract(_zip(tmp_path, data), Counting(), limits)


@pytest.mark.parametrize(
    ("files", "reason"),
    [
        ({"a": b"1", "a/b": b"2"}, "both a file and a folder"),
        ({"Readme": b"1", "README": b"2"}, "two entries"),
    ],
)
def test_colliding_names_are_refused(tmp_path: Path, files: dict[str, bytes], reason: str) -> None:
    with pytest.raises(extract.Refused, match=reason):
        extract.extract(_zip(tmp_path, zips.make(files)), Counting(), LIMITS)


def test_directories_and_normal_files(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("docs/", b"")
        archive.writestr("docs/a.txt", b"hello")
    sink = Counting()
    result = extract.extract(_zip(tmp_path, buffer.getvalue()), sink, LIMITS)
    assert sink.files == {"docs/a.txt": b"hello"}
    assert result.skipped_dirs == 1 and result.total_bytes == 5


@given(st.binary(max_size=400))
def test_any_bytes_are_extracted_or_refused(data: bytes) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "x.zip"
        path.write_bytes(b"PK\x03\x04" + data)
        with suppress(extract.Refused):
            extract.extract(path, Counting(), LIMITS)


NORMAL = zips.normal_zip()


@given(st.lists(st.tuples(st.integers(0, len(NORMAL) - 1), st.integers(0, 255)), max_size=8))
def test_a_damaged_zip_is_extracted_or_refused(changes: list[tuple[int, int]]) -> None:
    """Bytes of a real zip overwritten anywhere (headers, sizes, names, data): never a crash."""
    import tempfile

    data = bytearray(NORMAL)
    for at, value in changes:
        data[at] = value
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "x.zip"
        path.write_bytes(bytes(data))
        with suppress(extract.Refused):
            result = extract.extract(path, Counting(), LIMITS)
            assert all(f.size <= LIMITS.max_file_bytes for f in result.files)


@pytest.mark.parametrize(
    ("path", "data", "kind", "content_type"),
    [
        ("shot.png", zips.png(), "image", "image/png"),
        ("no-extension", zips.png(), "image", "image/png"),
        ("fake.png", b"<html><script>x</script>", "text", "text/plain"),
        ("photo.jpg", b"\xff\xd8\xff\xe0" + bytes(20), "image", "image/jpeg"),
        ("report.json", b'{"a": [1, 2]}', "json", "application/json"),
        ("data", b'\xef\xbb\xbf [{"a": 1}]', "json", "application/json"),
        ("broken.json", b'{"a": ', "text", "text/plain"),
        ("notes.txt", b'{"looks": "like json"}', "text", "text/plain"),
        ("build.log", "δ ✓\n".encode(), "text", "text/plain"),
        ("pic.svg", zips.SVG, "text", "text/plain"),
        ("blob", bytes(range(256)), "binary", "application/octet-stream"),
        ("latin1.txt", "café".encode("latin-1"), "binary", "application/octet-stream"),
    ],
)
def test_classification_by_content_then_extension(
    path: str, data: bytes, kind: str, content_type: str
) -> None:
    found = classify.classify(path, data[:8192], size=len(data), read_all=data)
    assert (found.kind, found.content_type) == (kind, content_type)


def test_a_character_cut_by_the_head_is_still_text() -> None:
    data = ("x" * 8191 + "é").encode()
    assert classify.looks_textual(data[:8192])


def test_serving_headers() -> None:
    media, headers = serving.headers(
        path="a/rapport été.html", kind="text", head=b"<!doctype html>",
        sha256="ab", download=False,
    )  # fmt: skip
    assert media == "text/plain; charset=utf-8"
    assert headers["Content-Disposition"].startswith('attachment; filename="rapport _t_.html"')
    assert "filename*=UTF-8''rapport%20%C3%A9t%C3%A9.html" in headers["Content-Disposition"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    # Text whose first bytes are HTML is an attachment whatever its name.
    _, sniffed = serving.headers(
        path="out.txt", kind="text", head=b"  <html>", sha256="ab",
        download=False,
    )  # fmt: skip
    assert sniffed["Content-Disposition"].startswith("attachment")
    # An "image" whose bytes are not a raster image (storage tampered with) is a download.
    media, fake = serving.headers(
        path="x.png", kind="image", head=b"<svg onload=alert(1)>", sha256="ab", download=False
    )
    assert media == "application/octet-stream"
    assert fake["Content-Disposition"].startswith("attachment")


def test_text_pages() -> None:
    data = b"".join(b"line %d\r\n" % i for i in range(1, 1101))
    first = viewer.text_page(io.BytesIO(data), page=1)
    assert (first.first_line, len(first.lines), first.has_more) == (1, 500, True)
    assert first.lines[0] == "line 1"
    last = viewer.text_page(io.BytesIO(data), page=3)
    assert (last.first_line, last.lines[-1], last.has_more) == (1001, "line 1100", False)
    assert viewer.text_page(io.BytesIO(data), page=4).lines == []
    assert viewer.text_page(io.BytesIO(b"no newline"), page=1).lines == ["no newline"]
    huge = viewer.text_page(io.BytesIO(b"x" * 3_000_000 + b"\nafter\n"), page=1)
    assert huge.cut_lines == 1 and huge.lines[1] == "after"
    assert len(huge.lines[0]) <= viewer.MAX_LINE_CHARS + 1


def test_json_tree_and_its_caps() -> None:
    tree = viewer.json_tree({"a": [1, "x", None, True], "b": {}})
    assert tree.kind == "object" and tree.size == 2
    a = tree.children[0]
    assert (a.key, a.kind, a.size) == ("a", "array", 4)
    assert [c.text for c in a.children] == ["1", '"x"', "null", "true"]
    with pytest.raises(viewer.TooLarge):
        viewer.json_tree(list(range(viewer.TREE_MAX_NODES + 1)))
    deep: object = 1
    for _ in range(viewer.TREE_MAX_DEPTH + 2):
        deep = [deep]
    with pytest.raises(viewer.TooLarge):
        viewer.json_tree(deep)
    with pytest.raises(ValueError):
        viewer.parse_json(b"[" * 100_000)
    assert viewer.parse_json(b"\xef\xbb\xbf" + json.dumps({"k": 1}).encode()) == {"k": 1}
