"""Catalog rows written straight through the models (fast, and independent of the catalog API):
a show, published or not episodes with a real MP3 in storage, subscribers, old slugs."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from amphora.kit.clock import utcnow
from amphora.kit.db import new_id
from amphora.kit.security import hash_token, new_token
from amphora.media.testaudio import tone_mp3
from amphora.models import Episode, FeedSlug, Hit, MediaFile, Show, Subscriber, User
from amphora.runtime import Runtime

PAST = timedelta(days=-1)
_MP3: bytes | None = None


def mp3() -> bytes:
    """A real 3-second MP3 (with an ID3 tag), made once per test session."""
    global _MP3
    if _MP3 is None:
        _MP3 = tone_mp3(3, title="Delivery test")
    return _MP3


@dataclass
class SeededShow:
    id: uuid.UUID
    slug: str
    owner_id: uuid.UUID


@dataclass
class SeededEpisode:
    show: SeededShow
    id: uuid.UUID
    media_id: uuid.UUID
    extension: str
    data: bytes
    storage_key: str

    def url(
        self, *, slug: str | None = None, ext: str | None = None, key: str | None = None
    ) -> str:
        url = f"/e/{slug or self.show.slug}/{self.id}/{self.media_id}.{ext or self.extension}"
        return f"{url}?key={key}" if key else url


async def seed_show(runtime: Runtime, *, slug: str | None = None) -> SeededShow:
    slug = slug or f"show-{uuid.uuid4().hex[:8]}"
    async with runtime.db.session() as session:
        user = User(
            email=f"{slug}@example.com",
            display_name="Owner",
            password_hash="x",
            is_verified=True,
        )
        session.add(user)
        await session.flush()
        show = Show(owner_id=user.id, slug=slug, title=f"Show {slug}")
        session.add(show)
        await session.flush()
        return SeededShow(show.id, slug, user.id)


async def seed_episode(
    runtime: Runtime,
    show: SeededShow,
    *,
    data: bytes | None = None,
    publish_at: datetime | timedelta | None = PAST,
    premium: bool = False,
    deleted: bool = False,
    chapters: dict[str, Any] | None = None,
    extension: str = "mp3",
    content_type: str = "audio/mpeg",
) -> SeededEpisode:
    data = mp3() if data is None else data
    when = utcnow() + publish_at if isinstance(publish_at, timedelta) else publish_at
    media_id = new_id()
    key = f"media/{show.id}/{media_id}.{extension}"
    await runtime.storage.write_bytes(key, data, content_type=content_type)
    async with runtime.db.session() as session:
        episode = Episode(
            show_id=show.id,
            guid=str(uuid.uuid4()),
            title="Episode",
            publish_at=when,
            premium=premium,
            deleted_at=utcnow() if deleted else None,
            chapters=chapters,
        )
        session.add(episode)
        await session.flush()
        session.add(
            MediaFile(
                id=media_id,
                owner_id=show.owner_id,
                show_id=show.id,
                episode_id=episode.id,
                storage_key=key,
                kind="audio",
                container=extension,
                content_type=content_type,
                extension=extension,
                size=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
                duration_s=3.0,
                bitrate=64000,
            )
        )
        await session.flush()
        episode.media_id = media_id
        return SeededEpisode(show, episode.id, media_id, extension, data, key)


async def seed_subscriber(
    runtime: Runtime,
    show: SeededShow,
    *,
    revoked: bool = False,
    expires_at: datetime | None = None,
) -> tuple[uuid.UUID, str]:
    token = new_token("amp_sub_")
    async with runtime.db.session() as session:
        subscriber = Subscriber(
            show_id=show.id,
            name="Listener",
            token_hash=hash_token(token),
            token_prefix=token[:12],
            expires_at=expires_at,
            revoked_at=utcnow() if revoked else None,
        )
        session.add(subscriber)
        await session.flush()
        return subscriber.id, token


async def add_old_slug(runtime: Runtime, show: SeededShow, slug: str) -> None:
    async with runtime.db.session() as session:
        session.add(FeedSlug(slug=slug, show_id=show.id))


async def set_row(runtime: Runtime, model: Any, row_id: uuid.UUID, **values: Any) -> None:
    """Change a row as the services do: the show's version moves with it (which is what
    tells every process's caches that the show changed)."""
    async with runtime.db.session() as session:
        row = await session.get(model, row_id)
        assert row is not None
        for name, value in values.items():
            setattr(row, name, value)
        show = row if isinstance(row, Show) else await session.get(Show, row.show_id)
        assert show is not None
        show.version += 1


async def hits_of(runtime: Runtime) -> list[Hit]:
    async with runtime.db.session(write=False) as session:
        return list(await session.scalars(select(Hit).order_by(Hit.id)))
