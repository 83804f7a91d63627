"""Turning episode rows into response bodies, with media, artwork and transcripts loaded in
one query each per page (the query count does not grow with the page size)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from amphora.episode.schemas import EpisodeRead, MediaRead, TranscriptRead
from amphora.episode.service import status_of, transcripts_of
from amphora.kit.clock import utcnow
from amphora.models import Episode, MediaFile
from amphora.show.views import artwork_read, load_artworks

_FIELDS = [
    c.key for c in Episode.__table__.columns if c.key not in {"chapters", "media_id", "artwork_id"}
]


async def episode_reads(
    session: AsyncSession, base_url: str, episodes: Sequence[Episode | Any]
) -> list[EpisodeRead]:
    """Episodes (ORM objects or plain rows) as response bodies. The values come from our own
    validated rows, so the models are constructed without validating them again."""
    ids = [e.id for e in episodes]
    media_ids = {e.media_id for e in episodes if e.media_id}
    media = (
        {
            m.id: m
            for m in await session.scalars(select(MediaFile).where(MediaFile.id.in_(media_ids)))
        }
        if media_ids
        else {}
    )
    artworks = await load_artworks(session, [e.artwork_id for e in episodes])
    transcripts = await transcripts_of(session, ids)
    now = utcnow()
    reads = []
    for episode in episodes:
        found = media.get(episode.media_id) if episode.media_id else None
        art = artworks.get(episode.artwork_id) if episode.artwork_id else None
        reads.append(
            EpisodeRead.model_construct(
                **{key: getattr(episode, key) for key in _FIELDS},
                status=status_of(episode, now),
                has_chapters=episode.chapters is not None,
                media=_construct(MediaRead, found) if found else None,
                artwork=artwork_read(base_url, art),
                transcripts=[_construct(TranscriptRead, t) for t in transcripts[episode.id]],
            )
        )
    return reads


M = TypeVar("M", bound=BaseModel)


def _construct(model: type[M], row: object) -> M:
    return model.model_construct(**{name: getattr(row, name) for name in model.model_fields})
