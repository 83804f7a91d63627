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
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import anyio
from sqlalchemy import String, Text, and_, func, or_, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession

from amphora.delivery.urls import chapters_url, enclosure_url, feed_url, transcript_url
from amphora.feed.builder import render_item
from amphora.feed.data import Enclosure, FeedChannel, FeedItem, TranscriptLink
from amphora.feed.guid import podcast_guid
from amphora.kit.clock import utcnow
from amphora.media.artwork_service import artwork_urls
from amphora.models import Artwork, Episode, MediaFile, Show, Transcript
from amphora.settings import Settings

# Ids per query: small enough that rendering one chunk overlaps with reading the next.
CHUNK = 1000


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
    """Rendered ``<item>`` bytes per context, then by (episode id, version); oldest first out.

    Reads take no lock and do no bookkeeping (a dict lookup each): a 10,000-episode feed does
    10,000 of them per render. Ids are kept as the driver returns them (never parsed)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._by_context: dict[FeedContext, dict[tuple[Any, int], bytes]] = {}
        self._order: deque[tuple[FeedContext, tuple[Any, int]]] = deque()
        self._bytes = 0
        self._lock = threading.Lock()

    def table(self, context: FeedContext) -> dict[tuple[Any, int], bytes]:
        return self._by_context.get(context) or {}

    def put(self, context: FeedContext, key: tuple[Any, int], value: bytes) -> None:
        with self._lock:
            table = self._by_context.setdefault(context, {})
            old = table.get(key)
            table[key] = value
            self._bytes += len(value) - (len(old) if old else 0)
            if old is None:
                self._order.append((context, key))
            while self._bytes > self.max_bytes and self._order:
                gone_context, gone_key = self._order.popleft()
                gone = self._by_context.get(gone_context, {}).pop(gone_key, None)
                if gone is not None:
                    self._bytes -= len(gone)


FRAGMENTS = FragmentCache(max_bytes=128 * 1024**2)


def _raw(column: Any) -> Any:
    """A UUID column as the driver returns it: parsing 10,000 ids costs more than the query."""
    return type_coerce(column, String).label(column.key)


def _uuid(raw: Any) -> uuid.UUID:
    return raw if isinstance(raw, uuid.UUID) else uuid.UUID(str(raw))


def _text(raw: Any) -> str:
    """The canonical hyphenated spelling of a raw id (SQLite stores 32 hex digits)."""
    text = str(raw)
    if len(text) == 32:
        return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
    return text


def _visible(show: Show, now: datetime, *, premium: bool) -> list[Any]:
    conditions = [
        Episode.show_id == show.id,
        Episode.deleted_at.is_(None),
        Episode.publish_at.is_not(None),
        Episode.publish_at <= now,
        # An item without audio is useless to an app; a live item needs none.
        or_(
            Episode.media_id.is_not(None),
            Episode.live.is_not(None),
            Episode.remote_media.is_not(None),
        ),
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
        select(_raw(Episode.id), Episode.version, Episode.live.is_not(None))
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
    include_premium: bool = False,
) -> LoadedFeed:
    """Everything a feed of ``show`` needs, with item XML rendered (or reused).

    A subscriber's feed (``subscriber_token``) lists the premium episodes and is private;
    ``include_premium`` lists them in the public shape (no token in the URLs, no forced
    ``itunes:block``), for an export's copy of the feed."""
    now = utcnow()
    private = subscriber_token is not None
    premium = private or include_premium
    context = FeedContext(settings.base_url, show.slug, show.explicit, subscriber_token)
    listing = (await session.execute(_listing(show, now, premium=premium))).all()
    rendered: dict[Any, bytes] = {}
    if not want_plain:
        table = FRAGMENTS.table(context)
        for episode_id, version, _live in listing:
            fragment = table.get((episode_id, version))
            if fragment is not None:
                rendered[episode_id] = fragment
    missing = [_uuid(row[0]) for row in listing if row[0] not in rendered]
    plain: dict[Any, FeedItem] = {}

    def build(rows: list[Any], transcripts: dict[Any, list[Any]]) -> None:  # CPU: off the loop
        for row in rows:
            item = _to_item(row, transcripts.get(row.id, ()), context)
            plain[row.id] = item
            fragment = render_item(item)
            FRAGMENTS.put(context, (row.id, row.version), fragment)
            rendered[row.id] = fragment

    # Each chunk is rendered in a worker thread while the next one is read: SQLite and the
    # network wait without the GIL, so the two overlap.
    async with anyio.create_task_group() as group:
        for start in range(0, len(missing), CHUNK):
            rows, transcripts = await _item_rows(session, missing[start : start + CHUNK])
            group.start_soon(anyio.to_thread.run_sync, build, rows, transcripts)
    last_modified, last_build, next_publication = await _timestamps(
        session, show, now, premium=premium
    )
    channel = await _channel(session, settings, show, last_build, self_url, private)
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
        # Shows older than podcast:guid get the value the announce job stores for them.
        podcast_guid=show.podcast_guid or podcast_guid(feed_url(base, show.slug)),
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
    "remote_media",
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
    columns = [_raw(Episode.id)]
    columns += [getattr(Episode, name) for name in _PLAIN_FIELDS if name != "id"]
    columns += [type_coerce(getattr(Episode, name), Text).label(name) for name in _JSON_FIELDS]
    columns += [
        Episode.chapters.is_not(None).label("has_chapters"),
        _raw(MediaFile.id).label("media_id"),
        MediaFile.extension,
        MediaFile.size,
        MediaFile.content_type,
        MediaFile.duration_s,
        _raw(Artwork.id).label("artwork_id"),
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
            _raw(Transcript.episode_id),
            _raw(Transcript.id),
            Transcript.extension,
            Transcript.content_type,
            Transcript.language,
            Transcript.captions,
        )
        .where(Transcript.episode_id.in_(ids))
        .order_by(Transcript.created_at)
    )
    for episode_id, *rest in found.all():
        transcripts.setdefault(episode_id, []).append(tuple(rest))
    return rows, transcripts


# Most of these values are empty: skipping the JSON decoder for them halves the cost of an item.
_EMPTY_JSON: dict[str, Callable[[], Any]] = {"[]": list, "null": lambda: None, "{}": dict}


def _loads(value: Any) -> Any:
    # SQLite hands JSON over as text; asyncpg has already decoded it.
    if not isinstance(value, str):
        return value
    empty = _EMPTY_JSON.get(value)
    return empty() if empty is not None else json.loads(value)


def _to_item(
    row: Any,
    transcripts: Sequence[tuple[uuid.UUID, str, str, str | None, bool]],
    context: FeedContext,
) -> FeedItem:
    """One row of :func:`_item_query` as plain feed data (pure; runs in a worker thread)."""
    base = context.base_url
    episode_id = _text(row.id)
    json_values = {name: _loads(getattr(row, name)) for name in _JSON_FIELDS}
    image_url = None
    if row.artwork_id is not None:
        variants = _loads(row.artwork_variants) or []
        master = next((v for v in variants if v["name"] == "master"), None)
        if master:
            extension = master["key"].rsplit(".", 1)[-1]
            image_url = f"{base}/artwork/{_text(row.artwork_id)}/master.{extension}"
    enclosure = None
    duration_s = row.duration_s
    remote = json_values["remote_media"]
    if row.media_id is None and remote:  # imported without mirroring: the old host's file
        enclosure = Enclosure(url=remote["url"], length=remote["length"], type=remote["type"])
        duration_s = remote.get("duration_s")
    elif row.media_id is not None:
        enclosure = Enclosure(
            url=enclosure_url(
                base,
                context.slug,
                episode_id,
                _text(row.media_id),
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
        duration_s=duration_s,
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
                url=transcript_url(base, _text(transcript_id), extension),
                type=content_type,
                language=language,
                captions=captions,
            )
            for transcript_id, extension, content_type, language, captions in transcripts
        ),
        chapters_url=chapters_url(base, episode_id, row.version) if row.has_chapters else None,
        live=json_values["live"],
    )
