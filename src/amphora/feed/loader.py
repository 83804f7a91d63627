"""From catalog rows to the plain feed data the builders take.

Rendering a big show after one edit must not rebuild what did not change: each item's XML is
kept (per process) under the episode's id and version, so only edited or new episodes are
loaded in full and rendered again. Everything that an item's XML depends on besides the
episode row (its media, artwork, transcripts, chapters) bumps the episode's version.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import anyio
from sqlalchemy import Text, and_, func, or_, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession

from amphora.delivery.urls import chapters_url, enclosure_url, feed_url, transcript_url
from amphora.feed.builder import render_item
from amphora.feed.data import Enclosure, FeedChannel, FeedItem, TranscriptLink
from amphora.kit.clock import utcnow
from amphora.media.artwork_service import artwork_urls
from amphora.models import Artwork, Episode, MediaFile, Show, Transcript
from amphora.settings import Settings

# SQLite allows 32766 bound parameters; stay well below for IN lists.
CHUNK = 900


@dataclass(frozen=True, slots=True)
class FeedContext:
    """What, besides the episode row, an item's XML depends on."""

    base_url: str
    slug: str
    show_explicit: bool
    subscriber_token: str | None = None


@dataclass(frozen=True, slots=True)
class LoadedFeed:
    channel: FeedChannel
    items: list[bytes]
    live_items: list[bytes]
    plain_items: list[FeedItem] | None  # only when asked for (JSON Feed)
    last_modified: datetime
    expires_at: datetime | None  # the next scheduled episode: the feed changes then


class FragmentCache:
    """Rendered ``<item>`` bytes by (episode, version, context), least recently used out."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[uuid.UUID, int, FeedContext], bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[uuid.UUID, int, FeedContext]) -> bytes | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: tuple[uuid.UUID, int, FeedContext], value: bytes) -> None:
        with self._lock:
            old = self._items.pop(key, None)
            self._bytes += len(value) - (len(old) if old else 0)
            self._items[key] = value
            while self._bytes > self.max_bytes and self._items:
                _, evicted = self._items.popitem(last=False)
                self._bytes -= len(evicted)


FRAGMENTS = FragmentCache(max_bytes=128 * 1024**2)


def _visible(show: Show, now: datetime, *, premium: bool) -> list[Any]:
    conditions = [
        Episode.show_id == show.id,
        Episode.deleted_at.is_(None),
        Episode.publish_at.is_not(None),
        Episode.publish_at <= now,
        # An item without audio is useless to an app; a live item needs none.
        or_(Episode.media_id.is_not(None), Episode.live.is_not(None)),
    ]
    if not premium:
        conditions.append(Episode.premium.is_(False))
    return conditions


def _listing(show: Show, now: datetime, *, premium: bool) -> Any:
    order = (
        (Episode.publish_at.asc(), Episode.id.asc())
        if show.show_type == "serial"
        else (Episode.publish_at.desc(), Episode.id.desc())
    )
    return (
        select(Episode.id, Episode.version, Episode.live.is_not(None))
        .where(*_visible(show, now, premium=premium))
        .order_by(*order)
    )


async def _timestamps(
    session: AsyncSession, show: Show, now: datetime, *, premium: bool
) -> tuple[datetime, datetime, datetime | None]:
    """Last-Modified, lastBuildDate and the next scheduled publication.

    Last-Modified moves with any change to the show or its episodes (a needless 200 at worst,
    never a wrong 304). lastBuildDate comes from what the feed shows only, so that edits it
    cannot show (drafts, scheduled episodes) leave the document, its ETag and pings alone."""
    visible = and_(*_visible(show, now, premium=premium))
    row = (
        await session.execute(
            select(
                func.max(Episode.updated_at),
                func.max(Episode.publish_at).filter(Episode.publish_at <= now),
                func.min(Episode.publish_at).filter(
                    and_(Episode.publish_at > now, Episode.deleted_at.is_(None))
                ),
                func.max(Episode.updated_at).filter(visible),
                func.max(Episode.publish_at).filter(visible),
            ).where(Episode.show_id == show.id)
        )
    ).one()
    changed = [t for t in (show.updated_at, row[0], row[1]) if t is not None]
    shown = [t for t in (row[3], row[4]) if t is not None]
    return max(changed), max(shown, default=show.created_at), row[2]


async def load_feed(
    session: AsyncSession,
    settings: Settings,
    show: Show,
    *,
    subscriber_token: str | None = None,
    self_url: str | None = None,
    want_plain: bool = False,
) -> LoadedFeed:
    """Everything a feed of ``show`` needs, with item XML rendered (or reused)."""
    now = utcnow()
    premium = subscriber_token is not None
    context = FeedContext(settings.base_url, show.slug, show.explicit, subscriber_token)
    listing = (await session.execute(_listing(show, now, premium=premium))).all()
    rendered: dict[uuid.UUID, bytes] = {}
    if not want_plain:
        for episode_id, version, *_ in listing:
            fragment = FRAGMENTS.get((episode_id, version, context))
            if fragment is not None:
                rendered[episode_id] = fragment
    missing = [row[0] for row in listing if row[0] not in rendered]
    rows: list[Any] = []
    transcripts: dict[uuid.UUID, list[Any]] = {}
    for start in range(0, len(missing), CHUNK):
        chunk_rows, chunk_transcripts = await _item_rows(session, missing[start : start + CHUNK])
        rows += chunk_rows
        transcripts.update(chunk_transcripts)
    plain: dict[uuid.UUID, FeedItem] = {}
    if rows:

        def build() -> None:  # CPU work: off the event loop
            for row in rows:
                item = _to_item(row, transcripts.get(row.id, ()), context)
                plain[row.id] = item
                fragment = render_item(item)
                FRAGMENTS.put((row.id, row.version, context), fragment)
                rendered[row.id] = fragment

        await anyio.to_thread.run_sync(build)
    last_modified, last_build, next_publication = await _timestamps(
        session, show, now, premium=premium
    )
    channel = await _channel(session, settings, show, last_build, self_url, premium)
    return LoadedFeed(
        channel=channel,
        items=[rendered[row[0]] for row in listing if not row[2]],
        live_items=[rendered[row[0]] for row in listing if row[2]],
        plain_items=[plain[row[0]] for row in listing] if want_plain else None,
        last_modified=last_modified,
        expires_at=next_publication,
    )


async def _artwork_url(session: AsyncSession, base_url: str, artwork_id: Any) -> str | None:
    if artwork_id is None:
        return None
    artwork = await session.get(Artwork, artwork_id)
    return artwork_urls(base_url, artwork)["master"] if artwork else None


async def _channel(
    session: AsyncSession,
    settings: Settings,
    show: Show,
    last_build: datetime,
    self_url: str | None,
    private: bool,
) -> FeedChannel:
    from amphora.feed.pings import pings_enabled

    base = settings.base_url
    public = not private
    return FeedChannel(
        title=show.title,
        self_url=self_url or feed_url(base, show.slug),
        description_html=show.description,
        subtitle=show.subtitle,
        language=show.language,
        link=show.link or base,
        hubs=tuple(settings.websub_hubs) if public else (),
        image_url=await _artwork_url(session, base, show.artwork_id),
        categories=show.categories,
        explicit=show.explicit,
        show_type=show.show_type,
        author=show.author,
        owner_name=show.owner_name,
        owner_email=show.owner_email,
        copyright=show.copyright,
        new_feed_url=show.new_feed_url if public else None,
        block=show.block,
        itunes_block=private,
        complete=show.complete,
        locked=show.locked,
        podcast_guid=show.podcast_guid,
        medium=show.medium,
        funding=show.funding,
        persons=show.persons,
        locations=show.locations,
        license=show.license,
        podroll=show.podroll,
        update_frequency=show.update_frequency,
        trailers=show.trailers,
        value=show.value,
        txt=show.txt,
        chat=show.chat,
        images=show.images,
        publisher=show.publisher,
        podping=public and settings.podping_token is not None and pings_enabled(settings),
        last_build_date=last_build,
        generator="Amphora",
    )


# JSON columns are fetched as text and decoded in the worker thread with everything else, so
# a big feed does not hold the event loop while thousands of values are parsed.
_JSON_FIELDS = (
    "persons",
    "locations",
    "funding",
    "soundbites",
    "license",
    "value",
    "social_interact",
    "chat",
    "txt",
    "images",
    "content_links",
    "alternate_enclosures",
    "live",
)
_PLAIN_FIELDS = (
    "id",
    "version",
    "guid",
    "title",
    "description",
    "subtitle",
    "link",
    "publish_at",
    "explicit",
    "episode_type",
    "season",
    "season_name",
    "number",
    "number_display",
    "block",
)


def _item_query(ids: Sequence[uuid.UUID]) -> Any:
    columns = [getattr(Episode, name) for name in _PLAIN_FIELDS]
    columns += [type_coerce(getattr(Episode, name), Text).label(name) for name in _JSON_FIELDS]
    columns += [
        Episode.chapters.is_not(None).label("has_chapters"),
        MediaFile.id.label("media_id"),
        MediaFile.extension,
        MediaFile.size,
        MediaFile.content_type,
        MediaFile.duration_s,
        Artwork.id.label("artwork_id"),
        type_coerce(Artwork.variants, Text).label("artwork_variants"),
    ]
    return (
        select(*columns)
        .outerjoin(MediaFile, MediaFile.id == Episode.media_id)
        .outerjoin(Artwork, Artwork.id == Episode.artwork_id)
        .where(Episode.id.in_(ids))
    )


async def _item_rows(
    session: AsyncSession, ids: Sequence[uuid.UUID]
) -> tuple[list[Any], dict[uuid.UUID, list[tuple[uuid.UUID, str, str, str | None, bool]]]]:
    rows = list((await session.execute(_item_query(ids))).all())
    transcripts: dict[uuid.UUID, list[tuple[uuid.UUID, str, str, str | None, bool]]] = {}
    found = await session.execute(
        select(
            Transcript.episode_id,
            Transcript.id,
            Transcript.extension,
            Transcript.content_type,
            Transcript.language,
            Transcript.captions,
        )
        .where(Transcript.episode_id.in_(ids))
        .order_by(Transcript.created_at)
    )
    for episode_id, *rest in found.all():
        transcripts.setdefault(episode_id, []).append(tuple(rest))  # type: ignore[arg-type]
    return rows, transcripts


def _loads(value: Any) -> Any:
    # SQLite hands JSON over as text; asyncpg has already decoded it.
    return json.loads(value) if isinstance(value, str) else value


def _to_item(
    row: Any,
    transcripts: Sequence[tuple[uuid.UUID, str, str, str | None, bool]],
    context: FeedContext,
) -> FeedItem:
    """One row of :func:`_item_query` as plain feed data (pure; runs in a worker thread)."""
    base = context.base_url
    json_values = {name: _loads(getattr(row, name)) for name in _JSON_FIELDS}
    image_url = None
    if row.artwork_id is not None:
        variants = _loads(row.artwork_variants) or []
        master = next((v for v in variants if v["name"] == "master"), None)
        if master:
            extension = master["key"].rsplit(".", 1)[-1]
            image_url = f"{base}/artwork/{row.artwork_id}/master.{extension}"
    enclosure = None
    if row.media_id is not None:
        enclosure = Enclosure(
            url=enclosure_url(
                base,
                context.slug,
                row.id,
                row.media_id,
                row.extension,
                subscriber_token=context.subscriber_token,
            ),
            length=row.size,
            type=row.content_type,
        )
    return FeedItem(
        guid=row.guid,
        title=row.title,
        description_html=row.description,
        subtitle=row.subtitle,
        link=row.link,
        pub_date=row.publish_at,
        enclosure=enclosure,
        duration_s=row.duration_s,
        explicit=context.show_explicit if row.explicit is None else row.explicit,
        image_url=image_url,
        episode_type=row.episode_type,
        season=row.season,
        season_name=row.season_name,
        number=row.number,
        number_display=row.number_display,
        block=row.block,
        persons=json_values["persons"] or [],
        locations=json_values["locations"] or [],
        funding=json_values["funding"] or [],
        soundbites=json_values["soundbites"] or [],
        license=json_values["license"],
        value=json_values["value"],
        social_interact=json_values["social_interact"] or [],
        chat=json_values["chat"],
        txt=json_values["txt"] or [],
        images=json_values["images"] or [],
        content_links=json_values["content_links"] or [],
        alternate_enclosures=json_values["alternate_enclosures"] or [],
        transcripts=tuple(
            TranscriptLink(
                url=transcript_url(base, transcript_id, extension),
                type=content_type,
                language=language,
                captions=captions,
            )
            for transcript_id, extension, content_type, language, captions in transcripts
        ),
        chapters_url=chapters_url(base, row.id, row.version) if row.has_chapters else None,
        live=json_values["live"],
    )
