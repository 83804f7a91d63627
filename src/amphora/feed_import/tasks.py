"""Import jobs: run an import (fetch, parse, map, mirror), resume stalled ones, keep in sync.

Each step is idempotent — the show is found again through the import row, episodes and files
are keyed on guids and URLs — so a retry, a second run after a worker died, or a periodic
re-read only does what is left.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import anyio
from sqlalchemy import or_, select

from amphora.feed.changes import feed_tag
from amphora.feed_import import mirror, service
from amphora.feed_import.parse import parse_feed
from amphora.feed_import.parsed import ParsedFeed
from amphora.kit.clock import utcnow
from amphora.kit.errors import AmphoraError
from amphora.kit.http import FEED_MAX_BYTES, Redirected, fetch
from amphora.kit.jobs import crontab, job, periodic
from amphora.models import ImportStatus, ShowImport
from amphora.settings import Settings

logger = logging.getLogger("amphora.import")


class _Unchanged(Exception):
    """The old host's feed has not changed since the last read."""


class _Switched(Exception):
    """The old feed now sends its listeners here: keeping in sync is over."""


def _points_here(settings: Settings, url: str | None) -> bool:
    """Whether ``url`` is one of this server's feed URLs."""
    return bool(url) and str(url).startswith(settings.base_url.rstrip("/") + "/feeds/")


async def _set_status(ctx: Any, import_id: uuid.UUID, status: ImportStatus) -> bool:
    """Move on to ``status`` unless the import was cancelled (or finished) meanwhile."""
    async with ctx.db.session() as session:
        imp = await session.get(ShowImport, import_id)
        if imp is None or imp.status in (ImportStatus.cancelled, ImportStatus.failed):
            return False
        imp.status = status
        imp.updated_at = utcnow()
    return True


async def _fetch_feed(ctx: Any, imp: ShowImport, *, conditional: bool) -> tuple[bytes, Any]:
    headers = {"Accept": "application/rss+xml, application/atom+xml, application/xml;q=0.9"}
    if conditional and imp.feed_etag:
        headers["If-None-Match"] = imp.feed_etag
    if conditional and imp.feed_last_modified:
        headers["If-Modified-Since"] = imp.feed_last_modified
    assert imp.feed_url is not None
    try:
        fetched = await fetch(
            imp.feed_url,
            settings=ctx.settings,
            max_bytes=FEED_MAX_BYTES,
            headers=headers,
            deadline=ctx.settings.import_feed_deadline_seconds,
            # A re-read that is redirected to us: the creator switched (never fetched).
            stop_at=partial(_points_here, ctx.settings) if conditional else None,
        )
    except Redirected as exc:
        raise _Switched from exc
    if fetched.status == 304:
        raise _Unchanged
    return fetched.body, fetched.headers


async def _parsed_source(ctx: Any, imp: ShowImport, *, sync: bool) -> ParsedFeed:
    """Fetch and parse (no transaction open meanwhile); archives are read from their file."""
    if imp.archive_path is not None:
        from amphora.feed_import.archive import read_archive

        return await anyio.to_thread.run_sync(read_archive, imp.archive_path)
    body, headers = await _fetch_feed(ctx, imp, conditional=sync)
    digest = hashlib.sha256(body).hexdigest()
    if sync and digest == imp.feed_sha256:
        raise _Unchanged
    async with ctx.db.session() as session:
        row = await session.get(ShowImport, imp.id)
        if row is not None:
            row.feed_etag = headers.get("etag")
            row.feed_last_modified = headers.get("last-modified")
            row.feed_sha256 = digest
            if not sync:
                row.status = ImportStatus.parsing
    url = imp.feed_url
    parsed = await anyio.to_thread.run_sync(lambda: parse_feed(body, url=url))
    if sync and _points_here(ctx.settings, parsed.new_feed_url):
        raise _Switched
    return parsed


FINISHED = (ImportStatus.done, ImportStatus.failed, ImportStatus.cancelled)


async def _discard_archives(ctx: Any, *, import_id: uuid.UUID | None = None) -> None:
    """Remove uploaded export zips of imports that ended (a resumed run still reads its zip,
    so it stays until then). The file goes first: a crash in between leaves a row naming a
    missing file, which the next sweep clears."""
    query = select(ShowImport).where(
        ShowImport.archive_path.is_not(None), ShowImport.status.in_(FINISHED)
    )
    if import_id is not None:
        query = query.where(ShowImport.id == import_id)
    async with ctx.db.session() as session:
        for imp in await session.scalars(query):
            await anyio.to_thread.run_sync(partial(Path.unlink, Path(str(imp.archive_path)), True))
            imp.archive_path = None


async def _fail(ctx: Any, import_id: uuid.UUID, error: AmphoraError) -> None:
    async with ctx.db.session() as session:
        imp = await session.get(ShowImport, import_id)
        if imp is None:
            return
        service.fail(imp, error)
        if imp.created_show and imp.show_id is not None:
            show_id = imp.show_id
            await service.forget_show_slug(session, show_id=show_id)
        else:
            show_id = None
    await _discard_archives(ctx, import_id=import_id)
    if show_id is not None:  # a first import that brought nothing: no partial show stays
        from amphora.show.tasks import purge_show

        await purge_show.body(ctx, str(show_id))


@job(retries=3, retry_delay=30)
async def run_import(ctx: Any, import_id: str, sync: bool = False) -> None:
    iid = uuid.UUID(import_id)
    async with ctx.db.session(write=False) as session:
        imp = await session.get(ShowImport, iid)
        if imp is None:
            return
        expected = ImportStatus.done if sync else ImportStatus.queued
        resuming = imp.status == ImportStatus.mirroring and not sync
        if imp.status != expected and not resuming:
            return
        session.expunge(imp)
    try:
        if not resuming:
            if not sync and not await _set_status(ctx, iid, ImportStatus.fetching):
                return
            parsed = await _parsed_source(ctx, imp, sync=sync)
            if not await _apply(ctx, iid, parsed, sync=sync):
                return
        if await mirror.mirror_files(ctx, iid):
            await _finish(ctx, iid)
    except _Unchanged:
        await _synced(ctx, iid)
    except _Switched:
        await _stop_syncing(ctx, iid)
    except AmphoraError as exc:  # fetching, parsing, mapping: an expected failure
        if sync:  # the old host is down or broken today: try again next time
            await _note_sync_failure(ctx, iid, exc)
        else:
            await _fail(ctx, iid, exc)


async def _apply(ctx: Any, iid: uuid.UUID, parsed: ParsedFeed, *, sync: bool) -> bool:
    async with ctx.db.session() as session:
        imp = await session.get(ShowImport, iid)
        if imp is None or imp.status in (ImportStatus.cancelled, ImportStatus.failed):
            return False
        if parsed.locked and imp.verified_at is None and imp.archive_path is None:
            if sync:  # ownership was proven at the first import (or the lock came later)
                pass
            else:
                await service.request_verification(session, ctx.settings, imp=imp, parsed=parsed)
                return False
        if not parsed.items and not sync and imp.show_id is None:
            raise service.NothingImported("The feed lists no episodes.")
        show = await service.apply_feed(session, ctx.settings, imp=imp, parsed=parsed)
        imp.status = ImportStatus.mirroring
        show_id = show.id
    await ctx.cache.invalidate([feed_tag(show_id)])
    return True


async def _finish(ctx: Any, iid: uuid.UUID) -> None:
    async with ctx.db.session() as session:
        imp = await session.get(ShowImport, iid)
        if imp is None or imp.status != ImportStatus.mirroring:
            return
        await service.refresh_counts(session, imp)
        total, published = await service.unpublished_count(session, imp)
        first = imp.last_synced_at is None
        if first and imp.created_show and total and not published:
            error = service.NothingImported(
                "No episode could be brought over (see the problems for each file)."
            )
        else:
            error = None
            imp.status = ImportStatus.done
            imp.finished_at = imp.last_synced_at = utcnow()
        show_id = imp.show_id
    if error is not None:
        await _fail(ctx, iid, error)
        return
    await _discard_archives(ctx, import_id=iid)
    if show_id is not None:
        await ctx.cache.invalidate([feed_tag(show_id)])


async def _synced(ctx: Any, iid: uuid.UUID) -> None:
    async with ctx.db.session() as session:
        imp = await session.get(ShowImport, iid)
        if imp is not None:
            imp.last_synced_at = utcnow()
            if imp.status == ImportStatus.mirroring:
                imp.status = ImportStatus.done


async def _stop_syncing(ctx: Any, iid: uuid.UUID) -> None:
    logger.info("import %s: the old feed now leads here; keeping in sync stopped", iid)
    async with ctx.db.session() as session:
        imp = await session.get(ShowImport, iid)
        if imp is not None:
            imp.keep_in_sync = False
            imp.last_synced_at = utcnow()
            message = (
                "The old feed now leads here (a redirect or itunes:new-feed-url): the move is"
                " complete and keeping in sync stopped."
            )
            service.add_problems(imp, [{"where": "feed", "field": "sync", "message": message}])


async def _note_sync_failure(ctx: Any, iid: uuid.UUID, exc: AmphoraError) -> None:
    logger.warning("import %s: re-reading the old feed failed: %s", iid, exc.message)
    async with ctx.db.session() as session:
        imp = await session.get(ShowImport, iid)
        if imp is not None:
            imp.status = ImportStatus.done
            imp.last_synced_at = utcnow()
            stamp = utcnow().strftime("%Y-%m-%d %H:%M UTC")
            service.add_problems(
                imp, [{"where": "feed", "field": "sync", "message": f"{stamp}: {exc.message}"}]
            )


def _stall_cutoff(settings: Settings) -> Any:
    return utcnow() - timedelta(minutes=settings.import_stall_minutes)


@periodic(crontab(minute="*/5"))
async def resume_imports(ctx: Any) -> None:
    """Imports nobody has worked on for a while (a worker died): run them again. Zips of
    imports that ended are removed."""
    async with ctx.db.session() as session:
        ids = await session.scalars(
            select(ShowImport.id).where(
                ShowImport.status.in_([ImportStatus.queued, ImportStatus.mirroring]),
                ShowImport.updated_at < _stall_cutoff(ctx.settings),
            )
        )
        for import_id in ids:
            run_import.defer(session, str(import_id))
        # A worker that died while fetching or parsing: start that import over.
        stuck = await session.scalars(
            select(ShowImport).where(
                ShowImport.status.in_([ImportStatus.fetching, ImportStatus.parsing]),
                ShowImport.updated_at < _stall_cutoff(ctx.settings),
            )
        )
        for imp in stuck:
            imp.status = ImportStatus.queued
            run_import.defer(session, str(imp.id))
    await _discard_archives(ctx)  # e.g. of imports cancelled while they ran


@periodic(crontab(minute="*/15"))
async def sync_imports(ctx: Any) -> None:
    """Re-read the old feeds of imports kept in sync, when due."""
    due = utcnow() - timedelta(minutes=ctx.settings.import_sync_minutes)
    async with ctx.db.session(write=False) as session:
        ids = list(
            await session.scalars(
                select(ShowImport.id).where(
                    ShowImport.keep_in_sync.is_(True),
                    ShowImport.status == ImportStatus.done,
                    or_(ShowImport.last_synced_at.is_(None), ShowImport.last_synced_at < due),
                )
            )
        )
    async with ctx.db.session() as session:
        for import_id in ids:
            run_import.defer(session, str(import_id), True)
