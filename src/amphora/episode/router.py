"""HTTP routes for episodes, their audio, artwork, transcripts and chapters."""

from __future__ import annotations

import contextlib
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Form, Header, Query, Request, Response, UploadFile, status
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime

from amphora.account.deps import Writer
from amphora.deps import RuntimeDep, SessionDep, streams_body
from amphora.episode import service
from amphora.episode.deps import DeletedEpisodeEditor, EpisodeEditor, EpisodeViewer
from amphora.episode.schemas import (
    EpisodeCreate,
    EpisodeRead,
    EpisodeType,
    EpisodeUpdate,
    NextNumber,
    Status,
    TranscriptRead,
)
from amphora.episode.service import EpisodeAccess, EpisodeFilters, Sort
from amphora.episode.views import episode_reads
from amphora.kit.db import new_id
from amphora.kit.errors import NotFound, PayloadTooLarge
from amphora.kit.openapi import errors
from amphora.kit.pagination import Page, decode_cursor, encode_cursor, page_response
from amphora.media import service as media
from amphora.media.artwork_service import MAX_ARTWORK_BYTES, store_artwork
from amphora.media.uploads import read_limited
from amphora.models import Episode
from amphora.runtime import Runtime
from amphora.show.deps import ShowEditor, ShowViewer
from amphora.show.service import etag

router = APIRouter(tags=["episodes"])
IfMatch = Annotated[str | None, Header(description="The ETag you read; 412 if it changed.")]
MAX_TRANSCRIPT_BYTES = 10 * 1024 * 1024


async def _read(
    session: SessionDep, runtime: Runtime, access: EpisodeAccess, response: Response
) -> EpisodeRead:
    response.headers["ETag"] = etag(access.episode.version)
    return (await episode_reads(session, runtime.settings.base_url, [access.episode]))[0]


@router.post(
    "/shows/{show_id}/episodes",
    status_code=status.HTTP_201_CREATED,
    response_model=EpisodeRead,
    responses=errors(401, 403, 404, 409, 422),
)
async def create_episode(
    data: EpisodeCreate,
    access: ShowEditor,
    session: SessionDep,
    runtime: RuntimeDep,
    response: Response,
) -> EpisodeRead:
    """A draft (no `publish_at`), scheduled (future) or published (past) episode."""
    episode = await service.create_episode(session, access=access, data=data)
    return await _read(session, runtime, EpisodeAccess(episode, access.show, access.role), response)


@router.get(
    "/shows/{show_id}/episodes", response_model=Page[EpisodeRead], responses=errors(400, 401, 404)
)
async def list_episodes(
    access: ShowViewer,
    session: SessionDep,
    runtime: RuntimeDep,
    q: Annotated[str | None, Query(max_length=200, description="Words in the title.")] = None,
    series: Annotated[uuid.UUID | None, Query(description="A series id.")] = None,
    season: Annotated[int | None, Query(ge=1)] = None,
    episode_type: EpisodeType | None = None,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    published_after: AwareDatetime | None = None,
    published_before: AwareDatetime | None = None,
    sort: Sort = "-published",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> Response:
    """Live episodes, filtered and sorted; follow `next_cursor` for the next page."""
    filters = EpisodeFilters(
        q, series, season, episode_type, status_, published_after, published_before
    )
    fingerprint = f"{access.show.id}:{filters.fingerprint()}:{sort}"
    offset = decode_cursor(cursor, fingerprint)
    rows = await service.list_episodes(
        session, show=access.show, filters=filters, sort=sort, offset=offset, limit=limit + 1
    )
    items = await episode_reads(session, runtime.settings.base_url, rows[:limit])
    more = len(rows) > limit
    cursor_out = encode_cursor(offset + limit, fingerprint) if more else None
    return page_response(Page(items=items, next_cursor=cursor_out))


@router.get(
    "/shows/{show_id}/episodes/next-number",
    response_model=list[NextNumber],
    responses=errors(401, 404),
)
async def next_number(access: ShowViewer, session: SessionDep) -> list[NextNumber]:
    """The next free episode number in each season (helps keep numbering consistent)."""
    rows = await service.next_numbers(session, show=access.show)
    return [NextNumber(season=season, next_number=n) for season, n in rows]


@router.get("/episodes/{episode_id}", response_model=EpisodeRead, responses=errors(401, 404))
async def get_episode(
    access: EpisodeViewer, session: SessionDep, runtime: RuntimeDep, response: Response
) -> EpisodeRead:
    return await _read(session, runtime, access, response)


@router.patch(
    "/episodes/{episode_id}",
    response_model=EpisodeRead,
    responses=errors(401, 403, 404, 409, 412, 422),
)
async def update_episode(
    data: EpisodeUpdate,
    access: EpisodeEditor,
    session: SessionDep,
    runtime: RuntimeDep,
    response: Response,
    if_match: IfMatch = None,
) -> EpisodeRead:
    await service.update_episode(session, access=access, data=data, if_match=if_match)
    return await _read(session, runtime, access, response)


@router.delete(
    "/episodes/{episode_id}", response_model=EpisodeRead, responses=errors(401, 403, 404)
)
async def delete_episode(
    access: EpisodeEditor, session: SessionDep, runtime: RuntimeDep, response: Response
) -> EpisodeRead:
    """Move to the trash; restorable until `purge_after`."""
    await service.delete_episode(
        session, access=access, grace_days=runtime.settings.delete_grace_days
    )
    return await _read(session, runtime, access, response)


@router.post(
    "/episodes/{episode_id}/restore",
    response_model=EpisodeRead,
    responses=errors(401, 403, 404, 409),
)
async def restore_episode(
    access: DeletedEpisodeEditor, session: SessionDep, runtime: RuntimeDep, response: Response
) -> EpisodeRead:
    await service.restore_episode(session, access=access)
    return await _read(session, runtime, access, response)


@router.put(
    "/episodes/{episode_id}/artwork",
    response_model=EpisodeRead,
    responses=errors(401, 403, 404, 413, 422),
)
async def put_episode_artwork(
    file: UploadFile,
    access: EpisodeEditor,
    auth: Writer,
    session: SessionDep,
    runtime: RuntimeDep,
    response: Response,
) -> EpisodeRead:
    data = await read_limited(file, MAX_ARTWORK_BYTES)
    artwork = await store_artwork(
        session, runtime.storage, show_id=access.show.id, user=auth.user, data=data
    )
    access.episode.artwork_id = artwork.id
    access.episode.version += 1
    access.show.version += 1
    await session.flush()
    return await _read(session, runtime, access, response)


@router.put(
    "/episodes/{episode_id}/audio",
    response_model=EpisodeRead,
    responses=errors(401, 403, 404, 413, 415, 422),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"audio/mpeg": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
@streams_body
async def put_audio(
    request: Request,
    access: EpisodeEditor,
    session: SessionDep,
    runtime: RuntimeDep,
    response: Response,
    x_filename: Annotated[str | None, Header(max_length=255)] = None,
) -> EpisodeRead:
    """Upload a small file in one request (the raw bytes as the body). MP3, M4A/AAC or MP4;
    the server probes the real format. For large files use the resumable `/uploads`."""
    settings = runtime.settings
    media.check_declared_type(request.headers.get("content-type"))
    declared = request.headers.get("content-length")
    limit = settings.max_direct_upload_bytes
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"Files over {limit} bytes go through /uploads.")
    if declared and declared.isdigit():
        await media.reserve_quota(
            session, settings, owner_id=access.show.owner_id, size=int(declared), consume=False
        )
    staged = media.staging_dir(settings) / f"direct-{new_id()}.part"
    try:
        await media.stage_stream(request.stream(), staged, limit=limit)
        info = await media.probe(staged)
        async with (
            media.stored_media(
                runtime.storage, show_id=access.show.id, staged=staged, info=info, move=True
            ) as stored,
            runtime.db.session() as writer,
        ):
            episode = await writer.get(Episode, access.episode.id)
            if episode is None or episode.deleted_at is not None:
                raise NotFound("No such episode.")
            await media.record_media(
                writer, settings, episode=episode, stored=stored, filename=x_filename
            )
            response.headers["ETag"] = etag(episode.version)
            # Read back in the writer: the request's own snapshot predates this write.
            return (await episode_reads(writer, settings.base_url, [episode]))[0]
    finally:
        with contextlib.suppress(FileNotFoundError):
            staged.unlink()


# --- transcripts and chapters ---------------------------------------------------------------------


@router.post(
    "/episodes/{episode_id}/transcripts",
    status_code=status.HTTP_201_CREATED,
    response_model=TranscriptRead,
    responses=errors(401, 403, 404, 413, 415, 422),
)
async def add_transcript(
    file: UploadFile,
    access: EpisodeEditor,
    session: SessionDep,
    runtime: RuntimeDep,
    language: Annotated[str | None, Form(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")] = None,
    captions: Annotated[bool, Form()] = False,
) -> object:
    """SRT, WebVTT, JSON (Podcasting 2.0) or HTML; `captions` marks timed captions."""
    data = await read_limited(file, MAX_TRANSCRIPT_BYTES)
    return await service.add_transcript(
        session,
        runtime.storage,
        access=access,
        data=data,
        declared=file.content_type,
        filename=file.filename,
        language=language,
        captions=captions,
    )


@router.delete(
    "/episodes/{episode_id}/transcripts/{transcript_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(401, 403, 404),
)
async def delete_transcript(
    transcript_id: uuid.UUID,
    access: EpisodeEditor,
    session: SessionDep,
    runtime: RuntimeDep,
) -> Response:
    await service.delete_transcript(
        session, runtime.storage, access=access, transcript_id=transcript_id
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/episodes/{episode_id}/chapters", responses=errors(401, 404))
async def get_chapters(access: EpisodeViewer) -> JSONResponse:
    """The episode's chapters as Podcasting 2.0 JSON chapters."""
    if access.episode.chapters is None:
        raise NotFound("This episode has no chapters.")
    return JSONResponse(access.episode.chapters, media_type="application/json+chapters")


@router.put("/episodes/{episode_id}/chapters", responses=errors(401, 403, 404, 422))
async def put_chapters(
    access: EpisodeEditor,
    session: SessionDep,
    document: Annotated[dict[str, Any], Body()],
) -> JSONResponse:
    """Set chapters (`{"version": "1.2.0", "chapters": [{"startTime": 0, "title": …}]}`)."""
    chapters = await service.set_chapters(session, access=access, document=document)
    return JSONResponse(chapters, media_type="application/json+chapters")


@router.delete(
    "/episodes/{episode_id}/chapters",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(401, 403, 404),
)
async def delete_chapters(access: EpisodeEditor, session: SessionDep) -> Response:
    await service.clear_chapters(session, access=access)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
