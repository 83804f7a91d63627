"""Telling aggregators about feed changes, exactly when the public feed really changed.

A commit that touches a show queues ``announce_feed``; so does a scheduled episode reaching its
publication time (``announce_due``, every minute). The job renders the public feed (through the
cache) and pings only when its ETag differs from the one last announced, so edits to drafts,
retries and duplicate triggers never ping twice for the same feed.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select, update

from amphora.delivery.urls import feed_url
from amphora.feed.changes import feed_tag
from amphora.feed.guid import podcast_guid
from amphora.feed.pings import defer_pings
from amphora.feed.service import Format, serve_feed
from amphora.kit.clock import utcnow
from amphora.kit.errors import AmphoraError
from amphora.kit.jobs import crontab, job, periodic
from amphora.models import Episode, Show


@job(retries=5, retry_delay=30)
async def announce_feed(ctx: Any, show_id: str) -> None:
    sid = uuid.UUID(show_id)
    async with ctx.db.session(write=False) as session:
        show = await session.get(Show, sid)
        if show is None or show.deleted_at is not None:
            return
        slug, announced, medium = show.slug, show.announced_etag, show.medium
        missing_guid = show.podcast_guid is None
    if missing_guid:  # a show from before podcast:guid: the value its feed shows, kept once
        async with ctx.db.session() as session:
            await session.execute(
                update(Show)
                .where(Show.id == sid, Show.podcast_guid.is_(None))
                .values(podcast_guid=podcast_guid(feed_url(ctx.settings.base_url, slug)))
                .execution_options(synchronize_session=False)
            )
    try:
        served = await serve_feed(ctx, slug=slug, fmt=Format.rss, encoding="identity")
    except AmphoraError:  # gone or in the trash meanwhile
        return
    if served.rendered.location is not None or served.rendered.etag == announced:
        return
    async with ctx.db.session() as session:
        # Only one of two racing jobs wins the row; the other sees its ETag and stops.
        result = await session.execute(
            update(Show)
            .where(Show.id == sid, Show.announced_etag.is_not_distinct_from(announced))
            .values(announced_etag=served.rendered.etag)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount:
            defer_pings(
                session,
                ctx.settings,
                show_id=sid,
                feed_url=feed_url(ctx.settings.base_url, slug),
                medium=medium,
            )


@periodic(crontab(minute="*"))
async def announce_due(ctx: Any) -> None:
    """Scheduled episodes that went live: their feeds changed without anyone saving."""
    now = utcnow()
    async with ctx.db.session() as session:
        rows = (
            await session.execute(
                select(Episode.id, Episode.show_id)
                .where(
                    Episode.announced_at.is_(None),
                    Episode.publish_at <= now,
                    Episode.deleted_at.is_(None),
                )
                .limit(5000)  # the rest on the next run
            )
        ).all()
        if not rows:
            return
        await session.execute(
            update(Episode)
            .where(Episode.id.in_([row[0] for row in rows]))
            .values(announced_at=now)
            .execution_options(synchronize_session=False)
        )
        show_ids = {row[1] for row in rows}
        for show_id in show_ids:
            announce_feed.defer(session, str(show_id))
    # Cached copies already expired at the publication time; invalidating anyway is cheap and
    # does not depend on every process's clock.
    await ctx.cache.invalidate(sorted(feed_tag(show_id) for show_id in show_ids))
