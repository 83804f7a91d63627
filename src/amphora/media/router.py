"""Resumable uploads for large media: create, send ranges, ask where to resume, complete.

POST  /uploads {filename, size, content_type, episode_id}   → 201 {id, offset: 0}
PATCH /uploads/{id}  Content-Range: bytes 0-1048575/52428800  (raw bytes)
HEAD  /uploads/{id}  → Upload-Offset: <bytes received>  (after a broken connection)
POST  /uploads/{id}/complete → 202; a job stores the file and attaches it to the episode
"""

from __future__ import annotations

import contextlib
import re
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from amphora.account.deps import CurrentAuth, Writer
from amphora.account.schemas import Input
from amphora.deps import RuntimeDep, SessionDep, streams_body
from amphora.episode.service import episode_access
from amphora.kit.clock import utcnow
from amphora.kit.errors import AmphoraError, Conflict, NotFound, PayloadTooLarge, error_body
from amphora.kit.jobs import crontab, job, periodic
from amphora.kit.openapi import errors
from amphora.media import service as media
from amphora.models import Episode, Role, Upload, UploadStatus, User
from amphora.settings import Settings

router = APIRouter(prefix="/uploads", tags=["uploads"])
UPLOAD_TTL = timedelta(days=2)
_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")


class UploadCreate(Input):
    filename: Annotated[str, Field(min_length=1, max_length=255)]
    size: Annotated[int, Field(gt=0)]
    content_type: Annotated[str, Field(max_length=128)]
    episode_id: uuid.UUID

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "filename": "episode-12.mp3",
                    "size": 52428800,
                    "content_type": "audio/mpeg",
                    "episode_id": "0193a1c2-7e4b-7c3d-9f10-2b3c4d5e6f70",
                }
            ]
        }
    )


class UploadRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    episode_id: uuid.UUID | None
    filename: str
    content_type: str
    size: int
    offset: int = Field(validation_alias="received")
    status: str
    error_code: str | None
    error: str | None
    media_id: uuid.UUID | None
    expires_at: datetime


def staged_path(settings: Settings, upload_id: uuid.UUID) -> Path:
    return media.staging_dir(settings) / f"{upload_id}.part"


async def _own_upload(session: AsyncSession, upload_id: uuid.UUID, user: User) -> Upload:
    upload = await session.get(Upload, upload_id)
    if upload is None or upload.user_id != user.id:
        raise NotFound("No such upload.")
    return upload


def _offset_headers(upload: Upload) -> dict[str, str]:
    return {
        "Upload-Offset": str(upload.received),
        "Upload-Length": str(upload.size),
        "Cache-Control": "no-store",
    }


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=UploadRead,
    responses=errors(401, 404, 413, 415),
)
async def create_upload(
    data: UploadCreate, auth: Writer, session: SessionDep, runtime: RuntimeDep
) -> object:
    """Start an upload for an episode you can edit. Quota is checked against the size now."""
    access = await episode_access(
        session, episode_id=data.episode_id, user=auth.user, minimum=Role.editor
    )
    media.check_declared_type(data.content_type)
    settings = runtime.settings
    if data.size > settings.max_upload_bytes:
        raise PayloadTooLarge(f"Files over {settings.max_upload_bytes} bytes are not accepted.")
    await media.reserve_quota(
        session, settings, owner_id=access.show.owner_id, size=data.size, consume=False
    )
    upload = Upload(
        user_id=auth.user.id,
        episode_id=access.episode.id,
        filename=data.filename,
        content_type=data.content_type,
        size=data.size,
        expires_at=utcnow() + UPLOAD_TTL,
    )
    session.add(upload)
    await session.flush()
    staged_path(settings, upload.id).touch()
    return upload


@router.get("/{upload_id}", response_model=UploadRead, responses=errors(401, 404))
async def get_upload(upload_id: uuid.UUID, auth: CurrentAuth, session: SessionDep) -> object:
    return await _own_upload(session, upload_id, auth.user)


@router.head("/{upload_id}", responses=errors(401, 404))
async def upload_offset(upload_id: uuid.UUID, auth: CurrentAuth, session: SessionDep) -> Response:
    """Where to resume: the `Upload-Offset` header holds the bytes received so far."""
    upload = await _own_upload(session, upload_id, auth.user)
    return Response(status_code=200, headers=_offset_headers(upload))


@router.patch("/{upload_id}", response_model=UploadRead, responses=errors(400, 401, 404, 409, 413))
@streams_body
async def send_range(
    upload_id: uuid.UUID,
    request: Request,
    auth: Writer,
    session: SessionDep,
    runtime: RuntimeDep,
    response: Response,
    content_range: Annotated[str, Header(description="bytes first-last/total")],
) -> object:
    """Send the bytes from the current offset on. If the connection breaks, ask `HEAD` for the
    offset and continue from there; a range that does not start at the offset gets 409."""
    upload = await _own_upload(session, upload_id, auth.user)
    if upload.status != UploadStatus.open:
        raise Conflict("This upload is already complete.", code="upload_closed")
    match = _RANGE.match(content_range.strip())
    if not match:
        raise AmphoraError("Content-Range must look like 'bytes 0-999/5000'.", code="bad_range")
    first, last, total = (int(g) for g in match.groups())
    if total != upload.size or last < first or last >= total:
        raise AmphoraError("Content-Range does not fit the upload's size.", code="bad_range")
    if first != upload.received:
        raise Conflict(
            f"Resume from byte {upload.received}.",
            code="offset_mismatch",
            details={"offset": upload.received},
        )
    written = await media.stage_stream(
        request.stream(), staged_path(runtime.settings, upload.id), limit=last + 1, offset=first
    )
    async with runtime.db.session() as writer:
        # Only this request may move the offset from `first` (two racing requests: one wins).
        moved = await writer.execute(
            update(Upload)
            .where(Upload.id == upload.id, Upload.received == first)
            .values(received=first + written, updated_at=utcnow())
        )
        if moved.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict("Another request is sending this upload.", code="offset_mismatch")
        current = await writer.get(Upload, upload.id, populate_existing=True)
        assert current is not None
    response.headers.update(_offset_headers(current))
    return current


@router.post(
    "/{upload_id}/complete",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=UploadRead,
    responses=errors(401, 404, 409, 415, 422),
)
async def complete_upload(
    upload_id: uuid.UUID, auth: Writer, session: SessionDep, runtime: RuntimeDep
) -> object:
    """Check what the file really is now (415/422 at once for the wrong thing, and nothing is
    kept); then a job stores it and attaches it to the episode: poll `GET /uploads/{id}`."""
    upload = await _own_upload(session, upload_id, auth.user)
    if upload.status != UploadStatus.open:
        raise Conflict("This upload was already completed.", code="upload_closed")
    if upload.received != upload.size:
        raise Conflict(
            f"Only {upload.received} of {upload.size} bytes arrived.",
            code="upload_incomplete",
            details={"offset": upload.received},
        )
    path = staged_path(runtime.settings, upload.id)
    try:
        await media.probe(path)
    except AmphoraError as exc:
        # Nothing is kept of a refused file. Answered rather than raised, so that the
        # deletion commits instead of being rolled back with the error.
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        await session.delete(upload)
        await session.flush()
        return JSONResponse(
            error_body(exc.code, exc.message, exc.details), status_code=exc.status_code
        )
    upload.status = UploadStatus.processing
    await session.flush()
    finish_upload.defer(session, str(upload.id))
    return upload


@router.delete("/{upload_id}", status_code=status.HTTP_204_NO_CONTENT, responses=errors(401, 404))
async def cancel_upload(
    upload_id: uuid.UUID, auth: Writer, session: SessionDep, runtime: RuntimeDep
) -> Response:
    upload = await _own_upload(session, upload_id, auth.user)
    if upload.status == UploadStatus.processing:
        raise Conflict("This upload is being stored already.", code="upload_closed")
    await session.delete(upload)
    await session.flush()
    with contextlib.suppress(FileNotFoundError):
        staged_path(runtime.settings, upload.id).unlink()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- jobs -----------------------------------------------------------------------------------------


class _AlreadyHandled(Exception):
    """Another run of the job finished this upload meanwhile."""


@job(retries=3, retry_delay=10)
async def finish_upload(ctx: Any, upload_id: str) -> None:
    """Store the staged file and attach it. Idempotent: a finished upload is left alone."""
    settings: Settings = ctx.settings
    uid = uuid.UUID(upload_id)
    path = staged_path(settings, uid)
    failure: AmphoraError | None = None
    async with ctx.db.session(write=False) as session:
        upload = await session.get(Upload, uid)
        if upload is None or upload.status != UploadStatus.processing:
            return
        episode = await session.get(Episode, upload.episode_id) if upload.episode_id else None
        filename = upload.filename
    try:
        if episode is None or episode.deleted_at is not None:
            raise NotFound("The episode is gone.", code="episode_gone")
        info = await media.probe(path)
        # The copy into storage runs outside any transaction; the rows in a short one.
        async with (
            media.stored_media(
                ctx.storage, show_id=episode.show_id, staged=path, info=info
            ) as stored,
            ctx.db.session() as session,
        ):
            upload = await session.get(Upload, uid)
            episode = await session.get(Episode, episode.id)
            if upload is None or upload.status != UploadStatus.processing:
                raise _AlreadyHandled
            if episode is None:
                raise NotFound("The episode is gone.", code="episode_gone")
            attached = await media.record_media(
                session, settings, episode=episode, stored=stored, filename=filename
            )
            upload.status, upload.media_id = UploadStatus.done, attached.id
    except _AlreadyHandled:
        return
    except AmphoraError as exc:  # the file or quota will not change on a retry
        failure = exc
    if failure is not None:
        async with ctx.db.session() as session:
            upload = await session.get(Upload, uid)
            if upload is not None:
                upload.status = UploadStatus.failed
                upload.error_code, upload.error = failure.code, failure.message
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


@periodic(crontab(minute="*/30"))
async def expire_uploads(ctx: Any) -> None:
    """Forget uploads nobody finished before they expired, and their staged bytes."""
    from sqlalchemy import select

    async with ctx.db.session() as session:
        stale = (
            await session.scalars(
                select(Upload).where(
                    Upload.status == UploadStatus.open, Upload.expires_at < utcnow()
                )
            )
        ).all()
        for upload in stale:
            with contextlib.suppress(FileNotFoundError):
                staged_path(ctx.settings, upload.id).unlink()
            await session.delete(upload)
