"""Public file routes. Artwork is immutable per URL (a new image gets a new id), so it is
cached for a year. Local files stream from disk; with S3 the client is redirected."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from amphora.deps import RuntimeDep, SessionDep
from amphora.kit.errors import NotFound
from amphora.models import Artwork

router = APIRouter(tags=["public"])
IMMUTABLE = "public, max-age=31536000, immutable"


@router.api_route(
    "/artwork/{artwork_id}/{name}.{ext}", methods=["GET", "HEAD"], include_in_schema=False
)
async def artwork_file(
    artwork_id: uuid.UUID,
    name: Annotated[str, Path(max_length=16)],
    ext: Annotated[str, Path(pattern=r"^(jpg|png)$")],
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
) -> Response:
    artwork = await session.get(Artwork, artwork_id)
    variant = next(
        (v for v in (artwork.variants if artwork else []) if v["name"] == name),
        None,
    )
    if variant is None or not variant["key"].endswith(f".{ext}"):
        raise NotFound("No such image.")
    key, content_type, size = variant["key"], variant["content_type"], int(variant["size"])
    remote = await runtime.storage.url(key)
    if remote is not None:
        return RedirectResponse(remote, status_code=302, headers={"Cache-Control": "no-store"})
    headers = {"Content-Length": str(size), "Cache-Control": IMMUTABLE, "Accept-Ranges": "none"}
    if request.method == "HEAD":
        return Response(status_code=200, headers=headers, media_type=content_type)
    return StreamingResponse(runtime.storage.read(key), headers=headers, media_type=content_type)
