"""Turning show rows into response bodies (artwork URLs loaded in one query per page)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from amphora.media.artwork_service import artwork_urls
from amphora.models import Artwork, Role, Show
from amphora.show.schemas import ArtworkRead, ShowRead


def artwork_read(base_url: str, artwork: Artwork | None) -> ArtworkRead | None:
    if artwork is None:
        return None
    urls = artwork_urls(base_url, artwork)
    return ArtworkRead(
        id=artwork.id,
        url=urls["master"],
        width=artwork.width,
        content_type=artwork.content_type,
        variants=urls,
    )


async def load_artworks(
    session: AsyncSession, ids: Sequence[uuid.UUID | None]
) -> dict[uuid.UUID, Artwork]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = await session.scalars(select(Artwork).where(Artwork.id.in_(wanted)))
    return {a.id: a for a in rows}


async def show_reads(
    session: AsyncSession, base_url: str, rows: Sequence[tuple[Show, Role]]
) -> list[ShowRead]:
    artworks = await load_artworks(session, [show.artwork_id for show, _ in rows])
    return [
        ShowRead.model_validate(
            {
                **{c.key: getattr(show, c.key) for c in Show.__table__.columns},
                "role": role.value,
                "artwork": artwork_read(
                    base_url, artworks.get(show.artwork_id) if show.artwork_id else None
                ),
            }
        )
        for show, role in rows
    ]
