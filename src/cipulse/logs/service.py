"""Job logs: recording fetch outcomes, and the reads the viewer and the API share.

A log is stored under ``logs/{repository id}/{GitHub job id}/`` as ``log.gz`` (gzip members of
about 1 MB) and ``index.json`` (see ``chunks``). Every read here touches only the members it
needs: a page reads one or two, a search and a download walk them one at a time.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import BinaryIO

from sqlalchemy.orm import Session

from cipulse.github import errors
from cipulse.logs import chunks, parse
from cipulse.logs import repository as repo
from cipulse.logs.chunks import Index
from cipulse.models import Job, JobLog, Repository
from cipulse.storage import Storage, safe_key

MAX_SEARCH_MATCHES = 500
MAX_QUERY_CHARS = 200
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b\n]*(?:\x07|\x1b\\)?|\x1b")


def storage_prefix(*, repository_id: int, job_github_id: int) -> str:
    return safe_key("logs", str(repository_id), str(job_github_id))


# -- writing --------------------------------------------------------------------------------


def store(storage: Storage, *, prefix: str, source: BinaryIO) -> Index:
    """Chunk, compress and index the downloaded log into storage (blocking)."""
    return chunks.write_log(storage, prefix, source)


def record_stored(row: JobLog, *, prefix: str, index: Index, now: datetime) -> None:
    row.state = "stored"
    row.storage_key = prefix
    row.raw_bytes = index.raw_bytes
    row.stored_bytes = index.compressed_bytes
    row.line_count = index.lines
    row.error_count = index.errors
    row.warning_count = index.warnings
    row.first_error_line = index.first_error[0] if index.first_error else None
    row.first_error_text = index.first_error[1] if index.first_error else None
    row.last_error = None
    row.fetched_at = now
    repo.release(row)


def record_failure(row: JobLog, *, error: Exception, now: datetime) -> str:
    """Classify a failed fetch: expired and missing logs stop; others are retried."""
    message = str(error) or type(error).__name__
    if isinstance(error, errors.Gone):
        row.state = "expired"
        row.attempts += 1
        row.last_error = "GitHub no longer has this log (410: its retention period has passed)"
        repo.release(row)
        return "expired"
    if isinstance(error, errors.NotFound):
        outcome = repo.fail(
            row, error=f"GitHub has no log for this job (404): {message}", now=now,
            give_up_after=repo.NOT_FOUND_ATTEMPTS,
        )  # fmt: skip
        if row.state == "failed":
            row.state = "missing"
        return outcome
    if isinstance(error, errors.RateLimited) and error.reset_at is not None:
        repo.retry_at(row, error=message, when=max(error.reset_at, now))
        return f"rate limited until {error.reset_at:%H:%M} UTC"
    return repo.fail(row, error=message, now=now)


def request_fetch(session: Session, *, job: Job, now: datetime) -> JobLog:
    """Ask for a job's log now (a log not fetched automatically, or one that failed)."""
    row = repo.log_of(session, job.id)
    if row is None:
        row = JobLog(
            job_id=job.id, state="pending", attempts=0, next_attempt_at=now,
            error_count=0, warning_count=0, created_at=now,
        )  # fmt: skip
        session.add(row)
    elif row.state in ("failed", "missing", "pending"):
        row.state = "pending"
        row.attempts = 0
        row.next_attempt_at = now
    session.flush()
    return row


# -- reading --------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobLogInfo:
    job: Job
    repository: Repository
    log: JobLog | None


def find(session: Session, *, job_github_id: int) -> JobLogInfo | None:
    """The job (by GitHub's id), its repository, and its log row if any."""
    found = repo.job_by_github_id(session, job_github_id)
    if found is None:
        return None
    job, repository = found
    return JobLogInfo(job, repository, repo.log_of(session, job.id))


def first_error_line(session: Session, *, job_id: int) -> str | None:
    """The stored log's most telling error line, for alerts; ``job_id`` is ``job.id``."""
    row = repo.log_of(session, job_id)
    return row.first_error_text if row is not None and row.state == "stored" else None


def read_index(storage: Storage, *, prefix: str) -> Index:
    return chunks.read_index(storage, prefix)


@dataclass
class Page:
    start: int
    limit: int
    total: int
    lines: list[parse.LogLine] = field(default_factory=list)
    open_group: tuple[int, str] | None = None  # the fold open where the page starts

    @property
    def end(self) -> int:
        return self.lines[-1].number if self.lines else self.start - 1

    @property
    def next_start(self) -> int | None:
        return self.end + 1 if self.end < self.total else None

    @property
    def prev_start(self) -> int | None:
        return max(1, self.start - self.limit) if self.start > 1 else None


def read_page(storage: Storage, *, prefix: str, index: Index, start: int, limit: int) -> Page:
    """Lines ``start`` to ``start + limit - 1``, reading only the chunks that hold them."""
    page = Page(start=start, limit=limit, total=index.lines)
    if not index.chunks or start > index.lines:
        return page
    position = index.chunk_for(start)
    first = index.chunks[position]
    group = (first.group_line, first.group_title or "") if first.group_line else None
    stop = start + limit
    for chunk, texts in chunks.iter_chunks(storage, prefix, index, position):
        for offset, text in enumerate(texts):
            number = chunk.first_line + offset
            if number >= stop:
                break
            if number < start:
                if "group" in text:  # only fold markers matter before the page
                    before = parse.parse_line(text, number)
                    if before.kind == "group":
                        group = (number, before.plain)
                    elif before.kind == "endgroup":
                        group = None
                continue
            page.lines.append(parse.parse_line(text, number))
        if chunk.first_line + chunk.lines >= stop:
            break
    page.open_group = group
    return page


@dataclass(frozen=True)
class Match:
    number: int
    text: str  # the line without timestamp and colours, cut around the match
    at: int  # where the match starts in ``text``
    length: int


@dataclass
class SearchResult:
    query: str
    matches: list[Match] = field(default_factory=list)
    truncated: bool = False


def search(
    storage: Storage, *, prefix: str, index: Index, query: str, limit: int = MAX_SEARCH_MATCHES
) -> SearchResult:
    """Case-insensitive plain-text search over the whole log, one chunk at a time.

    A chunk without the text anywhere is skipped after one scan of its whole text; only
    chunks with a hit are looked at line by line.
    """
    result = SearchResult(query=query)
    needle = query.casefold()
    if not needle:
        return result
    for chunk in index.chunks:
        block = chunks.read_chunk_text(storage, prefix, chunk)
        if "\x1b" in block:
            block = _ESCAPES.sub("", block)
        if needle not in block.casefold():
            continue
        for offset, text in enumerate(block.split("\n")):
            if needle not in text.casefold():
                continue
            if len(result.matches) >= limit:
                result.truncated = True
                return result
            result.matches.append(_match(chunk.first_line + offset, text, needle))
    return result


def _match(number: int, text: str, needle: str) -> Match:
    """The line as the viewer shows it, cut to a window around the first match."""
    shown = parse.strip_ansi(parse.parse_line(text, number).text)
    at = shown.casefold().find(needle)
    if at == -1 or len(shown.casefold()) != len(shown):  # matched the timestamp, or ß-like
        return Match(number, shown[:240], 0, 0)
    start = max(0, at - 80)
    return Match(number, shown[start : at + len(needle) + 160], at - start, len(needle))


def iter_raw(storage: Storage, *, prefix: str, index: Index) -> Iterator[bytes]:
    return chunks.iter_raw(storage, prefix, index)
