"""HTTP: push JUnit reports from any CI, and read test history, failing, slow and flaky tests.

``POST /api/test-reports`` takes the report as the raw body (``application/xml``, optionally
``Content-Encoding: gzip``) or as ``multipart/form-data`` with one or more file parts. Metadata
comes from query parameters, or from ``X-Cipulse-<Name>`` headers when a CI finds headers easier
(``X-Cipulse-Repository``, ``X-Cipulse-Branch``, ...). The body is read with a cap
(``CIPULSE_TEST_REPORT_MAX_MB``) and nothing is stored unless every part parses.
"""

from __future__ import annotations

import zlib
from datetime import timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from starlette.concurrency import run_in_threadpool

from cipulse.auth import require_ingest_token
from cipulse.context import AppContext, get_ctx
from cipulse.models import utcnow
from cipulse.params import RowId
from cipulse.testreports import parse
from cipulse.testreports import repository as repo
from cipulse.testreports import service as testreports
from cipulse.testreports.schemas import (
    FlakyTest,
    RunTests,
    StoredReport,
    StoredReports,
    TestDetail,
    TestList,
)

router = APIRouter(tags=["tests"])

META_FIELDS = ("repository", "branch", "commit", "run_id", "run_attempt", "job", "name")


def _meta(request: Request, field: str) -> str | None:
    value = request.query_params.get(field)
    if value is None:
        value = request.headers.get(f"x-cipulse-{field.replace('_', '-')}")
    if value is not None and len(value) > 500:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, detail=f"{field} is longer than 500 characters"
        )
    value = (value or "").replace("\x00", "").strip()  # PostgreSQL text cannot hold NUL
    return value or None


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    data = b"".join(chunks)
    encoding = (request.headers.get("content-encoding") or "identity").lower()
    if encoding == "gzip":
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            data = inflater.decompress(data, limit + 1)
        except zlib.error as exc:
            raise HTTPException(
                status.HTTP_400_BAD_REQUEST, detail=f"the gzip body is corrupt: {exc}"
            ) from None
        if len(data) > limit or inflater.unconsumed_tail:
            raise _too_large(limit)
    elif encoding != "identity":
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            detail=f"Content-Encoding {encoding!r} is not supported (use gzip or none)",
        )
    return data


def _too_large(limit: int) -> HTTPException:
    return HTTPException(
        status.HTTP_413_CONTENT_TOO_LARGE,
        detail=f"the report is larger than {limit // (1024 * 1024)} MB "
        "(CIPULSE_TEST_REPORT_MAX_MB)",
    )


def _parts(content_type: str, body: bytes) -> list[tuple[str | None, bytes]]:
    """(file name, bytes) of each file part of a multipart/form-data body."""
    header = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = BytesParser(policy=policy.HTTP).parsebytes(header + body)
    if not message.is_multipart():
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail="the multipart body is malformed")
    found: list[tuple[str | None, bytes]] = []
    for part in message.iter_parts():
        if not isinstance(part, EmailMessage):
            continue
        filename = part.get_filename()
        field = part.get_param("name", header="content-disposition")
        if filename is None and field not in ("file", "report", "files"):
            continue
        payload = part.get_payload(decode=True)
        found.append((filename, payload if isinstance(payload, bytes) else b""))
    if not found:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail="the multipart body has no file part (send the report as -F file=@report.xml)",
        )
    return found


def _ingest(
    ctx: AppContext,
    files: list[tuple[str | None, bytes]],
    meta: dict[str, str | None],
    attempt: int | None,
) -> list[StoredReport]:
    """Parse every part first (a broken one stores nothing and holds no lock), then store."""
    parsed = []
    for filename, data in files:
        try:
            parsed.append(parse.parse(data))
        except parse.JUnitParseError as exc:
            where = f"{filename}: " if filename else ""
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT, detail=f"{where}{exc} ({exc.kind})"
            ) from None
    with ctx.db.write() as uow:
        session = uow.session
        repository_id = workflow_run_id = job_id = None
        known = repo.repository_by_name(session, meta["repository"]) if meta["repository"] else None
        if known is not None:
            repository_id = known.id
            run_id = meta["run_id"]
            if run_id and run_id.isdigit():
                run = repo.workflow_run_by_github_id(
                    session, repository_id=known.id, github_id=int(run_id), attempt=attempt
                )
                workflow_run_id = run.id if run else None
            job = meta["job"]
            if workflow_run_id and job and job.isdigit():
                found = repo.job_by_github_id(session, github_id=int(job))
                job_id = found.id if found and found.run_id == workflow_run_id else None
        ci_run = meta["run_id"]
        if ci_run and attempt:
            ci_run = f"{ci_run}/{attempt}"
        return [
            testreports.store_report(
                session,
                data=data,
                repository_id=repository_id,
                workflow_run_id=workflow_run_id,
                job_id=job_id,
                source="api",
                name=filename or meta["name"],
                project=meta["repository"],
                branch=meta["branch"],
                commit_sha=meta["commit"],
                ci_run=ci_run,
                ci_job=meta["job"],
                report=report,
            )
            for (filename, data), report in zip(files, parsed, strict=True)
        ]


@router.post(
    "/api/test-reports",
    response_model=StoredReports,
    status_code=status.HTTP_201_CREATED,
    dependencies=[Depends(require_ingest_token)],
    responses={
        200: {"description": "Every report had been stored before (idempotent re-post)"},
        413: {"description": "Larger than CIPULSE_TEST_REPORT_MAX_MB"},
        422: {"description": "Not a readable JUnit report, or bad metadata"},
    },
    openapi_extra={
        "parameters": [
            {"name": field, "in": "query", "required": False, "schema": {"type": "string"}}
            for field in META_FIELDS
        ],
        "requestBody": {
            "content": {
                "application/xml": {"schema": {"type": "string"}},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"file": {"type": "string", "format": "binary"}},
                    }
                },
            }
        },
    },
)
async def post_test_report(
    request: Request, response: Response, ctx: Annotated[AppContext, Depends(get_ctx)]
) -> StoredReports:
    """Store JUnit XML from any CI. 201 when something new was stored, 200 for a re-post."""
    limit = int(ctx.settings.test_report_max_mb * 1024 * 1024)
    meta = {field: _meta(request, field) for field in META_FIELDS}
    body = await _read_body(request, limit)
    content_type = request.headers.get("content-type") or ""
    if content_type.lower().startswith("multipart/"):
        files = _parts(content_type, body)
    elif content_type.lower().startswith("application/x-www-form-urlencoded"):
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            detail="send the report as the raw body (application/xml) or as multipart/form-data",
        )
    else:
        files = [(None, body)]
    attempt: int | None = None
    if meta["run_attempt"]:
        if not meta["run_attempt"].isdigit():
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT, detail="run_attempt must be a number"
            )
        attempt = int(meta["run_attempt"])
    stored = await run_in_threadpool(_ingest, ctx, files, meta, attempt)
    if not any(report.created for report in stored):
        response.status_code = status.HTTP_200_OK
    return StoredReports(reports=stored)


@router.get("/api/tests", response_model=TestList)
def get_tests(
    ctx: Annotated[AppContext, Depends(get_ctx)],
    sort: Annotated[str, Query(pattern="^(failing|slowest|recent|name)$")] = "failing",
    days: Annotated[int, Query(ge=1, le=365)] = 14,
    project: Annotated[str | None, Query(max_length=201)] = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
    failing_only: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> TestList:
    """Tests seen in the last ``days`` with run, failure, skip and flaky counts and durations."""
    since = utcnow() - timedelta(days=days)
    with ctx.db.read() as session:
        return testreports.list_tests(
            session,
            since=since,
            project=project,
            query=q,
            sort=sort,
            only_failing=failing_only,
            limit=limit,
            offset=offset,
        )


@router.get("/api/tests/flaky", response_model=list[FlakyTest])
def get_flaky_tests(
    ctx: Annotated[AppContext, Depends(get_ctx)],
    days: Annotated[int | None, Query(ge=1, le=365)] = None,
    project: Annotated[str | None, Query(max_length=201)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[FlakyTest]:
    """Flaky tests: passed after a retry in one report, or failed and passed on one commit,
    within ``days`` (default ``CIPULSE_FLAKY_WINDOW_DAYS``)."""
    window = days or ctx.settings.flaky_window_days
    with ctx.db.read() as session:
        return testreports.flaky_tests(
            session, since=utcnow() - timedelta(days=window), project=project, limit=limit
        )


@router.get("/api/tests/{test_id}", response_model=TestDetail, responses={404: {}})
def get_test(
    test_id: RowId,
    ctx: Annotated[AppContext, Depends(get_ctx)],
    days: Annotated[int, Query(ge=1, le=365)] = 90,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> TestDetail:
    """One test: its counts over ``days`` and its newest ``limit`` results with their runs."""
    with ctx.db.read() as session:
        detail = testreports.test_detail(
            session,
            test_case_id=test_id,
            since=utcnow() - timedelta(days=days),
            limit=limit,
        )
    if detail is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no test with id {test_id}")
    return detail


@router.get("/api/workflow-runs/{workflow_run_id}/tests", response_model=RunTests)
def get_run_tests(
    workflow_run_id: RowId,
    ctx: Annotated[AppContext, Depends(get_ctx)],
    outcome: Annotated[str | None, Query(pattern="^(passed|failed|error|skipped)$")] = None,
) -> RunTests:
    """The test reports of one GitHub run attempt (cipulse's run id) and their results."""
    with ctx.db.read() as session:
        return testreports.run_tests(session, workflow_run_id=workflow_run_id, outcome=outcome)
