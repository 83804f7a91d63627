"""Which file a public URL names, whether it may be served, and serving it.

Everything a feed points at goes through here: enclosures (``/e/…``, with the hit log),
transcripts, chapters and artwork. Unknown and not-yet-public resources alike answer 404, so a
URL reveals nothing about drafts, scheduled or premium episodes.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BindParameter, bindparam, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from amphora.analytics.counting import requested_bytes
from amphora.delivery.files import (
    Delivery,
    Representation,
    ServedResponse,
    serve_bytes,
    serve_stored,
    strong_etag,
)
from amphora.delivery.hits import HitRecorder, hit_row
from amphora.episode.companions import CHAPTERS_CONTENT_TYPE, CHAPTERS_VERSION
from amphora.feed.changes import feed_tag
from amphora.kit.cache import Cache
from amphora.kit.errors import NotFound
from amphora.kit.security import hash_token
from amphora.kit.storage import Storage
from amphora.models import Artwork, Episode, FeedSlug, MediaFile, Show, Subscriber, Transcript

__all__ = [
    "IMMUTABLE",
    "MEDIA_PRIVATE",
    "MEDIA_PUBLIC",
    "Requester",
    "chapters_bytes",
    "published_conditions",
    "serve_artwork",
    "serve_chapters",
    "serve_enclosure",
    "serve_transcript",
]

# A media URL's bytes never change (new audio, new URL): a day in shared caches is safe.
MEDIA_PUBLIC = "public, max-age=86400"
# Keyed URLs name a subscriber: never in a shared cache.
MEDIA_PRIVATE = "private"
COMPANION = "public, max-age=86400"
CHAPTERS_STALE = "public, max-age=300"
IMMUTABLE = "public, max-age=31536000, immutable"
MAX_KEY_LENGTH = 256


@dataclass(frozen=True, slots=True)
class Requester:
    """What a public file request says about itself (the HTTP layer fills it in)."""

    method: str
    headers: Mapping[str, str]
    client_address: str  # already resolved through the trusted proxies
    at: datetime


def _uuid(value: str) -> uuid.UUID:
    """An id as our URLs spell it (lower-case, hyphens); any other spelling is a 404, so that
    one file has one URL."""
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        raise NotFound() from None
    if str(parsed) != value:
        raise NotFound()
    return parsed


def published_conditions(now: datetime | BindParameter[datetime]) -> list[Any]:
    return [
        Episode.deleted_at.is_(None),
        Episode.publish_at.is_not(None),
        Episode.publish_at <= now,
        Show.deleted_at.is_(None),
    ]


# --- enclosures ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Enclosure:
    media_id: uuid.UUID
    storage_key: str
    content_type: str
    sha256: str
    episode_id: uuid.UUID
    premium: bool
    show_id: uuid.UUID
    size: int


# One query, built once at import (only the values change per request): the file, of that
# episode (superseded files too: old feeds still point at them), published, of a live show
# reached by its slug or one of its former slugs.
_ENCLOSURE = (
    select(
        MediaFile.id,
        MediaFile.storage_key,
        MediaFile.content_type,
        MediaFile.sha256,
        Episode.id,
        Episode.premium,
        Show.id,
        MediaFile.size,
    )
    .join(Episode, Episode.id == MediaFile.episode_id)
    .join(Show, Show.id == Episode.show_id)
    .where(
        MediaFile.id == bindparam("media_id"),
        MediaFile.extension == bindparam("extension"),
        MediaFile.show_id == Show.id,
        Episode.id == bindparam("episode_id"),
        *published_conditions(bindparam("now")),
        or_(
            Show.slug == bindparam("slug"),
            exists().where(FeedSlug.slug == bindparam("slug"), FeedSlug.show_id == Show.id),
        ),
    )
)
_SUBSCRIBER = select(Subscriber.id).where(
    Subscriber.token_hash == bindparam("token_hash"),
    Subscriber.show_id == bindparam("show_id"),
    Subscriber.revoked_at.is_(None),
    or_(Subscriber.expires_at.is_(None), Subscriber.expires_at > bindparam("now")),
)


async def _enclosure(
    session: AsyncSession,
    *,
    slug: str,
    episode_id: uuid.UUID,
    media_id: uuid.UUID,
    extension: str,
    now: datetime,
) -> _Enclosure | None:
    params = {
        "media_id": media_id,
        "extension": extension,
        "episode_id": episode_id,
        "now": now,
        "slug": slug,
    }
    row = (await session.execute(_ENCLOSURE, params)).first()
    return _Enclosure(*row) if row is not None else None


# Resolved enclosures, kept briefly per process: a podcast app fetches the same file in many
# ranges. An entry is used only while its show's cache generation is unchanged (any edit,
# deletion or unpublishing bumps it) and for a few seconds at most, which bounds the one
# window an edit racing with the lookup could leave open.
_RESOLVED: dict[tuple[str, uuid.UUID, uuid.UUID, str], tuple[_Enclosure, int, float]] = {}
RESOLVED_SECONDS = 10.0
RESOLVED_MAX = 10_000


async def _resolve(
    session: AsyncSession,
    cache: Cache,
    *,
    slug: str,
    episode_id: uuid.UUID,
    media_id: uuid.UUID,
    extension: str,
    now: datetime,
) -> _Enclosure | None:
    key = (slug, episode_id, media_id, extension)
    memo = _RESOLVED.get(key)
    if memo is not None:
        known, generation, until = memo
        current = cache.local.generation(feed_tag(known.show_id))
        if time.monotonic() < until and current == generation and cache.listening:
            return known
    found = await _enclosure(
        session, slug=slug, episode_id=episode_id, media_id=media_id, extension=extension, now=now
    )
    if found is not None and cache.listening:
        generation = await cache.generation(feed_tag(found.show_id))
        if len(_RESOLVED) >= RESOLVED_MAX:
            _RESOLVED.clear()
        _RESOLVED[key] = (found, generation, time.monotonic() + RESOLVED_SECONDS)
    return found


async def _subscriber(
    session: AsyncSession, *, show_id: uuid.UUID, key: str, now: datetime
) -> uuid.UUID | None:
    if not key or len(key) > MAX_KEY_LENGTH:
        return None
    subscriber_id: uuid.UUID | None = await session.scalar(
        _SUBSCRIBER, {"token_hash": hash_token(key), "show_id": show_id, "now": now}
    )
    return subscriber_id


def _delivered(
    delivery: Delivery, method: str, headers: Mapping[str, str], size: int
) -> int | None:
    """Bytes a response delivered; a GET redirected to object storage delivered what it asked
    for there (its range, or the whole file), which audience counting needs and cannot see."""
    if delivery.bytes_sent is not None or method != "GET":
        return delivery.bytes_sent
    return requested_bytes(headers.get("range"), size)


async def serve_enclosure(
    session: AsyncSession,
    storage: Storage,
    cache: Cache,
    hits: HitRecorder | None,
    *,
    slug: str,
    episode_id: str,
    media_id: str,
    extension: str,
    key: str | None,
    requester: Requester,
    url_lifetime: int,
) -> ServedResponse:
    """Serve (or redirect to) an episode's media file and log the hit.

    Premium episodes need ``key``, the token of a current subscriber of the show; a valid key
    on any episode names the subscriber in the hit. Every request that resolved to a servable
    file is logged once its response is over (status, bytes sent); 404s are not: they name
    nothing, and a scanner could fill the log with them.
    """
    found = await _resolve(
        session,
        cache,
        slug=slug,
        episode_id=_uuid(episode_id),
        media_id=_uuid(media_id),
        extension=extension,
        now=requester.at,
    )
    if found is None:
        raise NotFound("No such file.")
    subscriber_id = None
    if key is not None:
        subscriber_id = await _subscriber(session, show_id=found.show_id, key=key, now=requester.at)
    if found.premium and subscriber_id is None:
        raise NotFound("No such file.")

    on_sent = None
    if hits is not None and hits.enabled:
        headers = requester.headers

        def on_sent(delivery: Delivery) -> None:
            hits.record(
                hit_row(
                    key=hits.key,
                    at=requester.at,
                    show_id=found.show_id,
                    episode_id=found.episode_id,
                    media_id=found.media_id,
                    subscriber_id=subscriber_id,
                    method=requester.method,
                    status=delivery.status,
                    range_header=headers.get("range"),
                    bytes_sent=_delivered(delivery, requester.method, headers, found.size),
                    client_address=requester.client_address,
                    user_agent=headers.get("user-agent"),
                    referer=headers.get("referer"),
                    session_id=headers.get("x-playback-session-id"),
                    geo=hits.geo,
                )
            )

    rep = Representation(
        content_type=found.content_type,
        cache_control=MEDIA_PRIVATE if key is not None else MEDIA_PUBLIC,
        etag=strong_etag(found.sha256),
    )
    return await serve_stored(
        storage,
        found.storage_key,
        method=requester.method,
        request_headers=requester.headers,
        rep=rep,
        url_lifetime=url_lifetime,
        on_sent=on_sent,
    )


# --- companion files -----------------------------------------------------------------------------


async def serve_transcript(
    session: AsyncSession,
    storage: Storage,
    *,
    transcript_id: str,
    extension: str,
    requester: Requester,
    url_lifetime: int,
) -> ServedResponse:
    """A transcript of a published episode, with the content type it was stored as."""
    row = (
        await session.execute(
            select(Transcript.id, Transcript.storage_key, Transcript.content_type)
            .join(Episode, Episode.id == Transcript.episode_id)
            .join(Show, Show.id == Episode.show_id)
            .where(
                Transcript.id == _uuid(transcript_id),
                Transcript.extension == extension,
                *published_conditions(requester.at),
            )
        )
    ).first()
    if row is None:
        raise NotFound("No such transcript.")
    found_id, storage_key, content_type = row
    # Text is served as UTF-8 (uploads are normalised to it).
    if content_type.startswith("text/") and "charset" not in content_type:
        content_type += "; charset=utf-8"
    rep = Representation(content_type, COMPANION, strong_etag(found_id.hex))
    return await serve_stored(
        storage,
        storage_key,
        method=requester.method,
        request_headers=requester.headers,
        rep=rep,
        url_lifetime=url_lifetime,
    )


def chapters_bytes(document: Mapping[str, Any]) -> bytes:
    """The Podcasting 2.0 JSON chapters file: ``version`` first, then the other top-level keys,
    then ``chapters`` (the stored document is the normalised one, but never trust a shape)."""
    chapters = document.get("chapters")
    version = document.get("version")
    out: dict[str, Any] = {"version": version if isinstance(version, str) else CHAPTERS_VERSION}
    out.update((k, v) for k, v in document.items() if k not in ("version", "chapters"))
    out["chapters"] = chapters if isinstance(chapters, list) else []
    return json.dumps(out, ensure_ascii=False, separators=(",", ":")).encode()


async def serve_chapters(
    session: AsyncSession, *, episode_id: str, version: str, requester: Requester
) -> ServedResponse:
    """The current chapters of a published episode.

    The episode version in the URL changes whenever the episode does, so the URL a fresh feed
    carries is cached for a day; an older URL (a feed read before an edit) still answers, with
    the current chapters, but only for minutes.
    """
    if not version.isdigit():
        raise NotFound("No such chapters file.")
    row = (
        await session.execute(
            select(Episode.chapters, Episode.version)
            .join(Show, Show.id == Episode.show_id)
            .where(Episode.id == _uuid(episode_id), *published_conditions(requester.at))
        )
    ).first()
    if row is None or not row[0]:
        raise NotFound("No such chapters file.")
    document, current = row
    data = chapters_bytes(document)
    rep = Representation(
        CHAPTERS_CONTENT_TYPE,
        COMPANION if int(version) == current else CHAPTERS_STALE,
        strong_etag(hashlib.sha256(data).hexdigest()[:32]),
    )
    return serve_bytes(data, method=requester.method, request_headers=requester.headers, rep=rep)


async def serve_artwork(
    session: AsyncSession,
    storage: Storage,
    *,
    artwork_id: str,
    name: str,
    extension: str,
    requester: Requester,
    url_lifetime: int,
) -> ServedResponse:
    """One size of an artwork. A new image gets a new id, so a URL is cached for a year."""
    artwork = await session.get(Artwork, _uuid(artwork_id))
    variant = next(
        (v for v in (artwork.variants if artwork else []) if v["name"] == name),
        None,
    )
    if artwork is None or variant is None or not variant["key"].endswith(f".{extension}"):
        raise NotFound("No such image.")
    # The stored hash is the master's; the other sizes are named by the (immutable) id.
    tag = artwork.sha256 if name == "master" else f"{artwork.id.hex}-{name}"
    rep = Representation(variant["content_type"], IMMUTABLE, strong_etag(tag))
    return await serve_stored(
        storage,
        variant["key"],
        method=requester.method,
        request_headers=requester.headers,
        rep=rep,
        url_lifetime=url_lifetime,
    )
