"""HTTP routes for shows, their team, series and artwork."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, UploadFile, status

from amphora.account.deps import Reader, Writer
from amphora.deps import RuntimeDep, SessionDep
from amphora.kit.openapi import errors
from amphora.kit.pagination import Page, decode_cursor, encode_cursor
from amphora.media.artwork_service import MAX_ARTWORK_BYTES, store_artwork
from amphora.media.uploads import read_limited
from amphora.models import Show, ShowMember, User
from amphora.show import service
from amphora.show.deps import DeletedShowAdmin, ShowAdmin, ShowEditor, ShowViewer
from amphora.show.schemas import (
    MemberCreate,
    MemberRead,
    MemberUpdate,
    SeriesCreate,
    SeriesRead,
    SeriesUpdate,
    ShowCreate,
    ShowRead,
    ShowUpdate,
)
from amphora.show.service import ShowAccess, etag
from amphora.show.views import show_reads

router = APIRouter(prefix="/shows", tags=["shows"])
IfMatch = Annotated[str | None, Header(description="The ETag you read; 412 if it changed.")]


async def _read(
    session: SessionDep, runtime: RuntimeDep, access: ShowAccess, response: Response
) -> ShowRead:
    response.headers["ETag"] = etag(access.show.version)
    return (await show_reads(session, runtime.settings.base_url, [(access.show, access.role)]))[0]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ShowRead,
    responses=errors(401, 403, 409, 422),
)
async def create_show(
    data: ShowCreate, auth: Writer, session: SessionDep, runtime: RuntimeDep, response: Response
) -> ShowRead:
    """Create a show (verified accounts only). The slug comes from the title unless given."""
    access = await service.create_show(
        session, user=auth.user, data=data, base_url=runtime.settings.base_url
    )
    return await _read(session, runtime, access, response)


@router.get("", response_model=Page[ShowRead], responses=errors(401))
async def list_shows(
    auth: Reader,
    session: SessionDep,
    runtime: RuntimeDep,
    q: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: str | None = None,
) -> Page[ShowRead]:
    """Shows you are on the team of, newest first."""
    fingerprint = f"shows:{q}"
    offset = decode_cursor(cursor, fingerprint)
    rows = await service.list_shows(session, user=auth.user, q=q, offset=offset, limit=limit + 1)
    items = await show_reads(session, runtime.settings.base_url, rows[:limit])
    more = len(rows) > limit
    return Page(
        items=items, next_cursor=encode_cursor(offset + limit, fingerprint) if more else None
    )


@router.get("/{show_id}", response_model=ShowRead, responses=errors(401, 404))
async def get_show(
    access: ShowViewer, session: SessionDep, runtime: RuntimeDep, response: Response
) -> ShowRead:
    return await _read(session, runtime, access, response)


@router.patch("/{show_id}", response_model=ShowRead, responses=errors(401, 403, 404, 409, 412, 422))
async def update_show(
    data: ShowUpdate,
    access: ShowEditor,
    session: SessionDep,
    runtime: RuntimeDep,
    response: Response,
    if_match: IfMatch = None,
) -> ShowRead:
    """Change any fields; send `If-Match` with the ETag you read to avoid overwriting others."""
    await service.update_show(session, access=access, data=data, if_match=if_match)
    return await _read(session, runtime, access, response)


@router.delete("/{show_id}", response_model=ShowRead, responses=errors(401, 403, 404))
async def delete_show(
    access: ShowAdmin, session: SessionDep, runtime: RuntimeDep, response: Response
) -> ShowRead:
    """Move the show and its episodes to the trash; restorable until `purge_after`."""
    await service.delete_show(session, access=access, grace_days=runtime.settings.delete_grace_days)
    return await _read(session, runtime, access, response)


@router.post("/{show_id}/restore", response_model=ShowRead, responses=errors(401, 403, 404))
async def restore_show(
    access: DeletedShowAdmin, session: SessionDep, runtime: RuntimeDep, response: Response
) -> ShowRead:
    """Bring a show back from the trash, with the episodes deleted along with it."""
    await service.restore_show(session, access=access)
    return await _read(session, runtime, access, response)


@router.put(
    "/{show_id}/artwork", response_model=ShowRead, responses=errors(401, 403, 404, 413, 422)
)
async def put_show_artwork(
    file: UploadFile,
    access: ShowEditor,
    auth: Writer,
    session: SessionDep,
    runtime: RuntimeDep,
    response: Response,
) -> ShowRead:
    """Square JPEG, PNG or WebP, at least 1400 px. Stored as RGB JPEG/PNG (max 3000 px) plus
    web sizes; every change gets a new URL."""
    data = await read_limited(file, MAX_ARTWORK_BYTES)
    artwork = await store_artwork(
        session, runtime.storage, show_id=access.show.id, user=auth.user, data=data
    )
    access.show.artwork_id = artwork.id
    access.show.version += 1
    await session.flush()
    return await _read(session, runtime, access, response)


# --- team -----------------------------------------------------------------------------------------


def _member(member: ShowMember, user: User, show: Show) -> MemberRead:
    return MemberRead(
        user_id=user.id,
        email=user.email,
        display_name=user.display_name,
        role=member.role,
        is_owner=user.id == show.owner_id,
    )


@router.get("/{show_id}/members", response_model=list[MemberRead], responses=errors(401, 404))
async def list_members(access: ShowViewer, session: SessionDep) -> list[MemberRead]:
    rows = await service.list_members(session, show=access.show)
    return [_member(m, u, access.show) for m, u in rows]


@router.post(
    "/{show_id}/members",
    status_code=status.HTTP_201_CREATED,
    response_model=MemberRead,
    responses=errors(401, 403, 404, 409, 422),
)
async def add_member(data: MemberCreate, access: ShowAdmin, session: SessionDep) -> MemberRead:
    """Add someone with an Amphora account as admin, editor or viewer."""
    member, user = await service.add_member(session, show=access.show, data=data)
    return _member(member, user, access.show)


@router.patch(
    "/{show_id}/members/{user_id}", response_model=MemberRead, responses=errors(401, 403, 404, 409)
)
async def update_member(
    user_id: uuid.UUID, data: MemberUpdate, access: ShowAdmin, session: SessionDep
) -> MemberRead:
    member, user = await service.update_member(
        session, show=access.show, user_id=user_id, data=data
    )
    return _member(member, user, access.show)


@router.delete(
    "/{show_id}/members/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(401, 403, 404, 409),
)
async def remove_member(user_id: uuid.UUID, access: ShowAdmin, session: SessionDep) -> Response:
    await service.remove_member(session, show=access.show, user_id=user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- series ---------------------------------------------------------------------------------------


@router.get("/{show_id}/series", response_model=list[SeriesRead], responses=errors(401, 404))
async def list_series(access: ShowViewer, session: SessionDep) -> object:
    return await service.list_series(session, show=access.show)


@router.post(
    "/{show_id}/series",
    status_code=status.HTTP_201_CREATED,
    response_model=SeriesRead,
    responses=errors(401, 403, 404, 409, 422),
)
async def create_series(data: SeriesCreate, access: ShowEditor, session: SessionDep) -> object:
    return await service.create_series(session, show=access.show, data=data)


@router.patch(
    "/{show_id}/series/{series_id}", response_model=SeriesRead, responses=errors(401, 403, 404, 409)
)
async def update_series(
    series_id: uuid.UUID, data: SeriesUpdate, access: ShowEditor, session: SessionDep
) -> object:
    return await service.update_series(session, show=access.show, series_id=series_id, data=data)


@router.delete(
    "/{show_id}/series/{series_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(401, 403, 404),
)
async def delete_series(series_id: uuid.UUID, access: ShowEditor, session: SessionDep) -> Response:
    """Delete a series; its episodes stay, outside any series."""
    await service.delete_series(session, show=access.show, series_id=series_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
