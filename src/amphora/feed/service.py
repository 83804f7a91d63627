"""Serving feeds: slug resolution (moved, renamed, trashed, purged), rendering through the
cache, compressed forms, and the last good copy when the database is down.

Order matters for freshness: the slug is resolved in one short read, the cache generation of
the show is read next, and only then is the feed loaded in a second read. An edit that commits
while we render has already bumped the generation we stored with, so our bytes are born stale.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

import anyio
import brotli
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, OperationalError

from amphora.delivery.urls import feed_url, json_feed_url, private_feed_url
from amphora.feed.builder import assemble
from amphora.feed.changes import feed_tag
from amphora.feed.jsonfeed import build_json_feed
from amphora.feed.loader import load_feed
from amphora.kit.cache import Cache, Entry
from amphora.kit.clock import utcnow
from amphora.kit.errors import AmphoraError, NotFound
from amphora.kit.security import hash_token
from amphora.models import FeedSlug, Show, Subscriber
from amphora.runtime import Runtime

logger = logging.getLogger("amphora.feed")

Encoding = Literal["identity", "gzip", "br"]
# Errors that mean "the database is not there", as opposed to a bug.
UNAVAILABLE = (OperationalError, DBAPIError, OSError, TimeoutError)


class Format(StrEnum):
    rss = "rss"
    json = "json"


class FeedGone(AmphoraError):
    status_code = 410
    code = "feed_gone"
    message = "This show was deleted for good; its feed will not come back."


class FeedUnavailable(AmphoraError):
    status_code = 503
    code = "feed_unavailable"
    message = "The feed cannot be rendered right now; try again shortly."


@dataclass(frozen=True, slots=True)
class Rendered:
    """A feed document or a redirect, as kept in the cache."""

    body: bytes
    etag: str  # quoted, strong; the compressed forms append -gzip / -br
    last_modified: datetime
    location: str | None = None  # set: answer 301 to it
    hubs: tuple[str, ...] = ()
    self_url: str | None = None

    def pack(self) -> bytes:
        head = {
            "etag": self.etag,
            "last_modified": self.last_modified.timestamp(),
            "location": self.location,
            "hubs": list(self.hubs),
            "self_url": self.self_url,
        }
        header = json.dumps(head).encode()
        return len(header).to_bytes(4, "big") + header + self.body

    @classmethod
    def unpack(cls, blob: bytes) -> Rendered:
        size = int.from_bytes(blob[:4], "big")
        head = json.loads(blob[4 : 4 + size])
        return cls(
            body=blob[4 + size :],
            etag=head["etag"],
            last_modified=datetime.fromtimestamp(head["last_modified"], UTC),
            location=head["location"],
            hubs=tuple(head["hubs"]),
            self_url=head["self_url"],
        )


@dataclass(frozen=True, slots=True)
class Served:
    rendered: Rendered
    body: bytes  # in ``encoding``
    encoding: Encoding
    etag: str
    stale: bool = False


def strong_etag(body: bytes) -> str:
    return f'"{hashlib.sha256(body).hexdigest()[:32]}"'


def encoded_etag(etag: str, encoding: Encoding) -> str:
    # A strong validator must differ between content codings of the same document.
    return etag if encoding == "identity" else f'{etag[:-1]}-{encoding}"'


def compress(body: bytes, encoding: Encoding) -> bytes:
    if encoding == "gzip":
        return gzip.compress(body, compresslevel=6, mtime=0)
    if encoding == "br":
        return bytes(brotli.compress(body, quality=5))
    return body


# --- resolving ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    show_id: uuid.UUID
    subscriber_token: str | None = None
    subscriber_id: uuid.UUID | None = None


async def resolve_slug(runtime: Runtime, slug: str) -> uuid.UUID:
    """The show that owns or owned ``slug``; 410 for a purged show, 404 for the unknown."""
    async with runtime.db.session(write=False) as session:
        held = await session.get(FeedSlug, slug)
    if held is None:
        raise NotFound("No such feed.")
    if held.show_id is None:
        raise FeedGone
    return held.show_id


async def resolve_subscriber(runtime: Runtime, slug: str, token: str) -> Target:
    """A private feed: a live subscriber token of this show, else 404 (never say which)."""
    now = utcnow()
    async with runtime.db.session(write=False) as session:
        row = (
            await session.execute(
                select(Subscriber, Show.slug)
                .join(Show, Show.id == Subscriber.show_id)
                .where(Subscriber.token_hash == hash_token(token))
            )
        ).first()
    if row is None:
        raise NotFound("No such feed.")
    subscriber, current_slug = row
    expired = subscriber.expires_at is not None and subscriber.expires_at <= now
    if subscriber.revoked_at is not None or expired or current_slug != slug:
        raise NotFound("No such feed.")
    return Target(subscriber.show_id, token, subscriber.id)


# --- rendering --------------------------------------------------------------------------------


async def _render(
    runtime: Runtime, target: Target, fmt: Format, requested_slug: str
) -> tuple[Rendered, datetime | None]:
    """The document (or redirect) and when it expires by itself (the next scheduled episode)."""
    settings = runtime.settings
    async with runtime.db.session(write=False) as session:
        show = await session.get(Show, target.show_id)
        if show is None:
            raise FeedGone
        if show.deleted_at is not None:
            raise NotFound("No such feed.")  # in the trash: it may come back
        private = target.subscriber_token is not None
        if not private and requested_slug != show.slug:
            location = (json_feed_url if fmt is Format.json else feed_url)(
                settings.base_url, show.slug
            )
            return Rendered(b"", '"renamed"', show.updated_at, location=location), None
        if private:
            assert target.subscriber_token is not None
            self_url = private_feed_url(settings.base_url, show.slug, target.subscriber_token)
        elif fmt is Format.json:
            self_url = json_feed_url(settings.base_url, show.slug)
        else:
            self_url = feed_url(settings.base_url, show.slug)
        loaded = await load_feed(
            session,
            settings,
            show,
            subscriber_token=target.subscriber_token,
            self_url=self_url,
            want_plain=fmt is Format.json,
        )

    def build() -> tuple[bytes, str]:  # CPU work on megabytes: off the event loop
        if fmt is Format.json:
            assert loaded.plain_items is not None
            items = [item for item in loaded.plain_items if item.live is None]
            body = build_json_feed(loaded.channel, items, feed_url=self_url)
        else:
            body = assemble(loaded.channel, loaded.items, loaded.live_items)
        return body, strong_etag(body)

    body, etag = await anyio.to_thread.run_sync(build)
    rendered = Rendered(
        body,
        etag,
        loaded.last_modified,
        # A show that moved away answers 301, with the feed (and its itunes:new-feed-url) as
        # the body for apps that read it.
        location=None if private else show.new_feed_url,
        hubs=loaded.channel.hubs,
        self_url=self_url,
    )
    return rendered, loaded.expires_at


_UNPACKED: dict[str, tuple[bytes, Rendered]] = {}
# The memo holds blobs the cache may have evicted: bound it (it refills from the cache).
UNPACKED_MAX_BYTES = 64 * 1024**2


def _unpacked(key: str, blob: bytes) -> Rendered:
    """Unpacking copies the document; a hot feed is unpacked once per cached blob."""
    memo = _UNPACKED.get(key)
    if memo is not None and memo[0] is blob:
        return memo[1]
    rendered = Rendered.unpack(blob)
    held = sum(len(b) for b, _ in _UNPACKED.values())
    if held + 2 * len(blob) > UNPACKED_MAX_BYTES:
        _UNPACKED.clear()
    _UNPACKED[key] = (blob, rendered)
    return rendered


async def serve_feed(
    runtime: Runtime,
    *,
    slug: str,
    fmt: Format,
    encoding: Encoding,
    target: Target | None = None,
) -> Served:
    """The feed in the wanted encoding: from the cache when fresh (no database work at all),
    rendered otherwise, and the last rendered copy when the database is away.

    A public feed is looked up by slug first and resolved only on a miss; a private feed comes
    with its ``target`` already checked (a revoked token must stop working at once)."""
    cache = runtime.cache
    if target is not None and target.subscriber_id is not None:
        key = f"feed:{fmt}:private:{target.subscriber_id}"
    else:
        key = f"feed:{fmt}:{slug}"
    found = await cache.get(key)
    if found is not None and found.fresh:
        return await _encoded(cache, key, _unpacked(key, found.value), encoding, False)
    try:
        if target is None:
            target = Target(await resolve_slug(runtime, slug))
        tag = feed_tag(target.show_id)
        generation = await cache.generation(tag)
        rendered, expires = await _render(runtime, target, fmt, slug)
    except UNAVAILABLE as exc:
        if found is None:
            logger.error("feed %s: database unavailable and nothing cached: %r", key, exc)
            raise FeedUnavailable from exc
        logger.warning("feed %s: database unavailable, serving the last copy: %r", key, exc)
        return await _encoded(cache, key, _unpacked(key, found.value), encoding, True)
    expires_at = expires.timestamp() if expires else None
    packed = await anyio.to_thread.run_sync(rendered.pack)
    await cache.put(key, packed, tag=tag, generation=generation, expires_at=expires_at)
    return await _encoded(cache, key, rendered, encoding, False)


def peek_feed(cache: Cache, *, slug: str, fmt: Format, encoding: Encoding) -> Served | None:
    """A public feed this process can answer fresh from memory alone, or ``None``."""
    key = f"feed:{fmt}:{slug}"
    entry = cache.local_fresh(key)
    if entry is None:
        return None
    rendered = _unpacked(key, entry.value)
    if encoding == "identity" or rendered.location is not None:
        return Served(rendered, rendered.body, "identity", rendered.etag)
    compressed = cache.local.get(f"{key}|{encoding}")
    if compressed is None or compressed.tag != rendered.etag:
        return None
    return Served(rendered, compressed.value, encoding, encoded_etag(rendered.etag, encoding))


async def _encoded(
    cache: Cache, key: str, rendered: Rendered, encoding: Encoding, stale: bool
) -> Served:
    if encoding == "identity":
        return Served(rendered, rendered.body, "identity", rendered.etag, stale)
    compressed_key = f"{key}|{encoding}"
    hit = cache.local.get(compressed_key)
    # Tied to the document itself (its ETag), not to the generation: a feed re-rendered at
    # its expiry (a scheduled episode) has the same generation but other bytes.
    if hit is not None and hit.tag == rendered.etag:
        body = hit.value
    else:
        body = await anyio.to_thread.run_sync(compress, rendered.body, encoding)
        # Kept in this process only: any process can compress the shared document itself.
        cache.local.put(compressed_key, Entry(body, rendered.etag, 0, None))
    return Served(rendered, body, encoding, encoded_etag(rendered.etag, encoding), stale)


def choose_encoding(accept_encoding: str | None) -> Encoding:
    """Brotli, then gzip, when the client accepts them (q=0 refuses)."""
    if not accept_encoding:
        return "identity"
    accepted: dict[str, float] = {}
    for part in accept_encoding.lower().split(","):
        name, _, params = part.strip().partition(";")
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                quality = 0.0
        accepted[name.strip()] = quality
    encoding: Encoding
    for encoding in ("br", "gzip"):
        if accepted.get(encoding, accepted.get("*", 0.0)) > 0:
            return encoding
    return "identity"
