"""The storage layer: safe keys, atomic writes, listing and deleting, on a folder and in memory."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cipulse import storage as storage_mod
from cipulse.settings import Settings
from cipulse.storage import Storage, StorageKeyError, from_settings, safe_key


@pytest.fixture(params=["local", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "local":
        return storage_mod.from_url(str(tmp_path / "root"))
    return storage_mod.from_url(f"memory://cipulse-test-{uuid.uuid4().hex}")


def test_write_then_read_back(store: Storage) -> None:
    with store.open_write("logs/1/2.gz") as handle:
        handle.write(b"hello ")
        handle.write(b"world")
    assert store.exists("logs/1/2.gz")
    assert store.size("logs/1/2.gz") == 11
    with store.open_read("logs/1/2.gz") as handle:
        handle.seek(6)
        assert handle.read() == b"world"
    assert store.read_range("logs/1/2.gz", 0, 5) == b"hello"
    modified = store.modified_at("logs/1/2.gz")
    assert modified is not None and modified.tzinfo is not None
    assert abs(modified - datetime.now(UTC)) < timedelta(days=1)


def test_write_is_invisible_until_close_and_removed_on_error(store: Storage) -> None:
    with store.open_write("a/b.txt") as handle:
        handle.write(b"partial")
        assert not store.exists("a/b.txt")
        assert store.list("") == []
    assert store.list("") == ["a/b.txt"]

    with pytest.raises(RuntimeError), store.open_write("a/c.txt") as handle:
        handle.write(b"half")
        raise RuntimeError("network dropped")
    assert not store.exists("a/c.txt")
    assert store.list("") == ["a/b.txt"]  # the temporary file is gone too


def test_overwrite_replaces_whole_file(store: Storage) -> None:
    with store.open_write("k") as handle:
        handle.write(b"a long first version")
    with store.open_write("k") as handle:
        handle.write(b"v2")
    with store.open_read("k") as handle:
        assert handle.read() == b"v2"


def test_list_and_delete_prefix(store: Storage) -> None:
    for key in ["x/1/a", "x/1/b/c", "x/2/a", "y/a"]:
        with store.open_write(key) as handle:
            handle.write(key.encode())
    assert store.list("x/1") == ["x/1/a", "x/1/b/c"]
    assert store.list("x/1/") == ["x/1/a", "x/1/b/c"]
    assert store.list("nothing") == []
    assert store.delete_prefix("x/1") == 2
    assert store.list("") == ["x/2/a", "y/a"]
    assert store.delete_prefix("x/1") == 0
    store.delete("y/a")
    store.delete("y/a")  # deleting twice is fine
    assert store.list("") == ["x/2/a"]


def test_missing_files(store: Storage) -> None:
    assert not store.exists("none")
    with pytest.raises(FileNotFoundError):
        store.open_read("none")
    with pytest.raises(FileNotFoundError):
        store.size("none")
    assert store.modified_at("none") is None


@pytest.mark.parametrize(
    "parts",
    [
        ("..",),
        ("a/../../etc/passwd",),
        ("a", "..", "b"),
        ("/etc/passwd",),
        ("a\\..\\b",),
        ("a\x00b",),
        ("",),
        ("a", ""),
        ("a//b",),
        ("a/",),
        ("C:/windows",),
        ("c:",),
        ("./a",),
        (".partial/x",),
        ("x" * 256,),
        (),
    ],
)
def test_unsafe_keys_are_refused(parts: tuple[str, ...], store: Storage) -> None:
    with pytest.raises(StorageKeyError):
        safe_key(*parts)
    if parts:
        with pytest.raises(StorageKeyError), store.open_write("/".join(parts)):
            pass
        with pytest.raises(StorageKeyError):
            store.exists("/".join(parts))


def test_safe_key_joins_parts() -> None:
    assert safe_key("logs", "12", "345.gz") == "logs/12/345.gz"
    assert safe_key("artifacts/1", "dir/file name (1).txt") == "artifacts/1/dir/file name (1).txt"
    assert safe_key("ünïcödé", "..hidden", "a..b") == "ünïcödé/..hidden/a..b"


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parts=st.lists(st.text(min_size=0, max_size=30), min_size=1, max_size=4))
def test_any_accepted_key_stays_under_the_root(parts: list[str], tmp_path: Path) -> None:
    root = tmp_path / "root"
    try:
        key = safe_key(*parts)
    except StorageKeyError:
        return
    resolved = os.path.normpath(os.path.join(root, key))
    assert resolved.startswith(str(root) + os.sep)
    assert ".." not in key.split("/")


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(alphabet=st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=20))
def test_written_files_land_inside_the_folder(name: str, tmp_path: Path) -> None:
    root = tmp_path / "root"
    store = storage_mod.from_url(str(root))
    try:
        key = safe_key("a", name)
    except StorageKeyError:
        return
    with store.open_write(key) as handle:
        handle.write(b"x")
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written and all(root in p.parents for p in written)
    assert store.list("a") == [key]
    store.delete_prefix("a")


def test_from_settings_default_folder_and_url(tmp_path: Path) -> None:
    local = from_settings(Settings(data_dir=tmp_path))
    with local.open_write("f") as handle:
        handle.write(b"1")
    assert (tmp_path / "storage" / "f").read_bytes() == b"1"

    memory = from_settings(Settings(data_dir=tmp_path, storage_url="memory://settings-test"))
    with memory.open_write("f") as handle:
        handle.write(b"2")
    assert memory.exists("f")
    assert not (tmp_path / "storage" / "g").exists()


def test_unknown_protocol_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="CIPULSE_STORAGE_URL"):
        storage_mod.from_url("nosuchproto://bucket")
