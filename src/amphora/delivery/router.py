"""Public file routes: enclosures, transcripts, chapters and artwork (GET and HEAD, no auth).

Path parts are taken as plain strings and checked by the service, so that a malformed id is
a 404 like any other unknown file (never a 422 that tells ids apart from slugs).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from amphora.delivery import service
from amphora.delivery.files import ServedResponse
from amphora.delivery.hits import HitRecorder
from amphora.deps import RuntimeDep, SessionDep, client_address_of
from amphora.kit.clock import utcnow
from amphora.kit.openapi import errors, get_and_head

router = APIRouter(tags=["public"])
MEDIA_TYPES = ("audio/mpeg", "audio/x-m4a", "video/mp4", "video/quicktime")


# Async dependencies: FastAPI runs plain `def` ones in a worker thread, a hop each (these
# routes are the hottest of the app).
async def requester(request: Request, runtime: RuntimeDep) -> service.Requester:
    return service.Requester(
        method=request.method,
        headers=request.headers,
        client_address=client_address_of(request, runtime),
        at=utcnow(),
    )


async def hit_recorder(request: Request) -> HitRecorder | None:
    recorder: HitRecorder | None = getattr(request.app.state, "hits", None)
    return recorder


RequesterDep = Annotated[service.Requester, Depends(requester)]
HitsDep = Annotated[HitRecorder | None, Depends(hit_recorder)]


@get_and_head(
    router,
    "/e/{slug}/{episode_id}/{media_id}.{ext}",
    summary="Episode media file (enclosure)",
    response_description="The whole file.",
    responses={
        200: {"content": {t: {} for t in MEDIA_TYPES}},
        206: {"description": "One byte range (`Range: bytes=a-b`, `a-`, `-n`)."},
        302: {"description": "Redirect to object storage or the CDN."},
        416: {"description": "The range starts past the end (`Content-Range: bytes */N`)."},
        **errors(404),
    },
)
async def enclosure(
    slug: str,
    episode_id: str,
    media_id: str,
    ext: str,
    session: SessionDep,
    runtime: RuntimeDep,
    hits: HitsDep,
    who: RequesterDep,
    key: Annotated[str | None, Query(description="Subscriber token from a private feed.")] = None,
) -> ServedResponse:
    """The media file a feed's `<enclosure>` points at, with HEAD and single byte ranges.
    Local files are served directly; with object storage the answer is a `302` to it.
    Premium episodes need `?key=` (a subscriber's token). Every request is logged (raw hit
    log, client address hashed) for audience figures."""
    return await service.serve_enclosure(
        session,
        runtime.storage,
        runtime.cache,
        hits,
        slug=slug,
        episode_id=episode_id,
        media_id=media_id,
        extension=ext,
        key=key,
        requester=who,
        url_lifetime=runtime.settings.media_url_seconds,
    )


@get_and_head(
    router,
    "/transcripts/{transcript_id}.{ext}",
    summary="Episode transcript",
    responses=errors(404),
)
async def transcript(
    transcript_id: str, ext: str, session: SessionDep, runtime: RuntimeDep, who: RequesterDep
) -> ServedResponse:
    """A transcript or captions file (`podcast:transcript`), with its own content type."""
    return await service.serve_transcript(
        session,
        runtime.storage,
        transcript_id=transcript_id,
        extension=ext,
        requester=who,
        url_lifetime=runtime.settings.media_url_seconds,
    )


@get_and_head(
    router,
    "/chapters/{episode_id}/{version}.json",
    summary="Episode chapters",
    responses=errors(404),
)
async def chapters(
    episode_id: str, version: str, session: SessionDep, who: RequesterDep
) -> ServedResponse:
    """The episode's Podcasting 2.0 JSON chapters (`application/json+chapters`)."""
    return await service.serve_chapters(
        session, episode_id=episode_id, version=version, requester=who
    )


@get_and_head(
    router,
    "/artwork/{artwork_id}/{name}.{ext}",
    include_in_schema=False,
)
async def artwork_file(
    artwork_id: str,
    name: str,
    ext: str,
    session: SessionDep,
    runtime: RuntimeDep,
    who: RequesterDep,
) -> ServedResponse:
    return await service.serve_artwork(
        session,
        runtime.storage,
        artwork_id=artwork_id,
        name=name,
        extension=ext,
        requester=who,
        url_lifetime=runtime.settings.media_url_seconds,
    )
