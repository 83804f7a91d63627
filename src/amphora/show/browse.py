"""Across the caller's shows: full-text search and the trash."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel
from sqlalchemy import select

from amphora.account.deps import Reader
from amphora.deps import RuntimeDep, SessionDep
from amphora.episode import service as episodes
from amphora.episode.schemas import EpisodeRead, EpisodeType, Status
from amphora.episode.views import episode_reads
from amphora.kit.openapi import errors
from amphora.kit.pagination import Page, decode_cursor, encode_cursor
from amphora.models import Role, Show, ShowMember
from amphora.show import search as search_index
from amphora.show.schemas import ShowRead
from amphora.show.views import show_reads

router = APIRouter(tags=["search"])


class SearchHit(BaseModel):
    kind: Literal["show", "episode"]
    id: uuid.UUID
    show_id: uuid.UUID
    title: str
    snippet: str
    score: float


class Trash(BaseModel):
    shows: list[ShowRead]
    episodes: list[EpisodeRead]


@router.get("/search", response_model=Page[SearchHit], responses=errors(400, 401))
async def search(
    auth: Reader,
    session: SessionDep,
    q: Annotated[str, Query(min_length=1, max_length=200)],
    show_id: uuid.UUID | None = None,
    kind: Literal["show", "episode"] | None = None,
    series: uuid.UUID | None = None,
    season: Annotated[int | None, Query(ge=1)] = None,
    episode_type: EpisodeType | None = None,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    published_after: AwareDatetime | None = None,
    published_before: AwareDatetime | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: str | None = None,
) -> Page[SearchHit]:
    """Ranked matches in titles, show notes, series and people of your shows and episodes.
    Matched words are wrapped in `<mark>` in `title` and `snippet` (the rest is escaped)."""
    query = (
        select(Show.id)
        .join(ShowMember, ShowMember.show_id == Show.id)
        .where(ShowMember.user_id == auth.user.id, Show.deleted_at.is_(None))
    )
    if show_id is not None:
        query = query.where(Show.id == show_id)
    show_ids = list(await session.scalars(query))
    filters = episodes.EpisodeFilters(
        None, series, season, episode_type, status_, published_after, published_before
    )
    episode_only = any(
        value is not None
        for value in (series, season, episode_type, status_, published_after, published_before)
    )
    fingerprint = f"search:{q}:{show_id}:{kind}:{filters.fingerprint()}"
    offset = decode_cursor(cursor, fingerprint)
    include_episodes = kind != "show"
    include_shows = kind != "episode" and not episode_only
    hits = await search_index.search(
        session,
        q=q,
        show_ids=show_ids,
        episode_where=episodes.conditions(filters) if include_episodes else None,
        include_shows=include_shows,
        offset=offset,
        limit=limit + 1,
    )
    items = [SearchHit(**vars(hit)) for hit in hits[:limit]]
    more = len(hits) > limit
    return Page(
        items=items, next_cursor=encode_cursor(offset + limit, fingerprint) if more else None
    )


@router.get("/trash", response_model=Trash, responses=errors(401))
async def trash(auth: Reader, session: SessionDep, runtime: RuntimeDep) -> Trash:
    """Deleted shows (that you administer) and episodes (of shows you edit), with the date
    each will be purged for good. Restore them with `POST …/restore`."""
    shows, rows = await episodes.trash(session, user=auth.user)
    base = runtime.settings.base_url
    return Trash(
        shows=await show_reads(session, base, [(show, Role.admin) for show in shows]),
        episodes=await episode_reads(session, base, [episode for episode, _ in rows]),
    )
