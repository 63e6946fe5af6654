"""Where logs and artifact files live: a local folder by default, any fsspec URL by setting.

Keys are relative, ``/``-separated paths checked by :func:`safe_key`, so no key can name
anything outside the storage root, whatever the backend. Writes are atomic: a file is written
under a temporary key and moved into place on a clean close, so readers never see half a file
and a failed write leaves nothing behind.
"""

from __future__ import annotations

import builtins
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, BinaryIO, cast

import fsspec  # type: ignore[import-untyped]
from fsspec.implementations.local import LocalFileSystem  # type: ignore[import-untyped]

if TYPE_CHECKING:
    from cipulse.settings import Settings

__all__ = ["Storage", "StorageKeyError", "from_settings", "safe_key"]

PARTIAL_DIR = ".partial"  # temporary keys of writes in progress; never listed
MAX_SEGMENT_BYTES = 255  # the longest file name common local filesystems allow
_DRIVE = re.compile(r"^[A-Za-z]:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class StorageKeyError(ValueError):
    """A key that is not a safe relative path (``..``, absolute, backslash, NUL, ...)."""


def safe_key(*parts: str) -> str:
    """Join ``parts`` with ``/`` into a key, refusing anything that could leave the root.

    Each part may itself hold ``/``; every segment must be non-empty, not ``.`` or ``..``,
    free of backslashes and control characters, not a drive letter, and at most 255 bytes.
    """
    if not parts:
        raise StorageKeyError("empty key")
    segments: list[str] = []
    for part in parts:
        if not isinstance(part, str):
            raise StorageKeyError(f"key part {part!r} is not a string")
        if part == "":
            raise StorageKeyError("empty key part")
        if part.startswith("/"):
            raise StorageKeyError(f"absolute path {part!r} in key")
        for segment in part.split("/"):
            _check_segment(segment, part)
            segments.append(segment)
    if segments[0] == PARTIAL_DIR:
        raise StorageKeyError(f"{PARTIAL_DIR!r} is reserved for writes in progress")
    return "/".join(segments)


def _check_segment(segment: str, part: str) -> None:
    if segment == "":
        raise StorageKeyError(f"empty path segment in {part!r}")
    if segment in (".", ".."):
        raise StorageKeyError(f"{segment!r} segment in {part!r}")
    if "\\" in segment:
        raise StorageKeyError(f"backslash in {part!r}")
    if _CONTROL.search(segment):
        raise StorageKeyError(f"control character in {part!r}")
    if _DRIVE.match(segment):
        raise StorageKeyError(f"drive letter in {part!r}")
    try:
        size = len(segment.encode("utf-8"))
    except UnicodeEncodeError:
        raise StorageKeyError(f"{part!r} is not valid text") from None
    if size > MAX_SEGMENT_BYTES:
        raise StorageKeyError(f"path segment longer than {MAX_SEGMENT_BYTES} bytes")


class Storage:
    """Files by key under one root of one fsspec filesystem.

    The methods are blocking; async callers run them in a worker thread.
    """

    def __init__(self, fs: Any, root: str, *, url: str) -> None:
        self.fs = fs
        self.root = root.rstrip("/")
        self.url = url
        self._local = isinstance(fs, LocalFileSystem)

    def __repr__(self) -> str:
        return f"Storage({self.url!r})"

    def _path(self, key: str) -> str:
        return f"{self.root}/{safe_key(key)}"

    def _key_of(self, path: str) -> str:
        stripped = str(self.fs._strip_protocol(path)).rstrip("/")
        root = str(self.fs._strip_protocol(self.root)).rstrip("/") if self.root else ""
        return stripped[len(root) :].lstrip("/") if root else stripped.lstrip("/")

    @contextmanager
    def open_write(self, key: str) -> Iterator[BinaryIO]:
        """A binary file that becomes visible at ``key`` only after the block ends cleanly."""
        final = self._path(key)
        temp = f"{self.root}/{PARTIAL_DIR}/{uuid.uuid4().hex}"
        if self._local:
            self.fs.makedirs(f"{self.root}/{PARTIAL_DIR}", exist_ok=True)
        try:
            with self.fs.open(temp, "wb") as handle:
                yield cast(BinaryIO, handle)
            if self._local:
                self.fs.makedirs(final.rsplit("/", 1)[0], exist_ok=True)
            self.fs.mv(temp, final)
        except BaseException:
            self._remove_quietly(temp)
            raise

    def _remove_quietly(self, path: str) -> None:
        try:
            if self.fs.exists(path):
                self.fs.rm_file(path)
        except OSError:
            pass

    def open_read(self, key: str) -> BinaryIO:
        """The file at ``key``; seekable where the backend allows. FileNotFoundError if none."""
        path = self._path(key)
        if not self.fs.isfile(path):
            raise FileNotFoundError(key)
        return cast(BinaryIO, self.fs.open(path, "rb"))

    def read_range(self, key: str, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of the file: one ranged request on object stores."""
        return cast(bytes, self.fs.cat_file(self._path(key), start=start, end=end))

    def exists(self, key: str) -> bool:
        return bool(self.fs.isfile(self._path(key)))

    def size(self, key: str) -> int:
        path = self._path(key)
        if not self.fs.isfile(path):
            raise FileNotFoundError(key)
        return int(self.fs.size(path))

    def delete(self, key: str) -> None:
        """Remove the file at ``key``; nothing happens when there is none."""
        path = self._path(key)
        if self.fs.isfile(path):
            self.fs.rm_file(path)

    def delete_prefix(self, prefix: str) -> int:
        """Remove every file under the folder ``prefix``; returns how many were removed."""
        path = self._path(prefix)
        if self.fs.isfile(path):
            self.fs.rm_file(path)
            return 1
        files = self._find(path)
        for file in files:
            self.fs.rm_file(file)
        if self._local and self.fs.isdir(path):
            self.fs.rm(path, recursive=True)
        return len(files)

    def list(self, prefix: str = "") -> builtins.list[str]:
        """Keys of every file under the folder ``prefix`` (all files when empty), sorted."""
        if prefix:
            path = self._path(prefix.rstrip("/"))
            if self.fs.isfile(path):
                return [safe_key(prefix.rstrip("/"))]
        else:
            path = self.root or "/"
        keys = (self._key_of(found) for found in self._find(path))
        return sorted(k for k in keys if k and not k.startswith(PARTIAL_DIR + "/"))

    def _find(self, path: str) -> builtins.list[str]:
        try:
            if not self.fs.isdir(path):
                return []
            return list(self.fs.find(path))
        except FileNotFoundError:
            return []

    def modified_at(self, key: str) -> datetime | None:
        """When the file was last written, in UTC; None where the backend does not say."""
        try:
            value = self.fs.modified(self._path(key))
        except (NotImplementedError, FileNotFoundError, KeyError):
            return None
        if not isinstance(value, datetime):
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def from_url(url: str) -> Storage:
    """Storage rooted at an fsspec URL (``memory://x``, ``s3://bucket/prefix``, a folder)."""
    try:
        fs, root = fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:
        raise ValueError(f"CIPULSE_STORAGE_URL: cannot open {url!r} ({exc})") from None
    if isinstance(fs, LocalFileSystem):
        fs = LocalFileSystem(auto_mkdir=True)
        fs.makedirs(root, exist_ok=True)
    return Storage(fs, root, url=url)


def from_settings(settings: Settings) -> Storage:
    """``CIPULSE_STORAGE_URL`` when set, else the folder ``storage`` in ``CIPULSE_DATA_DIR``."""
    if settings.storage_url:
        return from_url(settings.storage_url)
    folder = (settings.data_dir / "storage").resolve()
    return from_url(str(folder))
