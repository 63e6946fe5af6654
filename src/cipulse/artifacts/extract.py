"""Safe extraction of an artifact zip: every entry checked before and while it is written.

An artifact is whatever a workflow chose to upload, so its zip is untrusted input. Names are
checked first (no ``..``, absolute paths, drive letters, backslashes, control characters, links
or devices), then each entry is decompressed in chunks and its *actual* bytes counted, so a
header that lies about sizes cannot carry a zip bomb past the limits: the extraction stops at
the first chunk over a limit. Where the bytes go is the caller's ``sink``; on refusal the caller
removes what was written (the artifact's folder), so nothing half-extracted stays behind.
"""

from __future__ import annotations

import copy
import hashlib
import stat
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

CHUNK = 64 * 1024
HEAD_BYTES = 8 * 1024  # kept per file for classification and the JUnit check
MAX_NAME = 1000
MAX_SEGMENT = 255
# Below this many bytes a high compression ratio is harmless (a 10 kB file of spaces).
RATIO_FLOOR = 1024 * 1024


# What zipfile raises on damaged input: a bad header, an unknown method or version, a
# truncated stream, a name that is not UTF-8 though flagged so, an offset out of the file.
UNREADABLE = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    NotImplementedError,
    ValueError,
    OSError,
    struct.error,
    OverflowError,
)


class Refused(Exception):
    """The artifact is not extracted; ``str()`` says why, for the user."""


@dataclass(frozen=True)
class Limits:
    max_files: int = 10_000
    max_total_bytes: int = 1024 * 1024 * 1024
    max_file_bytes: int = 100 * 1024 * 1024
    max_ratio: float = 200.0


@dataclass(frozen=True)
class Entry:
    """A zip member that passed the name checks; ``path`` is the safe relative name."""

    path: str
    info: zipfile.ZipInfo


@dataclass
class Extracted:
    path: str
    size: int
    head: bytes
    sha256: str = ""


@dataclass
class Result:
    files: list[Extracted] = field(default_factory=list)
    total_bytes: int = 0
    skipped_dirs: int = 0


def safe_path(name: str) -> str:
    """The entry's name as a clean relative path, or ``Refused`` saying what is wrong with it."""
    shown = name[:120]
    if not name:
        raise Refused("an entry has an empty name")
    if "\x00" in name or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise Refused(f"entry {shown!r} has control characters in its name")
    if "\\" in name:
        raise Refused(f"entry {shown!r} uses a backslash: refused (could escape on Windows)")
    if name.startswith("/"):
        raise Refused(f"entry {shown!r} is an absolute path")
    if len(name) >= 2 and name[1] == ":" and name[0].isalpha():
        raise Refused(f"entry {shown!r} names a drive")
    parts = [p for p in name.rstrip("/").split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise Refused(f"entry {shown!r} climbs out of its folder with '..'")
    if not parts:
        raise Refused(f"entry {shown!r} has no file name")
    if len(name) > MAX_NAME or any(len(p.encode()) > MAX_SEGMENT for p in parts):
        raise Refused(f"entry {shown!r} has a name too long to store")
    if any(":" in p for p in parts):
        raise Refused(f"entry {shown!r} has ':' in a name (a drive or stream on Windows)")
    return "/".join(parts)


def _mode(info: zipfile.ZipInfo) -> int:
    """The Unix mode in the entry's high attribute bits (whatever system says it made it)."""
    return (info.external_attr >> 16) & 0xFFFF


def declared_entries(zip_path: Path) -> int | None:
    """The entry count in the zip's end record, read before ``zipfile`` loads the central
    directory (a zip listing millions of entries would take gigabytes to load). None when the
    end record is not found (``zipfile`` then says what is wrong)."""
    size = zip_path.stat().st_size
    tail_size = min(size, 65_535 + 22 + 20)
    with zip_path.open("rb") as stream:
        stream.seek(size - tail_size)
        tail = stream.read(tail_size)
        end = tail.rfind(b"PK\x05\x06")
        if end < 0 or end + 22 > len(tail):
            return None
        count = struct.unpack_from("<H", tail, end + 10)[0]
        if count != 0xFFFF or end < 20 or tail[end - 20 : end - 16] != b"PK\x06\x07":
            return int(count)
        (zip64_end,) = struct.unpack_from("<Q", tail, end - 20 + 8)
        if zip64_end + 56 > size:
            return None
        stream.seek(zip64_end)
        record = stream.read(56)
    if record[:4] != b"PK\x06\x06":
        return None
    return int(struct.unpack_from("<Q", record, 32)[0])


def plan(archive: zipfile.ZipFile, limits: Limits) -> tuple[list[Entry], int]:
    """The entries to extract (directories left out) and the number of directories seen.

    Refuses the whole artifact on the first bad entry: a zip with one hostile name is not
    trusted for the rest. Declared sizes are checked here too, to refuse an honest but
    oversized zip before any byte is written; they are never relied on to let one through.
    """
    infos = archive.infolist()
    entries: list[Entry] = []
    dirs = 0
    seen: dict[str, str] = {}
    for info in infos:
        path = safe_path(info.filename)
        mode = _mode(info)
        kind = stat.S_IFMT(mode)
        if kind == stat.S_IFLNK:
            raise Refused(f"entry {path!r} is a symbolic link: links are refused")
        if info.is_dir() or kind == stat.S_IFDIR:
            dirs += 1
            continue
        if kind not in (0, stat.S_IFREG):
            raise Refused(f"entry {path!r} is a special file (mode {oct(mode)}): refused")
        if info.flag_bits & 0x1:
            raise Refused(f"entry {path!r} is encrypted")
        key = path.casefold()
        if key in seen:
            raise Refused(f"two entries are named {path!r}")
        seen[key] = path
        entries.append(Entry(path=path, info=info))
        if len(entries) > limits.max_files:
            raise Refused(f"more than {limits.max_files} files (CIPULSE_ARTIFACT_MAX_FILES)")
        if info.file_size > limits.max_file_bytes:
            raise Refused(
                f"entry {path!r} says it is {_mb(info.file_size)}, over the per-file limit of "
                f"{_mb(limits.max_file_bytes)} (CIPULSE_MAX_FILE_SIZE_MB)"
            )
    for entry in entries:
        parents = entry.path.split("/")[:-1]
        for i in range(1, len(parents) + 1):
            folder = "/".join(parents[:i])
            if folder.casefold() in seen:
                raise Refused(f"{seen[folder.casefold()]!r} is both a file and a folder")
    declared = sum(e.info.file_size for e in entries)
    if declared > limits.max_total_bytes:
        raise Refused(
            f"the files add up to {_mb(declared)}, over the limit of "
            f"{_mb(limits.max_total_bytes)} (CIPULSE_ARTIFACT_MAX_TOTAL_MB)"
        )
    return entries, dirs


def _mb(size: int) -> str:
    if size < 1024 * 1024:
        return f"{size:,} bytes"
    return f"{size / (1024 * 1024):,.1f} MB"


def _chunks(archive: zipfile.ZipFile, entry: Entry, limits: Limits) -> Iterator[bytes]:
    """The entry's bytes, read past what its header declares so that a lie is seen.

    Whatever reading a damaged entry raises becomes ``Refused``; errors of the consumer (the
    sink's disk, say) are not raised in here and stay what they are.
    """
    probe = copy.copy(entry.info)
    # zipfile stops at the declared size; ask for one byte past the limit instead and count.
    probe.file_size = limits.max_file_bytes + 1
    try:
        with archive.open(probe) as stream:
            while chunk := stream.read(CHUNK):
                yield chunk
    except UNREADABLE as exc:
        raise Refused(
            f"entry {entry.path!r} is damaged or unreadable ({type(exc).__name__}: {exc})"
        ) from None


Sink = Callable[[str], AbstractContextManager[BinaryIO]]


def extract(
    zip_path: Path,
    sink: Sink,
    limits: Limits,
    *,
    on_file: Callable[[Extracted], None] | None = None,
) -> Result:
    """Extract into ``sink(path)`` (a context manager giving a binary file); raise ``Refused``.

    Counted while streaming: the bytes of each file (``max_file_bytes``), of all files
    (``max_total_bytes``) and their ratio to the zip's size (``max_ratio``); a file that
    inflates past the size its header declares is refused as a zip bomb at once.
    """
    listed = declared_entries(zip_path)
    if listed is not None and listed > 2 * limits.max_files + 1000:  # room for folders
        raise Refused(
            f"the zip lists {listed:,} entries, more than {limits.max_files} files "
            "(CIPULSE_ARTIFACT_MAX_FILES)"
        )
    try:
        archive = zipfile.ZipFile(zip_path)
    except UNREADABLE as exc:
        raise Refused(f"not a readable zip file ({type(exc).__name__}: {exc})") from None
    compressed_total = max(zip_path.stat().st_size, 1)
    result = Result()
    with archive:
        entries, result.skipped_dirs = plan(archive, limits)
        for entry in entries:
            info = entry.info
            size = 0
            head = bytearray()
            digest = hashlib.sha256()
            with sink(entry.path) as out:
                for chunk in _chunks(archive, entry, limits):
                    size += len(chunk)
                    result.total_bytes += len(chunk)
                    _check(entry, size, result.total_bytes, compressed_total, limits)
                    if len(head) < HEAD_BYTES:
                        head += chunk[: HEAD_BYTES - len(head)]
                    digest.update(chunk)
                    out.write(chunk)
            if size != info.file_size:
                raise Refused(
                    f"entry {entry.path!r} holds {size:,} bytes but its header says "
                    f"{info.file_size:,}: a damaged or forged zip"
                )
            item = Extracted(
                path=entry.path, size=size, head=bytes(head), sha256=digest.hexdigest()
            )
            result.files.append(item)
            if on_file is not None:
                on_file(item)
    return result


def _check(entry: Entry, size: int, total: int, compressed_total: int, limits: Limits) -> None:
    info = entry.info
    if size > info.file_size:
        raise Refused(
            f"zip bomb: entry {entry.path!r} inflates past the {info.file_size:,} bytes its "
            "header declares; extraction stopped"
        )
    if size > limits.max_file_bytes:
        raise Refused(
            f"entry {entry.path!r} is larger than the per-file limit of "
            f"{_mb(limits.max_file_bytes)} (CIPULSE_MAX_FILE_SIZE_MB); extraction stopped"
        )
    if total > limits.max_total_bytes:
        raise Refused(
            f"the files add up to more than {_mb(limits.max_total_bytes)} "
            "(CIPULSE_ARTIFACT_MAX_TOTAL_MB); extraction stopped"
        )
    if size > RATIO_FLOOR and size / max(info.compress_size, 1) > limits.max_ratio:
        raise Refused(
            f"zip bomb: entry {entry.path!r} inflates more than {limits.max_ratio:g} times "
            "(CIPULSE_ARTIFACT_MAX_RATIO); extraction stopped"
        )
    if total > RATIO_FLOOR and total / compressed_total > limits.max_ratio:
        raise Refused(
            f"zip bomb: the artifact inflates more than {limits.max_ratio:g} times its "
            "size (CIPULSE_ARTIFACT_MAX_RATIO); extraction stopped"
        )
