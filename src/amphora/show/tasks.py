"""Purging the trash: shows and episodes whose grace period is over, files first, then rows.

Deleting files before rows makes a crash half-way harmless: the rows are still there, the job
runs again, deleting missing files is a no-op, and then the rows go. A purge that finds nothing
due (already purged, or restored meanwhile) does nothing, so each item is purged exactly once.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, update

from amphora.feed.changes import feed_tag
from amphora.kit.clock import utcnow
from amphora.kit.jobs import crontab, job, periodic
from amphora.media.service import episode_files
from amphora.models import Artwork, Episode, FeedSlug, MediaFile, Show
from amphora.show.search import remove_documents


@periodic(crontab(minute="*/15"))
async def purge_due(ctx: Any) -> None:
    """Fan out one purge job per show or episode past its grace period."""
    now = utcnow()
    async with ctx.db.session() as session:
        shows = await session.scalars(
            select(Show.id).where(Show.deleted_at.is_not(None), Show.purge_after <= now)
        )
        for show_id in shows:
            purge_show.defer(session, str(show_id))
        episodes = await session.scalars(
            select(Episode.id).where(
                Episode.deleted_at.is_not(None),
                Episode.deleted_with_show.is_(False),
                Episode.purge_after <= now,
            )
        )
        for episode_id in episodes:
            purge_episode.defer(session, str(episode_id))


@periodic(crontab(minute="45"))
async def purge_superseded_media(ctx: Any) -> None:
    """Replaced audio stays served for a while (apps and caches still hold the old enclosure
    URL), then goes: files first, then rows, so a crash in between only repeats the work."""
    cutoff = utcnow() - timedelta(days=ctx.settings.superseded_media_grace_days)
    async with ctx.db.session(write=False) as session:
        rows = (
            await session.execute(
                select(MediaFile.id, MediaFile.storage_key, MediaFile.show_id)
                .where(MediaFile.superseded_at <= cutoff)
                .limit(1000)  # the rest on the next run
            )
        ).all()
    if not rows:
        return
    for _, key, _ in rows:
        await ctx.storage.delete(key)
    async with ctx.db.session() as session:
        await session.execute(delete(MediaFile).where(MediaFile.id.in_([row[0] for row in rows])))
    # No feed changes, but processes may remember where these files were (delivery).
    await ctx.cache.invalidate(sorted({feed_tag(row[2]) for row in rows}))


@job(retries=5, retry_delay=30)
async def purge_show(ctx: Any, show_id: str) -> None:
    sid = uuid.UUID(show_id)
    async with ctx.db.session(write=False) as session:
        show = await session.get(Show, sid)
        if show is None or show.deleted_at is None or show.purge_after is None:
            return
        if show.purge_after > utcnow():
            return
        episode_ids = list(await session.scalars(select(Episode.id).where(Episode.show_id == sid)))
        keys = await episode_files(session, episode_ids)
        keys += list(
            await session.scalars(select(MediaFile.storage_key).where(MediaFile.show_id == sid))
        )
        prefixes = list(
            await session.scalars(select(Artwork.key_prefix).where(Artwork.show_id == sid))
        )
    for key in set(keys):
        await ctx.storage.delete(key)
    for prefix in prefixes:
        await ctx.storage.delete_prefix(prefix)
    async with ctx.db.session() as session:
        show = await session.get(Show, sid)
        if show is None or show.deleted_at is None:
            return
        await remove_documents(session, [sid, *episode_ids])
        # Its feed URLs answer 410 from now on, and their slugs are never handed out again.
        await session.execute(
            update(FeedSlug).where(FeedSlug.show_id == sid).values(retired_at=utcnow())
        )
        show.artwork_id = None
        await session.flush()
        await session.delete(show)  # episodes, media rows, series, members: ON DELETE CASCADE


@job(retries=5, retry_delay=30)
async def purge_episode(ctx: Any, episode_id: str) -> None:
    eid = uuid.UUID(episode_id)
    async with ctx.db.session(write=False) as session:
        episode = await session.get(Episode, eid)
        if episode is None or episode.deleted_at is None or episode.purge_after is None:
            return
        if episode.purge_after > utcnow() or episode.deleted_with_show:
            return
        keys = await episode_files(session, [eid])
    for key in keys:
        await ctx.storage.delete(key)
    async with ctx.db.session() as session:
        episode = await session.get(Episode, eid)
        if episode is None or episode.deleted_at is None:
            return
        await remove_documents(session, [eid])
        episode.media_id = None
        await session.flush()
        media = await session.scalars(select(MediaFile).where(MediaFile.episode_id == eid))
        for row in media:
            await session.delete(row)
        await session.delete(episode)
