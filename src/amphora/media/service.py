"""Media files: quota, probing, storing and attaching audio/video to an episode.

Bytes first arrive in a staging file under the data dir (never whole in memory); they are
probed there (what the file really is, whatever the client said), then streamed into storage
under a new key, hashed on the way — all outside any database transaction; only then is the
row written, in a short one. Replacing an episode's media makes a new file with a new
key, so a published URL's bytes never change.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from amphora.kit.clock import utcnow
from amphora.kit.db import new_id
from amphora.kit.errors import AmphoraError
from amphora.kit.storage import Storage, file_chunks

if TYPE_CHECKING:
    from amphora.media.probe import MediaInfo
from amphora.models import Artwork, Episode, MediaFile, Show, Transcript, User
from amphora.settings import Settings

ACCEPTED_TYPES = frozenset(
    {
        "audio/mpeg",
        "audio/mp3",
        "audio/x-m4a",
        "audio/m4a",
        "audio/mp4",
        "audio/aac",
        "video/mp4",
        "application/octet-stream",
    }
)


class UnsupportedMedia(AmphoraError):
    status_code = 415
    code = "unsupported_media_type"
    message = "Only MP3 and M4A/AAC audio, and MP4 video, are accepted."


class InvalidMedia(AmphoraError):
    status_code = 422
    code = "invalid_media"


class QuotaExceeded(AmphoraError):
    status_code = 413
    code = "quota_exceeded"
    message = "This file would take the account over its storage quota."


def staging_dir(settings: Settings) -> Path:
    path = settings.resolved_data_dir / "uploads"
    path.mkdir(parents=True, exist_ok=True)
    return path


def check_declared_type(content_type: str | None) -> None:
    base = (content_type or "application/octet-stream").split(";")[0].strip().lower()
    if base not in ACCEPTED_TYPES:
        raise UnsupportedMedia


async def probe(path: Path) -> MediaInfo:
    """What the file really is; 415 for other formats, 422 for broken files."""
    from amphora.media.probe import ProbeError, probe_file  # mutagen, when needed

    try:
        return await anyio.to_thread.run_sync(lambda: probe_file(path))
    except ProbeError as exc:
        if exc.code == "unsupported_media":
            raise UnsupportedMedia(exc.message) from exc
        raise InvalidMedia(exc.message, code=exc.code) from exc


# --- quota ----------------------------------------------------------------------------------------


async def used_bytes(session: AsyncSession, owner_id: uuid.UUID) -> int:
    media = await session.scalar(
        select(func.coalesce(func.sum(MediaFile.size), 0)).where(MediaFile.owner_id == owner_id)
    )
    art = await session.scalar(
        select(func.coalesce(func.sum(Artwork.total_bytes), 0)).where(Artwork.owner_id == owner_id)
    )
    return int(media or 0) + int(art or 0)


async def reserve_quota(
    session: AsyncSession, settings: Settings, *, owner_id: uuid.UUID, size: int, consume: bool
) -> None:
    """Refuse (413) a file that would pass the owner's quota, unless a superuser granted an
    overage allowance big enough; ``consume`` spends it (on the final attach only)."""
    owner = await session.get(User, owner_id, with_for_update=consume)
    assert owner is not None
    quota = owner.storage_quota_bytes
    if quota is None:
        quota = settings.default_storage_quota_bytes
    over = await used_bytes(session, owner_id) + size - quota
    if over <= 0:
        return
    if owner.overage_allowance_bytes >= over:
        if consume:
            owner.overage_allowance_bytes -= over
        return
    raise QuotaExceeded(details={"quota_bytes": quota, "over_by_bytes": over})


# --- staging ---------------------------------------------------------------------------------


async def stage_stream(
    chunks: AsyncIterator[bytes], path: Path, *, limit: int, offset: int = 0
) -> int:
    """Append the stream to ``path`` from ``offset``; refuse past ``limit`` total bytes.
    Returns the bytes written (a broken connection leaves what did arrive)."""
    written = 0
    async with await anyio.open_file(path, "r+b" if offset else "wb") as fh:
        if offset:
            await fh.seek(offset)
            await fh.truncate()
        try:
            async for chunk in chunks:
                if offset + written + len(chunk) > limit:
                    raise AmphoraError(
                        f"More bytes than declared ({limit}).",
                        code="upload_too_long",
                        status_code=413,
                    )
                await fh.write(chunk)
                written += len(chunk)
        finally:
            await fh.flush()
    return written


# --- attaching -------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredMedia:
    id: uuid.UUID
    key: str
    size: int
    sha256: str
    info: MediaInfo


@asynccontextmanager
async def stored_media(
    storage: Storage, *, show_id: uuid.UUID, staged: Path, info: MediaInfo, move: bool = False
) -> AsyncIterator[StoredMedia]:
    """Copy a probed staging file into storage under a new key — outside any database
    transaction, as it can take seconds. If the block that records it fails (including its
    commit), the stored object is deleted again: no orphaned files.

    ``move``: the staged file is not needed afterwards, even if recording fails (the caller
    would fetch or receive it again): storage takes it over, with local storage without
    copying the bytes."""
    media_id = new_id()
    key = f"media/{show_id}/{media_id}.{info.extension}"
    if move:
        stored = await storage.move_file(key, staged, content_type=info.content_type)
    else:
        stored = await storage.write(key, file_chunks(staged), content_type=info.content_type)
    try:
        yield StoredMedia(media_id, key, stored.size, stored.sha256_hex, info)
    except BaseException:
        await storage.delete(key)
        raise


async def record_media(
    session: AsyncSession,
    settings: Settings,
    *,
    episode: Episode,
    stored: StoredMedia,
    filename: str | None,
) -> MediaFile:
    """Make a stored file the episode's media (quota checked and spent here, in the write)."""
    show = await session.get(Show, episode.show_id)
    assert show is not None
    info = stored.info
    await reserve_quota(session, settings, owner_id=show.owner_id, size=stored.size, consume=True)
    media = MediaFile(
        id=stored.id,
        owner_id=show.owner_id,
        show_id=show.id,
        episode_id=episode.id,
        storage_key=stored.key,
        kind=info.kind,
        container=info.container,
        content_type=info.content_type,
        extension=info.extension,
        size=stored.size,
        sha256=stored.sha256,
        duration_s=info.duration_s,
        bitrate=info.bitrate,
        id3_size=info.id3_size,
        channels=info.channels,
        sample_rate=info.sample_rate,
        original_filename=(filename or "")[:255] or None,
    )
    session.add(media)
    await session.flush()  # the row must exist before the episode points at it
    if episode.media_id is not None:
        previous = await session.get(MediaFile, episode.media_id)
        if previous is not None:
            previous.superseded_at = utcnow()
    episode.media_id = media.id
    if episode.chapters is None and info.chapters:
        from amphora.episode.companions import chapters_from_id3

        episode.chapters = chapters_from_id3(
            [(c.start_ms, c.end_ms, c.title) for c in info.chapters]
        )
    episode.version += 1
    show.version += 1
    await session.flush()
    return media


async def episode_files(session: AsyncSession, episode_ids: list[uuid.UUID]) -> list[str]:
    """Every stored key that belongs to these episodes (media and transcripts)."""
    if not episode_ids:
        return []
    media = await session.scalars(
        select(MediaFile.storage_key).where(MediaFile.episode_id.in_(episode_ids))
    )
    transcripts = await session.scalars(
        select(Transcript.storage_key).where(Transcript.episode_id.in_(episode_ids))
    )
    return [*media, *transcripts]
