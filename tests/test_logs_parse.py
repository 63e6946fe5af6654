"""The log parser and the chunked store, on every real log in the shared fixtures."""

from __future__ import annotations

import gzip
import io
import re
import uuid
import zipfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cipulse import storage as storage_mod
from cipulse.logs import chunks, parse, service
from cipulse.storage import Storage
from cipulse.web import logs as log_pages

LOGS = Path(__file__).resolve().parent.parent.parent / "shared" / "fixtures" / "real" / "logs"
FULL = LOGS / "pytorch-full-job-log.failing-tests.exit1.txt"
EXCERPTS = sorted((LOGS / "pytorch-test-infra-excerpts").glob("*.txt"))
RUN_ZIP = LOGS / "run-log-zip" / "cli-cli-run_log.zip"


def every_log() -> list[Path]:
    return [FULL, *EXCERPTS]


def raw_text(path: Path) -> str:
    """An excerpt without the annotations added upstream (SOURCE, MATCH, quotes)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if lines and lines[0].startswith("#=SOURCE=#"):
        lines = lines[1:]
    return "\n".join(
        line.replace("#=MATCH=# ", "").replace("\u2039", "").replace("\u203a", "") for line in lines
    )


@pytest.fixture
def store() -> Storage:
    return storage_mod.from_url(f"memory://logs-{uuid.uuid4().hex}")


# -- single lines ---------------------------------------------------------------------------


def test_timestamp_group_and_markers() -> None:
    line = parse.parse_line("2024-07-08T16:48:09.3763139Z ##[group]GITHUB_TOKEN Permissions", 5)
    assert (line.kind, line.text, line.number) == ("group", "GITHUB_TOKEN Permissions", 5)
    assert line.timestamp == "2024-07-08T16:48:09.3763139Z"
    assert line.short_time == "16:48:09"
    assert parse.parse_line("2024-07-08T16:48:09.3773279Z ##[endgroup]", 6).kind == "endgroup"
    err = parse.parse_line(
        "2024-07-08T17:10:00.0000000Z ##[error]Process completed with exit code 1.", 7
    )
    assert (err.kind, err.text) == ("error", "Process completed with exit code 1.")
    assert parse.is_generic_error(err)
    assert parse.parse_line("##[warning]deprecated", 1).kind == "warning"
    plain = parse.parse_line("no timestamp at all", 1)
    assert (plain.kind, plain.timestamp, plain.short_time) == ("text", None, None)


def test_workflow_command_form() -> None:
    line = parse.parse_line("2024-01-01T00:00:00.0000000Z ::error file=a.py,line=3::Boom here", 1)
    assert (line.kind, line.text, line.title) == ("error", "Boom here", "file=a.py,line=3")
    assert parse.parse_line("::warning::careful", 2).kind == "warning"
    assert parse.parse_line("::group::Install", 3).kind == "group"
    assert parse.parse_line("::endgroup::", 4).kind == "endgroup"


def test_bom_and_line_ends_are_dropped() -> None:
    line = parse.parse_line("\ufeff2024-01-01T00:00:00.1234567Z hello\r\n", 1)
    assert (line.timestamp, line.text) == ("2024-01-01T00:00:00.1234567Z", "hello")


def test_ansi_colours_become_safe_spans() -> None:
    html = parse.ansi_to_html("\x1b[1m>>>\x1b[0m Lint for \x1b[4m<script>x</script>\x1b[0m")
    assert html == (
        '<span class="ansi-bold">&gt;&gt;&gt;</span> Lint for '
        '<span class="ansi-underline">&lt;script&gt;x&lt;/script&gt;</span>'
    )
    assert parse.ansi_to_html("\x1b[31mred\x1b[39m plain") == (
        '<span class="ansi-fg-1">red</span> plain'
    )
    assert parse.ansi_to_html("\x1b[38;5;196mx") == '<span style="color:#ff0000">x</span>'
    assert (
        parse.ansi_to_html("\x1b[48;2;1;2;3my") == '<span style="background-color:#010203">y</span>'
    )
    assert parse.ansi_to_html("\x1b[92;41mz") == '<span class="ansi-fg-b2 ansi-bg-1">z</span>'
    assert parse.ansi_to_html("a\x1b[2Kb\x1b]0;title\x07c") == "abc"  # other escapes dropped
    assert parse.ansi_to_html("10%\r50%\r100%") == "100%"  # what a terminal shows
    assert parse.strip_ansi("\x1b[1;31mFAILED\x1b[0m x") == "FAILED x"


def test_first_error_prefers_a_specific_one() -> None:
    lines = list(
        parse.parse_lines(
            [
                "##[warning]meh",
                "##[error]Process completed with exit code 1.",
                "##[error]The action 'Test' has timed out after 360 minutes.",
            ]
        )
    )
    found = parse.first_error(lines)
    assert found is not None and found.number == 3
    only_generic = list(parse.parse_lines(["x", "##[error]Process completed with exit code 2."]))
    found = parse.first_error(only_generic)
    assert found is not None and found.number == 2
    assert parse.first_error(parse.parse_lines(["fine"])) is None


# -- real logs ------------------------------------------------------------------------------


def test_full_pytorch_log_is_read_as_github_shows_it() -> None:
    text = FULL.read_text(encoding="utf-8")
    lines = list(parse.parse_lines(text.splitlines()))
    assert len(lines) == 4768
    kinds = [x.kind for x in lines]
    assert kinds.count("group") == 74 and kinds.count("endgroup") == 74
    errors = [x for x in lines if x.kind == "error"]
    assert [e.text for e in errors] == ["Process completed with exit code 1."] * 2
    # continuation lines of a multi-line message carry no timestamp of their own
    assert sum(1 for x in lines if x.timestamp) == len(lines) - 239
    coloured = [x for x in lines if "\x1b[" in x.text]
    assert len(coloured) >= 300
    assert all("\x1b" not in parse.ansi_to_html(x.text) for x in coloured)
    assert any("<span class=" in parse.ansi_to_html(x.text) for x in coloured)


@pytest.mark.parametrize("path", EXCERPTS, ids=lambda p: p.stem)
def test_every_excerpt_parses_and_renders(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    for line in parse.parse_lines(text.splitlines()):
        html = parse.ansi_to_html(line.text)
        assert "\x1b" not in html and "<script" not in html


EXPECTED_FIRST_ERROR = {
    "gha_timeout": "The action 'Test' has timed out after 360 minutes.",
    "gha_operation_canceled": "The operation was canceled.",
    "pr_sanity_exit_code_only": "Process completed with exit code 1.",
}


@pytest.mark.parametrize("name", sorted(EXPECTED_FIRST_ERROR))
def test_first_error_of_real_excerpts(name: str) -> None:
    text = raw_text(LOGS / "pytorch-test-infra-excerpts" / f"{name}.txt")
    found = parse.first_error(parse.parse_lines(text.splitlines()))
    assert found is not None and found.plain == EXPECTED_FIRST_ERROR[name]


def test_lintrunner_warnings_are_found() -> None:
    text = raw_text(LOGS / "pytorch-test-infra-excerpts" / "lint_lintrunner.txt")
    warnings = [x for x in parse.parse_lines(text.splitlines()) if x.kind == "warning"]
    assert len(warnings) == 14


def test_the_bom_excerpt_has_its_timestamps() -> None:
    text = raw_text(LOGS / "pytorch-test-infra-excerpts" / "gha_cancellation_shutdown.txt")
    first = parse.parse_line(text.splitlines()[0], 1)
    assert first.timestamp is not None and not first.text.startswith("\ufeff")


# -- the chunked store ----------------------------------------------------------------------


def test_chunks_round_trip_the_full_log(store: Storage) -> None:
    original = FULL.read_bytes()
    with store.open_write("logs/1/1/log.gz") as out:
        writer = chunks.ChunkWriter(out, chunk_bytes=32 * 1024)  # many chunks from a small log
        for raw in parse.iter_raw_lines(io.BytesIO(original)):
            writer.add(raw)
        index = writer.close()
    with store.open_write("logs/1/1/index.json") as out:
        out.write(index.to_json())
    assert len(index.chunks) > 10
    assert index.lines == 4768 and index.errors == 2
    assert index.first_error is not None and index.first_error[1].startswith("Process completed")
    # the whole file is still one gzip stream, equal to the original
    with store.open_read("logs/1/1/log.gz") as handle:
        assert gzip.decompress(handle.read()) == original
    assert b"".join(service.iter_raw(store, prefix="logs/1/1", index=index)) == original
    again = chunks.read_index(store, "logs/1/1")
    assert again == index
    # a page deep in the log reads its lines and knows the fold it starts in
    page = service.read_page(store, prefix="logs/1/1", index=index, start=2001, limit=300)
    expected = original.decode().splitlines()[2000:2300]
    assert [line.number for line in page.lines] == list(range(2001, 2301))
    assert [parse.parse_line(t, 0).text for t in expected] == [x.text for x in page.lines]
    last_group = None
    for number, text in enumerate(original.decode().splitlines()[:2000], start=1):
        kind = parse.parse_line(text, number).kind
        last_group = number if kind == "group" else None if kind == "endgroup" else last_group
    assert (page.open_group[0] if page.open_group else None) == last_group


def test_search_across_chunks(store: Storage) -> None:
    index = chunks.write_log(store, "logs/1/2", io.BytesIO(FULL.read_bytes()))
    found = service.search(store, prefix="logs/1/2", index=index, query="EXIT CODE 1")
    assert [m.number for m in found.matches] == [
        n
        for n, t in enumerate(FULL.read_text().splitlines(), 1)
        if "exit code 1" in parse.strip_ansi(t).lower()
    ]
    assert all("exit code 1" in m.text.lower() for m in found.matches)
    capped = service.search(store, prefix="logs/1/2", index=index, query="Z", limit=5)
    assert len(capped.matches) == 5 and capped.truncated
    assert service.search(store, prefix="logs/1/2", index=index, query="no such text").matches == []


@pytest.mark.parametrize("path", every_log(), ids=lambda p: p.stem)
def test_every_log_stores_and_reads_back(path: Path, store: Storage) -> None:
    original = path.read_bytes()
    index = chunks.write_log(store, "x", io.BytesIO(original))
    assert b"".join(service.iter_raw(store, prefix="x", index=index)) == original
    page = service.read_page(store, prefix="x", index=index, start=1, limit=10_000)
    assert len(page.lines) == index.lines == len(original.decode("utf-8").splitlines())


def test_run_log_zip_steps_store_and_read(store: Storage) -> None:
    """The run-logs zip holds one file per step; each reads like a job log (cut UTF-8 too)."""
    with zipfile.ZipFile(RUN_ZIP) as archive:
        names = [n for n in archive.namelist() if n.endswith(".txt") and "__MACOSX" not in n]
        assert names
        for number, name in enumerate(names):
            data = archive.read(name)
            index = chunks.write_log(store, f"zip/{number}", io.BytesIO(data))
            page = service.read_page(store, prefix=f"zip/{number}", index=index, start=1, limit=100)
            assert len(page.lines) == min(100, index.lines)
            for line in page.lines:
                assert "\x1b" not in parse.ansi_to_html(line.text)


# -- fuzzing --------------------------------------------------------------------------------

TOKENS = st.sampled_from(
    [
        "2024-07-08T16:48:09.3750041Z ", "##[group]", "##[endgroup]", "##[error]", "##[warning]",
        "::error file=a,line=1::", "::group::", "\x1b[", "31m", "38;5;", "48;2;1;2;", "m", "0m",
        "\x1b]0;t\x07", "\r", "\n", "\ufeff", "<", "&", "\x00", "é", "🙂", ";", "Z", " ",
    ]
)  # fmt: skip


@given(st.lists(st.one_of(TOKENS, st.text(max_size=8)), max_size=40).map("".join))
def test_parser_never_crashes_and_html_is_escaped(text: str) -> None:
    for number, raw in enumerate(text.split("\n"), 1):
        line = parse.parse_line(raw, number)
        html = parse.ansi_to_html(line.text)
        assert "\x1b" not in html
        without_tags = re.sub(
            r'<span(?: class="[a-z0-9 -]+")?(?: style="[a-z:#0-9;-]+")?>|</span>', "", html
        )
        assert "<" not in without_tags and ">" not in without_tags.replace("&gt;", "")
        assert html.count("<span") == html.count("</span>")
        parse.strip_ansi(line.text)
        parse.compact_time(line.timestamp)
    parse.first_error(parse.parse_lines(text.split("\n")))


@given(st.binary(max_size=2000))
def test_any_bytes_store_and_read_back(data: bytes) -> None:
    store = storage_mod.from_url(f"memory://fuzz-{uuid.uuid4().hex}")
    index = chunks.write_log(store, "f", io.BytesIO(data))
    back = b"".join(service.iter_raw(store, prefix="f", index=index))
    assert back == data
    page = service.read_page(store, prefix="f", index=index, start=1, limit=50)
    assert len(page.lines) == min(50, index.lines)


def test_a_page_that_starts_inside_a_fold_continues_it(store: Storage) -> None:
    lines = ["intro", "##[group]Run tests", *[f"test {n} ok" for n in range(40)], "##[endgroup]"]
    lines += ["##[error]Process completed with exit code 1.", "after"]
    index = chunks.write_log(store, "g", io.BytesIO("\n".join(lines).encode()))
    page = service.read_page(store, prefix="g", index=index, start=21, limit=30)
    assert page.open_group == (2, "Run tests")
    shown = log_pages.blocks(page, focus=None)
    assert shown[0].continued and shown[0].header is not None
    assert shown[0].header.number == 2 and not shown[0].open
    assert [r.number for r in shown[0].rows] == list(range(21, 43))
    # the endgroup line is hidden; the error after the fold is a line of its own
    assert [r.kind for r in shown[1].rows] == ["error", "text"]
    focused = log_pages.blocks(page, focus=30)
    assert focused[0].open  # the fold holding the line in focus is open


@given(st.lists(st.one_of(TOKENS, st.text(max_size=8)), max_size=60).map("".join))
def test_any_log_pages_into_blocks_without_losing_a_line(text: str) -> None:
    store = storage_mod.from_url(f"memory://blocks-{uuid.uuid4().hex}")
    index = chunks.write_log(store, "b", io.BytesIO(text.encode("utf-8", "surrogatepass")))
    page = service.read_page(store, prefix="b", index=index, start=1, limit=25)
    shown = log_pages.blocks(page, focus=1)
    numbers = [r.number for b in shown for r in b.rows]
    numbers += [b.header.number for b in shown if b.header and not b.continued]
    hidden = [x.number for x in page.lines if x.kind == "endgroup"]
    assert sorted(numbers + hidden) == [x.number for x in page.lines]
