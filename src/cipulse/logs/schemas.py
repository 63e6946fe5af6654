"""What the job-log API answers with. Job ids in URLs and here are GitHub's."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class LogLineOut(BaseModel):
    number: int = Field(description="1-based line number, as GitHub numbers them")
    timestamp: str | None = Field(description="The runner's UTC timestamp, if the line has one")
    kind: str = Field(
        description="text, group, endgroup, error, warning, notice, debug, command or section"
    )
    text: str = Field(description="The line after timestamp and marker, without ANSI codes")


class LogIssueOut(BaseModel):
    line: int
    kind: str = Field(description="error or warning")
    text: str


class LogMatchOut(BaseModel):
    line: int
    text: str = Field(description="The matching line (a window of it when long)")


class LogPageOut(BaseModel):
    job_id: int = Field(description="GitHub job id")
    state: str = Field(description="stored (else the page has no lines): see /log status")
    line_count: int
    errors: int
    warnings: int
    first_error_line: int | None = Field(description="The line of the most telling error")
    start: int
    limit: int
    next_start: int | None = Field(description="`start` of the next page; null on the last")
    lines: list[LogLineOut]
    issues: list[LogIssueOut] = Field(description="Errors and warnings (the first 1000)")
    query: str | None = None
    matches: list[LogMatchOut] | None = Field(
        default=None, description="With `q`: lines containing it (case-insensitive), in order"
    )
    matches_truncated: bool = False


class LogStatusOut(BaseModel):
    job_id: int
    state: str = Field(
        description="none (not requested), pending, stored, expired (410), missing (404), failed"
    )
    attempts: int
    last_error: str | None
    fetched_at: datetime | None
