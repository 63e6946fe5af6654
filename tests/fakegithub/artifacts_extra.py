"""Artifact zips for the artifact tests: a normal one with every kind of file, and hostile ones.

The hostile zips are built byte by byte where ``zipfile`` would not write them (a symlink entry,
a header that lies about the size), so the tests see what an attacker could upload:

| name | what it does |
| --- | --- |
| ``traversal`` | ``../../outside/pwned.txt`` next to a normal file |
| ``absolute`` | ``/tmp/cipulse-pwned.txt`` |
| ``backslash`` | ``..\\..\\pwned.txt`` (a Windows traversal) |
| ``drive`` | ``C:/pwned.txt`` |
| ``symlink`` | an entry with the symlink mode bit pointing to ``/etc/passwd``, then a file
  written "through" it |
| ``lying-bomb`` | 64 MB of zeros whose headers say 1,000 bytes |
| ``bomb`` | 30 files of 900 kB of zeros, honest headers: each under the limits, together
  about 1,000 times the zip's size |
| ``many-files`` | ``many_files`` small files |
| ``oversized`` | one file of ``oversized_mb`` MB of random bytes (does not compress) |

``add_hostile_artifacts(scenario, run_id)`` adds them all to a run; ``normal_zip()`` is an
artifact with a PNG, JSON, text, a JUnit report, an HTML page, an SVG and a binary file.
"""

from __future__ import annotations

import functools
import io
import json
import os
import stat
import struct
import zipfile
import zlib
from collections.abc import Mapping

from tests.fakegithub.scenario import Artifact, Scenario

WHEN = (2026, 11, 1, 10, 0, 0)
BOMB_BYTES = 64 * 1024 * 1024
LIE_BYTES = 1000


def png(width: int = 48, height: int = 32) -> bytes:
    """A real PNG (a colour gradient), made without an imaging library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(
        b"\x00" + b"".join(bytes((x * 5 % 256, y * 8 % 256, 180)) for x in range(width))
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


JUNIT = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<testsuite name="pytest" tests="2" failures="1">\n'
    b'  <testcase classname="tests.test_api" name="test_ok" time="0.01"/>\n'
    b'  <testcase classname="tests.test_api" name="test_bad" time="0.02">'
    b'<failure message="assert 1 == 2">AssertionError</failure></testcase>\n'
    b"</testsuite>\n"
)
REPORT = {
    "summary": {"passed": 41, "failed": 1, "duration_sec": 12.5},
    "tests": [{"name": f"test_{i}", "outcome": "passed"} for i in range(3)],
    "coverage": {"lines": 0.873, "branches": None, "ok": True},
}
HTML = b"<!doctype html><html><body><script>document.title='pwned'</script>hi</body></html>\n"
SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b"<script>alert(1)</script></svg>\n"
)


def normal_files() -> dict[str, bytes]:
    log = "".join(f"step {i}: ok\n" for i in range(1, 1201)).encode()
    return {
        "screenshots/home.png": png(),
        "report.json": json.dumps(REPORT, indent=None).encode(),
        "logs/build.log": log,
        "junit/results.xml": JUNIT,
        "coverage/index.html": HTML,
        "badge.svg": SVG,
        "bin/tool.bin": bytes(range(256)) * 4,
        "notes/README": "Olá, 世界 — plain text without an extension\n".encode(),
    }


def make(files: Mapping[str, bytes], *, method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=WHEN)
            info.compress_type = method
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def normal_zip() -> bytes:
    return make(normal_files())


def symlink_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        link = zipfile.ZipInfo("etc", date_time=WHEN)
        link.create_system = 3
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc")
        archive.writestr(zipfile.ZipInfo("etc/pwned.txt", date_time=WHEN), b"through the link")
    return buffer.getvalue()


@functools.cache
def lying_bomb_zip() -> bytes:
    """64 MB of zeros in about 64 kB, whose local and central headers both say 1,000 bytes."""
    data = make({"zeros.bin": bytes(BOMB_BYTES)})
    raw = bytearray(data)
    real = struct.pack("<I", BOMB_BYTES)
    lie = struct.pack("<I", LIE_BYTES)
    local = raw.index(b"PK\x03\x04")
    assert raw[local + 22 : local + 26] == real
    raw[local + 22 : local + 26] = lie
    central = raw.index(b"PK\x01\x02")
    assert raw[central + 24 : central + 28] == real
    raw[central + 24 : central + 28] = lie
    return bytes(raw)


@functools.cache
def ratio_bomb_zip() -> bytes:
    return make({f"z/{i:02}.bin": bytes(900 * 1024) for i in range(30)})


def many_files_zip(count: int) -> bytes:
    return make({f"f/{i:05}.txt": b"x" for i in range(count)})


def oversized_zip(megabytes: float) -> bytes:
    return make({"big.bin": os.urandom(int(megabytes * 1024 * 1024))}, method=zipfile.ZIP_STORED)


def hostile_zips(*, many_files: int = 60, oversized_mb: float = 2.0) -> dict[str, bytes]:
    ok = b"an innocent file"
    return {
        "traversal": make({"fine.txt": ok, "../../outside/pwned.txt": b"escaped"}),
        "absolute": make({"/tmp/cipulse-pwned.txt": b"escaped"}),
        "backslash": make({"..\\..\\pwned.txt": b"escaped"}),
        "drive": make({"C:/pwned.txt": b"escaped"}),
        "symlink": symlink_zip(),
        "lying-bomb": lying_bomb_zip(),
        "bomb": ratio_bomb_zip(),
        "many-files": many_files_zip(many_files),
        "oversized": oversized_zip(oversized_mb),
    }


def add_hostile_artifacts(
    scenario: Scenario, run_id: int, *, many_files: int = 60, oversized_mb: float = 2.0
) -> dict[str, Artifact]:
    zips = hostile_zips(many_files=many_files, oversized_mb=oversized_mb)
    return {
        name: scenario.add_artifact(run_id, name, zip_bytes=data) for name, data in zips.items()
    }
