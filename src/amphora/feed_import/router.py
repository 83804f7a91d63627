"""Import API: start an import (a feed URL, or an Amphora export zip as the body), follow it,
cancel it, prove ownership of a locked feed."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Query, Request, status
from fastapi.responses import JSONResponse
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, ValidationError

from amphora.account.deps import Reader, Writer
from amphora.account.schemas import Input
from amphora.deps import RuntimeDep, SessionDep, streams_body
from amphora.feed_import import service
from amphora.feed_import.archive import archives_dir, read_archive
from amphora.feed_import.tasks import run_import
from amphora.kit.db import new_id
from amphora.kit.errors import AmphoraError, PayloadTooLarge, error_body
from amphora.kit.openapi import errors
from amphora.media.service import stage_stream
from amphora.models import ImportStatus, ShowImport

router = APIRouter(prefix="/imports", tags=["imports"])


class ImportCreate(Input):
    feed_url: Annotated[AnyHttpUrl, Field(max_length=2048)]
    mirror_media: bool = Field(
        True,
        description="Copy every enclosure here (true) or keep the old host's media URLs (false)."
        " Artwork, transcripts and chapters are always brought over.",
    )
    keep_in_sync: bool = Field(
        False, description="Re-read the old feed periodically and bring in new or changed items."
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "feed_url": "https://feeds.example.com/lighthouse-hour.xml",
                    "mirror_media": True,
                    "keep_in_sync": False,
                }
            ]
        }
    )


class ImportProgress(BaseModel):
    items_total: int
    items_done: int = Field(description="Episodes in place (published as on the old host).")
    files_total: int
    files_done: int = Field(description="Files brought over or given up on (see problems).")
    bytes_total: int = Field(description="Declared or actual sizes of the files (best known).")
    bytes_done: int


class ImportProblem(BaseModel):
    where: str
    field: str
    message: str


class ImportRead(BaseModel):
    id: uuid.UUID
    status: ImportStatus
    feed_url: str | None
    source: str = Field(description="feed or archive")
    show_id: uuid.UUID | None
    mirror_media: bool
    keep_in_sync: bool
    progress: ImportProgress
    problems: list[ImportProblem]
    error: dict[str, str] | None
    verify_email: str | None = Field(
        None, description="podcast:locked: where the ownership code was sent."
    )
    created_at: datetime
    finished_at: datetime | None
    last_synced_at: datetime | None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "01937b6e-8c7a-7d3e-9a52-6f1f0c2d4e11",
                    "status": "mirroring",
                    "feed_url": "https://feeds.example.com/lighthouse-hour.xml",
                    "source": "feed",
                    "show_id": "01937b6e-8d01-7aa0-8b3c-1d2e3f405162",
                    "mirror_media": True,
                    "keep_in_sync": False,
                    "progress": {
                        "items_total": 120,
                        "items_done": 48,
                        "files_total": 241,
                        "files_done": 97,
                        "bytes_total": 5_368_709_120,
                        "bytes_done": 2_147_483_648,
                    },
                    "problems": [
                        {
                            "where": "item ep-17",
                            "field": "itunes:duration",
                            "message": "'about an hour' is not a duration",
                        }
                    ],
                    "error": None,
                    "verify_email": None,
                    "created_at": "2026-12-04T09:00:00Z",
                    "finished_at": None,
                    "last_synced_at": None,
                }
            ]
        }
    )


class VerifyBody(Input):
    code: Annotated[str, Field(min_length=6, max_length=6, pattern=r"^\d{6}$")]


def _read(imp: ShowImport) -> ImportRead:
    return ImportRead(
        id=imp.id,
        status=ImportStatus(imp.status),
        feed_url=imp.feed_url,
        source="feed" if imp.feed_url else "archive",
        show_id=imp.show_id,
        mirror_media=imp.mirror_media,
        keep_in_sync=imp.keep_in_sync,
        progress=ImportProgress(
            items_total=imp.items_total,
            items_done=imp.items_done,
            files_total=imp.files_total,
            files_done=imp.files_done,
            bytes_total=imp.bytes_total,
            bytes_done=imp.bytes_done,
        ),
        problems=[ImportProblem(**p) for p in imp.problems],
        error=(
            {"code": imp.error_code, "message": imp.error_message or ""} if imp.error_code else None
        ),
        verify_email=imp.verify_email if imp.status == ImportStatus.verifying else None,
        created_at=imp.created_at,
        finished_at=imp.finished_at,
        last_synced_at=imp.last_synced_at,
    )


class InvalidImportRequest(AmphoraError):
    status_code = 422
    code = "validation_error"


def _parse_body(raw: bytes) -> ImportCreate:
    try:
        return ImportCreate.model_validate(json.loads(raw or b"null"))
    except (ValueError, ValidationError) as exc:
        details: Any = exc.errors(include_url=False) if isinstance(exc, ValidationError) else None
        raise InvalidImportRequest(
            "The body is not a valid import request.", details=details
        ) from exc


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ImportRead,
    responses=errors(401, 403, 409, 413, 415, 422),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": ImportCreate.model_json_schema()},
                "application/zip": {"schema": {"type": "string", "format": "binary"}},
            },
        }
    },
)
@streams_body
async def create_import(
    request: Request, auth: Writer, session: SessionDep, runtime: RuntimeDep
) -> ImportRead:
    """Import a show: JSON `{feed_url, mirror_media, keep_in_sync}` for a public feed, or an
    Amphora export zip as the body (`Content-Type: application/zip`). Answers at once; the work
    happens in a job: follow it with `GET /imports/{id}`."""
    settings = runtime.settings
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    archive = None
    try:
        if content_type == "application/zip":
            declared = request.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > settings.max_upload_bytes:
                raise PayloadTooLarge(
                    f"Archives over {settings.max_upload_bytes} bytes are refused."
                )
            folder = archives_dir(settings)
            folder.mkdir(parents=True, exist_ok=True)
            archive = folder / f"{new_id()}.zip"
            await stage_stream(request.stream(), archive, limit=settings.max_upload_bytes)
            # Its directory and manifest are read now: a zip that is no export is refused here
            # (422), not later in the job.
            await anyio.to_thread.run_sync(read_archive, archive)
            feed_url, mirror_media, keep_in_sync = None, True, False  # an archive holds its files
        elif content_type in ("application/json", ""):
            body = await request.body()
            if len(body) > settings.max_json_body_bytes:
                raise PayloadTooLarge
            data = _parse_body(body)
            feed_url, mirror_media, keep_in_sync = (
                str(data.feed_url),
                data.mirror_media,
                data.keep_in_sync,
            )
        else:
            raise AmphoraError(
                "Send JSON with a feed_url, or an export zip as application/zip.",
                code="unsupported_media_type",
                status_code=415,
            )
        async with runtime.db.session() as writer:
            imp = await service.create_import(
                writer,
                user=auth.user,
                feed_url=feed_url,
                archive_path=str(archive) if archive else None,
                mirror_media=mirror_media,
                keep_in_sync=keep_in_sync,
            )
            run_import.defer(writer, str(imp.id))
            return _read(imp)
    except BaseException:
        if archive is not None:
            archive.unlink(missing_ok=True)
        raise


@router.get("", response_model=list[ImportRead], responses=errors(401))
async def list_imports(
    auth: Reader,
    session: SessionDep,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> list[ImportRead]:
    """The caller's imports, newest first."""
    rows = await service.list_imports(session, user=auth.user, offset=offset, limit=limit)
    return [_read(imp) for imp in rows]


@router.get("/{import_id}", response_model=ImportRead, responses=errors(401, 404))
async def get_import(import_id: uuid.UUID, auth: Reader, session: SessionDep) -> ImportRead:
    """Status (`queued`, `fetching`, `parsing`, `verifying`, `mirroring`, `done`, `failed`,
    `cancelled`), progress and every problem met on the way."""
    return _read(await service.get_import(session, user=auth.user, import_id=import_id))


@router.post("/{import_id}/cancel", response_model=ImportRead, responses=errors(401, 404))
async def cancel_import(import_id: uuid.UUID, auth: Writer, session: SessionDep) -> ImportRead:
    """Stop the import (downloads stop within seconds; what arrived stays) and its syncing."""
    imp = await service.get_import(session, user=auth.user, import_id=import_id)
    return _read(await service.cancel_import(session, imp=imp))


@router.post("/{import_id}/verify", response_model=ImportRead, responses=errors(401, 404, 409, 422))
async def verify_import(
    import_id: uuid.UUID, body: VerifyBody, auth: Writer, session: SessionDep, runtime: RuntimeDep
) -> ImportRead | JSONResponse:
    """A locked feed (`podcast:locked yes`): the code mailed to the feed's owner address proves
    the caller may move it; the import then goes on."""
    imp = await service.get_import(session, user=auth.user, import_id=import_id)
    wrong = await service.verify_ownership(session, runtime.settings, imp=imp, code=body.code)
    if wrong is not None:  # answered, not raised: the used-up attempt is committed
        return JSONResponse(
            error_body(wrong.code, wrong.message, wrong.details), status_code=wrong.status_code
        )
    run_import.defer(session, str(imp.id))
    return _read(imp)
