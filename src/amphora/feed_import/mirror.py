"""Bringing an import's files over: media, artwork, transcripts and chapters.

Downloads run with bounded concurrency (``AMPHORA_IMPORT_CONCURRENCY``) through the SSRF-guarded
fetcher, into a staging file per file row. A broken connection is resumed with ``Range`` from the
bytes already staged (the staging file survives a dying worker too, so the next run resumes
as well). Each finished file is checked like an upload — media probed and hashed, artwork
processed, transcripts and chapters validated — and recorded in a short write of its own: no
transaction is open while bytes travel.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from sqlalchemy import select

from amphora.episode.service import EpisodeAccess, add_transcript, set_chapters
from amphora.feed_import import service
from amphora.feed_import.archive import ARCHIVE_PREFIX, copy_member
from amphora.kit.errors import AmphoraError
from amphora.kit.http import FetchError, FetchResponse, fetch_stream
from amphora.media import service as media
from amphora.media.artwork_service import MAX_ARTWORK_BYTES, store_artwork
from amphora.models import (
    Episode,
    FileKind,
    FileState,
    ImportFile,
    ImportItem,
    ImportStatus,
    Role,
    Show,
    ShowImport,
    User,
)
from amphora.settings import Settings

logger = logging.getLogger("amphora.import")

COMPANION_MAX_BYTES = 20 * 1024**2  # transcripts and chapters
RESUME_ATTEMPTS = 4  # connections per file (the first and three resumptions)
WRITE_BYTES = 1024**2
STATUS_POLL_SECONDS = 2.0
# Kinds in the order they are brought over: what the feed shows first.
_ORDER = {
    FileKind.show_artwork: 0,
    FileKind.media: 1,
    FileKind.artwork: 2,
    FileKind.transcript: 3,
    FileKind.chapters: 4,
}


class NotMedia(AmphoraError):
    status_code = 422
    code = "not_media"


def staging_dir(settings: Settings, import_id: uuid.UUID) -> Path:
    return settings.resolved_data_dir / "imports" / str(import_id)


@dataclass
class _Run:
    ctx: Any
    import_id: uuid.UUID
    show_id: uuid.UUID
    owner_id: uuid.UUID
    staging: Path
    cancelled: bool = False
    archive_path: str | None = None
    # One store at a time per episode: each store bumps the episode's ``version`` (which the
    # feed's item cache is keyed on) from the value it read, and two at once could both write
    # the same new version on PostgreSQL, so that a cached item would lack one of the files.
    # Downloads and other episodes' stores go on meanwhile.
    store_locks: dict[uuid.UUID | None, anyio.Lock] = field(default_factory=dict)

    def store_lock(self, row: ImportFile) -> anyio.Lock:
        return self.store_locks.setdefault(row.item_id, anyio.Lock())

    @property
    def settings(self) -> Settings:
        settings: Settings = self.ctx.settings
        return settings


# --- downloading ----------------------------------------------------------------------------------


def _resumed_from(response: FetchResponse, offset: int) -> bool:
    """Whether a 206 continues exactly at ``offset`` (else the server sent the whole file)."""
    if response.status != 206:
        return False
    content_range: str = response.headers.get("content-range", "")
    return content_range.startswith(f"bytes {offset}-")


async def download(run: _Run, row: ImportFile, path: Path, max_bytes: int) -> int:
    """Fetch ``row.url`` into ``path``; resume with Range after a broken connection. Files of an
    uploaded export come out of the archive instead."""
    if row.url.startswith(ARCHIVE_PREFIX) and run.archive_path is not None:
        member = row.url.removeprefix(ARCHIVE_PREFIX)
        return await anyio.to_thread.run_sync(
            copy_member, run.archive_path, member, path, max_bytes
        )
    last_error: FetchError | None = None
    for _ in range(RESUME_ATTEMPTS):
        staged = anyio.Path(path)
        offset = (await staged.stat()).st_size if await staged.exists() else 0
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        try:
            async with fetch_stream(
                row.url,
                settings=run.settings,
                max_bytes=max_bytes,
                headers=headers,
                accept_gzip=row.kind not in (FileKind.media, FileKind.artwork),
                deadline=max(300.0, max_bytes / (256 * 1024)),  # at least 256 KiB/s
            ) as response:
                if offset and not _resumed_from(response, offset):
                    offset = 0
                elif offset:
                    # What a 206 announces is the rest; the cap applies to the whole file.
                    response.max_bytes = max_bytes - offset
                await _write(run, response, path, offset)
            return (await staged.stat()).st_size
        except FetchError as exc:
            last_error = exc
            if not _worth_resuming(exc, path):
                raise
    assert last_error is not None
    raise last_error


def _worth_resuming(exc: FetchError, path: Path) -> bool:
    """A broken or stalled connection after some bytes arrived: try again from there."""
    return exc.code in {"fetch_failed", "fetch_timeout"} and path.exists()


async def _write(run: _Run, response: FetchResponse, path: Path, offset: int) -> None:
    """The body into ``path`` from ``offset`` on, a megabyte per write (one thread hop each,
    not one per network read); what arrived before a broken connection is on disk."""
    pending = bytearray()
    async with await anyio.open_file(path, "r+b" if offset else "wb") as fh:
        if offset:
            await fh.seek(offset)
            await fh.truncate()
        try:
            async for chunk in response.iter_bytes():
                pending += chunk
                if len(pending) >= WRITE_BYTES:
                    await fh.write(bytes(pending))
                    pending.clear()
        finally:
            if pending:
                with anyio.CancelScope(shield=True):
                    await fh.write(bytes(pending))


# --- one file -------------------------------------------------------------------------------------


async def _episode_of(session: Any, row: ImportFile) -> Episode | None:
    if row.item_id is None:
        return None
    item = await session.get(ImportItem, row.item_id)
    if item is None or item.episode_id is None:
        return None
    episode: Episode | None = await session.get(Episode, item.episode_id)
    return episode if episode is not None and episode.deleted_at is None else None


def _filename(row: ImportFile) -> str | None:
    """The name a file is recorded under: the one an export kept, else the URL's last part."""
    if row.url.startswith(ARCHIVE_PREFIX):
        return row.extra.get("filename")
    return row.url.split("?")[0].rstrip("/").rsplit("/", 1)[-1] or None


async def _store_media(run: _Run, row: ImportFile, path: Path) -> None:
    try:
        info = await media.probe(path)
    except AmphoraError as exc:
        raise NotMedia(f"{row.url} is not audio or video we can serve: {exc.message}") from exc
    async with (
        media.stored_media(
            run.ctx.storage, show_id=run.show_id, staged=path, info=info, move=True
        ) as stored,
        run.ctx.db.session() as session,
    ):
        episode = await _episode_of(session, row)
        if episode is None:
            raise _Gone
        await media.record_media(
            session, run.settings, episode=episode, stored=stored, filename=_filename(row)
        )
        await _done(session, row, stored.size)
        assert row.item_id is not None
        await service.media_arrived(session, item_id=row.item_id)


async def _store_artwork(run: _Run, row: ImportFile, data: bytes) -> None:
    async with run.ctx.db.session() as session:
        show = await session.get(Show, run.show_id)
        user = await session.get(User, run.owner_id)
        assert show is not None and user is not None
        episode = None
        if row.kind == FileKind.artwork:
            episode = await _episode_of(session, row)
            if episode is None:
                raise _Gone
        artwork = await store_artwork(
            session, run.ctx.storage, show_id=run.show_id, user=user, data=data
        )
        if episode is not None:
            episode.artwork_id = artwork.id
            episode.version += 1
        else:
            show.artwork_id = artwork.id
        show.version += 1
        await _done(session, row, len(data))


async def _store_companion(run: _Run, row: ImportFile, data: bytes) -> None:
    async with run.ctx.db.session() as session:
        episode = await _episode_of(session, row)
        show = await session.get(Show, run.show_id)
        if episode is None or show is None:
            raise _Gone
        access = EpisodeAccess(episode=episode, show=show, role=Role.admin)
        if row.kind == FileKind.transcript:
            await add_transcript(
                session,
                run.ctx.storage,
                access=access,
                data=data,
                declared=row.declared_type,
                filename=_filename(row),
                language=row.extra.get("language"),
                captions=bool(row.extra.get("captions")),
            )
        else:
            await set_chapters(session, access=access, document=data)
        await _done(session, row, len(data))


class _Gone(Exception):
    """The episode was deleted meanwhile: nothing to attach the file to."""


async def _done(session: Any, row: ImportFile, size: int) -> None:
    stored = await session.get(ImportFile, row.id)
    if stored is not None:
        stored.state, stored.size, stored.error = FileState.done, size, None
    await session.flush()


async def _failed(run: _Run, row: ImportFile, reason: str) -> None:
    async with run.ctx.db.session() as session:
        stored = await session.get(ImportFile, row.id)
        imp = await session.get(ShowImport, run.import_id)
        if stored is None or imp is None:
            return
        stored.state, stored.error = FileState.failed, reason
        stored.attempts += 1
        item = await session.get(ImportItem, row.item_id) if row.item_id else None
        where = f"item {item.guid}" if item is not None else "channel"
        message = reason
        if row.kind == FileKind.media:
            message += " The episode stays a draft: upload its audio to publish it."
        service.add_problems(imp, [{"where": where, "field": row.kind, "message": message}])


async def bring_over(run: _Run, row: ImportFile) -> None:
    """Download one file and attach it; a failure is recorded on the file and the import."""
    path = run.staging / f"{row.id}.part"
    limits = {
        FileKind.media: run.settings.max_upload_bytes,
        FileKind.artwork: MAX_ARTWORK_BYTES,
        FileKind.show_artwork: MAX_ARTWORK_BYTES,
    }
    try:
        await download(run, row, path, limits.get(FileKind(row.kind), COMPANION_MAX_BYTES))
        async with run.store_lock(row):
            if row.kind == FileKind.media:
                await _store_media(run, row, path)
            else:
                data = await anyio.Path(path).read_bytes()
                if row.kind in (FileKind.artwork, FileKind.show_artwork):
                    await _store_artwork(run, row, data)
                else:
                    await _store_companion(run, row, data)
    except _Gone:
        await _failed(run, row, "The episode was deleted before its file arrived.")
    except AmphoraError as exc:
        await _failed(run, row, f"{row.url}: {exc.message}")
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


# --- the whole import -----------------------------------------------------------------------------


async def _watch_status(run: _Run, workers: anyio.CancelScope) -> None:
    """Cancelled (or taken over) meanwhile: stop every download at once, mid-file too."""
    while True:
        await anyio.sleep(STATUS_POLL_SECONDS)
        async with run.ctx.db.session(write=False) as session:
            status = await session.scalar(
                select(ShowImport.status).where(ShowImport.id == run.import_id)
            )
        if status != ImportStatus.mirroring:
            run.cancelled = True
            workers.cancel()
            return


async def _report_progress(run: _Run) -> None:
    async with run.ctx.db.session() as session:
        imp = await session.get(ShowImport, run.import_id)
        if imp is not None:
            await service.refresh_counts(session, imp)


async def mirror_files(ctx: Any, import_id: uuid.UUID) -> bool:
    """Bring over every pending file of the import; False when it was cancelled meanwhile."""
    async with ctx.db.session(write=False) as session:
        imp = await session.get(ShowImport, import_id)
        if imp is None or imp.show_id is None or imp.status != ImportStatus.mirroring:
            return False
        rows = list(
            await session.scalars(
                select(ImportFile).where(
                    ImportFile.import_id == import_id, ImportFile.state == FileState.pending
                )
            )
        )
        run = _Run(
            ctx=ctx,
            import_id=import_id,
            show_id=imp.show_id,
            owner_id=imp.owner_id,
            staging=staging_dir(ctx.settings, import_id),
            archive_path=imp.archive_path,
        )
    rows.sort(key=lambda r: _ORDER[FileKind(r.kind)])
    run.staging.mkdir(parents=True, exist_ok=True)
    queue = iter(rows)

    async def worker() -> None:
        for row in queue:  # one shared iterator: each row goes to exactly one worker
            await bring_over(run, row)
            await _report_progress(run)

    async with anyio.create_task_group() as tg:
        workers = anyio.CancelScope()
        tg.start_soon(_watch_status, run, workers)
        with workers:
            async with anyio.create_task_group() as pool:
                for _ in range(max(1, ctx.settings.import_concurrency)):
                    pool.start_soon(worker)
        tg.cancel_scope.cancel()
    # Staged bytes are only kept for a worker that dies: a finished or cancelled run is over.
    await anyio.to_thread.run_sync(lambda: shutil.rmtree(run.staging, ignore_errors=True))
    return not run.cancelled
