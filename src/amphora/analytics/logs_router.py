"""Access-log import over HTTP: send a CDN's or web server's log file, get its hits counted.

``POST /shows/{id}/analytics/logs?format=combined|cloudfront`` takes the raw file as the body
(gzipped or not: the first bytes tell), streamed, never held whole; ``GET`` lists the imports.
The work is :func:`amphora.analytics.logimport.import_log`, shared with
``amphora analytics import-logs``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field

from amphora.account.deps import CurrentAuth
from amphora.analytics import logimport
from amphora.analytics.deps import AnalyticsViewer
from amphora.analytics.geo import geoip_for
from amphora.delivery.hits import client_hash_key
from amphora.deps import RuntimeDep, SessionDep, streams_body
from amphora.kit.errors import AmphoraError, PayloadTooLarge
from amphora.kit.openapi import errors
from amphora.show.deps import ShowEditor

router = APIRouter(tags=["analytics"])

# Not a setting: a month of a busy CDN's logs, gzipped, is far below it; split larger ones.
MAX_LOG_BYTES = 2 * 1024**3
LOG_TYPES = frozenset(
    {"", "text/plain", "application/gzip", "application/x-gzip", "application/octet-stream"}
)
LogFormat = Literal["combined", "cloudfront"]


class LogImportRead(BaseModel):
    """One imported log file and what became of its lines: ``lines`` = ``imported`` +
    ``duplicates`` + ``unmatched`` + ``malformed`` (blank lines and CloudFront's ``#``
    headers are not lines)."""

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "0193a1c2-7e4b-7c3d-9f10-2b3c4d5e6f70",
                    "show_id": "0193a1c2-1111-7c3d-9f10-2b3c4d5e6f70",
                    "user_id": "0193a1c2-2222-7c3d-9f10-2b3c4d5e6f70",
                    "format": "combined",
                    "file_name": "access.log-20261130.gz",
                    "lines": 48213,
                    "imported": 40125,
                    "duplicates": 0,
                    "unmatched": 8080,
                    "malformed": 8,
                    "created_at": "2026-12-01T09:30:00Z",
                }
            ]
        },
    )

    id: uuid.UUID
    show_id: uuid.UUID
    user_id: uuid.UUID | None = Field(description="Who imported it; null from the command line.")
    format: str
    file_name: str | None
    lines: int = Field(description="Log lines read.")
    imported: int = Field(description="New hits.")
    duplicates: int = Field(description="Lines imported before (this file or an overlapping one).")
    unmatched: int = Field(description="Lines for no episode file of this show.")
    malformed: int = Field(description="Lines that are no log line of this format.")
    created_at: datetime


@router.post(
    "/shows/{show_id}/analytics/logs",
    status_code=status.HTTP_201_CREATED,
    response_model=LogImportRead,
    responses=errors(401, 403, 404, 413, 415, 422),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                media_type: {"schema": {"type": "string", "format": "binary"}}
                for media_type in ("text/plain", "application/gzip", "application/octet-stream")
            },
        }
    },
)
@streams_body
async def import_logs(
    request: Request,
    access: ShowEditor,
    auth: CurrentAuth,
    session: SessionDep,
    runtime: RuntimeDep,
    fmt: Annotated[
        LogFormat,
        Query(
            alias="format",
            description="`combined` (Apache/nginx) or `cloudfront` (CloudFront standard logs).",
        ),
    ],
    name: Annotated[
        str | None, Query(max_length=255, description="The file's name, kept with the import.")
    ] = None,
) -> LogImportRead:
    """Import an access log of the show's episode files served elsewhere (a CDN, a web server,
    the previous host): each request for one of its episode files becomes a hit, counted like
    ours. The body is the log file (up to 2 GiB, gzipped or not). Lines imported before are
    skipped, so sending a file twice, or overlapping files, counts nothing twice. A body in
    which no line is a log line of the format is refused (422 `not_a_log`)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in LOG_TYPES:
        raise AmphoraError(
            "Send the log file as text/plain, application/gzip or application/octet-stream.",
            code="unsupported_media_type",
            status_code=415,
        )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_LOG_BYTES:
        raise PayloadTooLarge(f"Log files over {MAX_LOG_BYTES} bytes are not accepted.")
    show_id, user_id = access.show.id, auth.user.id
    # The import takes its own short transactions; the request's read transaction would
    # otherwise stay open for the whole upload (holding back SQLite's checkpoints, idle in
    # a transaction on PostgreSQL).
    await session.close()
    settings = runtime.settings
    record = await logimport.import_log(
        runtime.db,
        show_id=show_id,
        user_id=user_id,
        fmt=fmt,
        lines=logimport.stream_lines(request.stream(), limit=MAX_LOG_BYTES),
        file_name=name,
        key=client_hash_key(settings.resolved_secret_key),
        geo=geoip_for(settings),
    )
    return LogImportRead.model_validate(record)


@router.get(
    "/shows/{show_id}/analytics/logs",
    response_model=list[LogImportRead],
    responses=errors(401, 403, 404),
)
async def list_log_imports(
    access: AnalyticsViewer,
    session: SessionDep,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> list[LogImportRead]:
    """The show's imported log files, newest first."""
    rows = await logimport.list_log_imports(
        session, show_id=access.show.id, offset=offset, limit=limit
    )
    return [LogImportRead.model_validate(row) for row in rows]
