"""Show export: one zip with everything needed to take a show elsewhere (or back in).

The archive (format ``amphora-export``, version 1; the importer reads exactly this)::

    manifest.json                    the show, its series and every episode, with file hashes
    feed.xml                         our RSS of the show, URLs of our own files made relative
    artwork/show.<ext>               the show artwork master
    media/<episode_id>.<ext>         each episode's current media file
    artwork/<episode_id>.<ext>       an episode's own artwork master
    transcripts/<transcript_id>.<ext>
    chapters/<episode_id>.json

Every episode outside the trash is in it (published, scheduled, drafts, premium). Subscribers
are not: their names, addresses and tokens are third parties' private data, and their private
feed URLs would not work on another host anyway.

The work is split along the house seams. :func:`plan_archive`, :func:`relative_feed` and
:func:`build_manifest` are pure (rows in, plain data out). :func:`build_export`, run by the job,
does the I/O: the rows are read in one short read transaction, the files are then streamed from
storage into a temporary zip in the data dir (no transaction open meanwhile; media and artwork
stored, text deflated, every write in a worker thread, one chunk in memory at a time), the zip
is stored, and a second short transaction marks the export done. The API side
(:func:`request_export`, :func:`get_export`, :func:`serve_export`) only records and serves.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import time
import uuid
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

import anyio
import anyio.to_thread
from pydantic_core import to_jsonable_python
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

import amphora
from amphora.delivery.files import Representation, ServedResponse, serve_stored, strong_etag
from amphora.delivery.service import chapters_bytes
from amphora.delivery.urls import feed_url, transcript_url
from amphora.episode.companions import CHAPTERS_CONTENT_TYPE
from amphora.episode.schemas import EpisodeFields
from amphora.feed.builder import build_feed
from amphora.feed.data import FeedChannel, FeedItem
from amphora.feed.guid import podcast_guid
from amphora.feed.loader import load_feed
from amphora.kit.clock import utcnow
from amphora.kit.errors import AmphoraError, NotFound
from amphora.kit.storage import Storage, StorageKeyNotFound
from amphora.models import (
    Artwork,
    Episode,
    MediaFile,
    Series,
    Show,
    ShowExport,
    Transcript,
    User,
)
from amphora.runtime import Runtime
from amphora.show.schemas import ShowFields

logger = logging.getLogger("amphora.export")

FORMAT = "amphora-export"
FORMAT_VERSION = 1
ZIP_CONTENT_TYPE = "application/zip"
TEMP_DIR = "exports"  # under the data dir: zips being built
CHUNK = 1024 * 1024  # one thread hop per MiB: the hop costs more than the copy below that
# A running export touches its row this often; one silent for STALE_RUNNING died with its
# worker and no longer blocks a new request. A queued one waits for a free worker first.
HEARTBEAT_SECONDS = 60.0
STALE_RUNNING = timedelta(minutes=15)
STALE_QUEUED = timedelta(hours=24)
MAX_ERROR_CHARS = 2000

SHOW_KEYS = (*(key for key in ShowFields.model_fields if key != "new_feed_url"), "podcast_guid")
EPISODE_KEYS = tuple(EpisodeFields.model_fields)


class ExportStatus(StrEnum):
    queued = "queued"
    running = "running"
    done = "done"
    failed = "failed"
    expired = "expired"  # the zip was removed after the retention period


ACTIVE = (ExportStatus.queued, ExportStatus.running)


class ExportNotReady(AmphoraError):
    status_code = 409
    code = "export_not_ready"
    message = "This export is not finished yet: download it once its status is done."


class ExportExpired(AmphoraError):
    status_code = 410
    code = "export_expired"
    message = "This export was deleted after the retention period; request a new one."


class ExportBuildError(AmphoraError):
    """The archive cannot be built from what is stored (a retry would fail the same way)."""

    status_code = 422
    code = "export_failed"
    message = "The export could not be built."


# --- the plan: which files go where (pure) -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Catalog:
    """The rows an archive is made from, read in one transaction (no longer attached)."""

    show: Show
    series: Sequence[Series]
    episodes: Sequence[Episode]  # outside the trash, in manifest order
    media: Mapping[uuid.UUID, MediaFile]
    artworks: Mapping[uuid.UUID, Artwork]
    transcripts: Mapping[uuid.UUID, Sequence[Transcript]]  # by episode id, oldest first


@dataclass(frozen=True, slots=True)
class Member:
    """One file of the archive: a stored object streamed in, or bytes made here."""

    path: str
    content_type: str
    label: str  # what it is, for error messages
    key: str | None = None
    data: bytes | None = None
    size: int | None = None  # expected size, when the catalog knows it
    sha256: str | None = None  # what the catalog recorded; the streamed bytes must match
    compress: bool = False  # media and images are compressed already


@dataclass(frozen=True, slots=True)
class TranscriptMember:
    member: Member
    id: uuid.UUID
    extension: str
    language: str | None
    captions: bool


@dataclass(frozen=True, slots=True)
class EpisodePlan:
    id: uuid.UUID
    guid: str
    fields: dict[str, Any]
    remote_media: dict[str, Any] | None
    media: Member | None
    original_filename: str | None
    artwork: Member | None
    transcripts: tuple[TranscriptMember, ...]
    chapters: Member | None

    def members(self) -> Iterator[Member]:
        for member in (self.media, self.artwork):
            if member is not None:
                yield member
        for transcript in self.transcripts:
            yield transcript.member
        if self.chapters is not None:
            yield self.chapters


@dataclass(frozen=True, slots=True)
class ArchivePlan:
    show: dict[str, Any]
    artwork: Member | None
    series: list[dict[str, Any]]
    episodes: list[EpisodePlan]

    def members(self) -> Iterator[Member]:
        """Every file but the feed and the manifest, in archive order."""
        if self.artwork is not None:
            yield self.artwork
        for episode in self.episodes:
            yield from episode.members()

    def by_guid(self) -> dict[str, EpisodePlan]:
        return {episode.guid: episode for episode in self.episodes}


@dataclass(frozen=True, slots=True)
class Written:
    """A file as it went into the zip."""

    sha256: str
    size: int


def _json_values(row: Any, keys: Sequence[str]) -> dict[str, Any]:
    # The same JSON the API answers with (datetimes ISO 8601, decimals as strings, ids as text).
    return {key: to_jsonable_python(getattr(row, key)) for key in keys}


def _artwork_member(artwork: Artwork, path_stem: str, label: str) -> Member:
    master = artwork.variants[0] if artwork.variants else {}
    return Member(
        path=f"{path_stem}.{artwork.extension}",
        content_type=artwork.content_type,
        label=label,
        key=artwork.master_key,
        size=master.get("size"),
        sha256=artwork.sha256,
    )


def _episode_plan(catalog: Catalog, episode: Episode) -> EpisodePlan:
    name = f"episode {episode.title!r}"
    media_row = catalog.media.get(episode.media_id) if episode.media_id else None
    media = None
    if media_row is not None:
        media = Member(
            path=f"media/{episode.id}.{media_row.extension}",
            content_type=media_row.content_type,
            label=f"the media file of {name}",
            key=media_row.storage_key,
            size=media_row.size,
            sha256=media_row.sha256,
        )
    art = catalog.artworks.get(episode.artwork_id) if episode.artwork_id else None
    transcripts = tuple(
        TranscriptMember(
            member=Member(
                path=f"transcripts/{row.id}.{row.extension}",
                content_type=row.content_type,
                label=f"a transcript of {name}",
                key=row.storage_key,
                size=row.size,
                compress=True,
            ),
            id=row.id,
            extension=row.extension,
            language=row.language,
            captions=row.captions,
        )
        for row in catalog.transcripts.get(episode.id, ())
    )
    chapters = None
    if episode.chapters is not None:
        chapters = Member(
            path=f"chapters/{episode.id}.json",
            content_type=CHAPTERS_CONTENT_TYPE,
            label=f"the chapters of {name}",
            data=chapters_bytes(episode.chapters),  # the very bytes the chapters URL serves
            compress=True,
        )
    return EpisodePlan(
        id=episode.id,
        guid=episode.guid,
        fields=_json_values(episode, EPISODE_KEYS),
        remote_media=episode.remote_media,
        media=media,
        original_filename=media_row.original_filename if media_row else None,
        artwork=_artwork_member(art, f"artwork/{episode.id}", f"the artwork of {name}")
        if art
        else None,
        transcripts=transcripts,
        chapters=chapters,
    )


def plan_archive(catalog: Catalog, *, base_url: str) -> ArchivePlan:
    """Where every row's file goes in the archive, and the manifest values of each row."""
    show = catalog.show
    values = _json_values(show, SHOW_KEYS)
    # Shows older than podcast:guid carry the value their feed shows (see the feed loader).
    values["podcast_guid"] = show.podcast_guid or podcast_guid(feed_url(base_url, show.slug))
    art = catalog.artworks.get(show.artwork_id) if show.artwork_id else None
    return ArchivePlan(
        show=values,
        artwork=_artwork_member(art, "artwork/show", "the show artwork") if art else None,
        series=[
            {
                "id": str(row.id),
                "name": row.name,
                "description": row.description,
                "position": row.position,
            }
            for row in catalog.series
        ],
        episodes=[_episode_plan(catalog, episode) for episode in catalog.episodes],
    )


def relative_feed(
    channel: FeedChannel, items: Sequence[FeedItem], plan: ArchivePlan, *, base_url: str
) -> tuple[FeedChannel, list[FeedItem]]:
    """The feed with every URL of our own files replaced by its path in the archive.

    Items are matched on their guid (unique within a show). An item the plan does not know
    (published between the two reads of the snapshot) is left out, so that the feed never
    names a file the archive lacks. URLs the creator typed (links, people, funding…) and
    the old host's enclosure of an episode imported without mirroring stay as they are."""
    episodes = plan.by_guid()
    channel = replace(channel, image_url=plan.artwork.path if plan.artwork else None)
    out = []
    for item in items:
        episode = episodes.get(item.guid)
        if episode is None:
            continue
        enclosure = item.enclosure
        if enclosure is not None and episode.media is not None:
            enclosure = replace(enclosure, url=episode.media.path)
        paths = {
            transcript_url(base_url, t.id, t.extension): t.member.path for t in episode.transcripts
        }
        transcripts = tuple(
            replace(link, url=paths[link.url]) for link in item.transcripts if link.url in paths
        )
        out.append(
            replace(
                item,
                enclosure=enclosure,
                image_url=episode.artwork.path if episode.artwork else None,
                transcripts=transcripts,
                chapters_url=episode.chapters.path if episode.chapters else None,
            )
        )
    return channel, out


def _file_entry(member: Member, written: Written) -> dict[str, Any]:
    return {
        "path": member.path,
        "content_type": member.content_type,
        "sha256": written.sha256,
        "size": written.size,
    }


def build_manifest(
    plan: ArchivePlan, written: Mapping[str, Written], *, exported_at: datetime
) -> dict[str, Any]:
    """``manifest.json``: the plan's values plus the hash and size of every file written."""
    episodes = []
    for episode in plan.episodes:
        media = None
        if episode.media is not None:
            media = {
                **_file_entry(episode.media, written[episode.media.path]),
                "original_filename": episode.original_filename,
            }
        episodes.append(
            {
                "id": str(episode.id),
                "fields": episode.fields,
                "remote_media": episode.remote_media,
                "media": media,
                "artwork": _file_entry(episode.artwork, written[episode.artwork.path])
                if episode.artwork
                else None,
                "transcripts": [
                    {
                        "path": t.member.path,
                        "content_type": t.member.content_type,
                        "language": t.language,
                        "captions": t.captions,
                        "sha256": written[t.member.path].sha256,
                        "size": written[t.member.path].size,
                    }
                    for t in episode.transcripts
                ],
                "chapters": {"path": episode.chapters.path} if episode.chapters else None,
            }
        )
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "exported_at": to_jsonable_python(exported_at),
        "generator": f"Amphora {amphora.__version__}",
        "show": plan.show,
        "artwork": _file_entry(plan.artwork, written[plan.artwork.path]) if plan.artwork else None,
        "series": plan.series,
        "episodes": episodes,
    }


def storage_key(show_id: uuid.UUID, export_id: uuid.UUID) -> str:
    return f"exports/{show_id}/{export_id}.zip"


def download_name(show: Show, export: ShowExport) -> str:
    day = (export.finished_at or export.created_at).date().isoformat()
    return f"{show.slug}-export-{day}.zip"  # slugs are [a-z0-9-]: safe in a header as is


# --- requests and downloads (the API side) -----------------------------------------------------


def _is_stale(export: ShowExport, now: datetime) -> bool:
    limit = STALE_RUNNING if export.status == ExportStatus.running else STALE_QUEUED
    return export.updated_at < now - limit


async def request_export(session: AsyncSession, *, show: Show, user: User) -> ShowExport:
    """A new export of ``show``, queued; or the one already queued or running."""
    from amphora.feed_import.export_tasks import export_show  # the job module imports us

    # Lock the show row so that two requests at once cannot both start one (SQLite writers
    # are serialised anyway; FOR UPDATE is a no-op there).
    await session.execute(select(Show.id).where(Show.id == show.id).with_for_update())
    now = utcnow()
    active = await session.scalars(
        select(ShowExport)
        .where(ShowExport.show_id == show.id, ShowExport.status.in_(ACTIVE))
        .order_by(ShowExport.created_at.desc())
    )
    for export in active:
        if not _is_stale(export, now):
            return export
        # Its worker died (or its job was lost): it must not block the show for ever.
        export.status = ExportStatus.failed
        export.error = "The export was abandoned (its worker stopped); request a new one."
    export = ShowExport(show_id=show.id, requested_by=user.id, status=ExportStatus.queued)
    session.add(export)
    await session.flush()
    export_show.defer(session, str(export.id))
    return export


async def list_exports(session: AsyncSession, *, show: Show, limit: int) -> list[ShowExport]:
    """The show's exports, newest first."""
    rows = await session.scalars(
        select(ShowExport)
        .where(ShowExport.show_id == show.id)
        .order_by(ShowExport.created_at.desc(), ShowExport.id.desc())
        .limit(limit)
    )
    return list(rows)


async def get_export(session: AsyncSession, *, show: Show, export_id: uuid.UUID) -> ShowExport:
    export = await session.get(ShowExport, export_id)
    if export is None or export.show_id != show.id:
        raise NotFound("No such export.")
    return export


async def serve_export(
    storage: Storage,
    export: ShowExport,
    *,
    show: Show,
    method: str,
    request_headers: Mapping[str, str],
    url_lifetime: int,
) -> ServedResponse:
    """The zip of a finished export: streamed with Range support, or a redirect to storage."""
    if export.status == ExportStatus.expired:
        raise ExportExpired
    if export.status != ExportStatus.done or export.storage_key is None:
        raise ExportNotReady
    rep = Representation(ZIP_CONTENT_TYPE, "private, no-store", strong_etag(export.id.hex))
    response = await serve_stored(
        storage,
        export.storage_key,
        method=method,
        request_headers=request_headers,
        rep=rep,
        url_lifetime=url_lifetime,
    )
    disposition = f'attachment; filename="{download_name(show, export)}"'
    response.raw_headers.append((b"content-disposition", disposition.encode("latin-1")))
    return response


# --- building the archive (the job side) -------------------------------------------------------


async def _claim(runtime: Runtime, export_id: uuid.UUID) -> uuid.UUID | None:
    """Mark the export running and return its show; None when there is nothing to do (done,
    expired, or gone with its show)."""
    async with runtime.db.session() as session:
        export = await session.get(ShowExport, export_id)
        if export is None or export.status in (ExportStatus.done, ExportStatus.expired):
            return None
        export.status = ExportStatus.running
        export.error = None
        export.finished_at = None
        export.updated_at = utcnow()
        return export.show_id


async def read_catalog(session: AsyncSession, show_id: uuid.UUID) -> Catalog:
    """Every row the archive needs (one query per table, whatever the number of episodes)."""
    show = await session.get(Show, show_id)
    if show is None:
        raise ExportBuildError("The show no longer exists.")
    kept = (Episode.show_id == show_id, Episode.deleted_at.is_(None))
    episodes = list(
        await session.scalars(
            select(Episode)
            .where(*kept)
            .order_by(
                Episode.publish_at.is_(None), Episode.publish_at, Episode.created_at, Episode.id
            )
        )
    )
    series = list(
        await session.scalars(
            select(Series).where(Series.show_id == show_id).order_by(Series.position, Series.name)
        )
    )
    media = await session.scalars(
        select(MediaFile).join(Episode, Episode.media_id == MediaFile.id).where(*kept)
    )
    artworks = await session.scalars(
        select(Artwork).where(
            or_(
                Artwork.id == show.artwork_id,
                Artwork.id.in_(select(Episode.artwork_id).where(*kept)),
            )
        )
    )
    transcripts: dict[uuid.UUID, list[Transcript]] = {}
    for row in await session.scalars(
        select(Transcript)
        .join(Episode, Episode.id == Transcript.episode_id)
        .where(*kept)
        .order_by(Transcript.created_at, Transcript.id)
    ):
        transcripts.setdefault(row.episode_id, []).append(row)
    return Catalog(
        show=show,
        series=series,
        episodes=episodes,
        media={row.id: row for row in media},
        artworks={row.id: row for row in artworks},
        transcripts=transcripts,
    )


async def _snapshot(runtime: Runtime, show_id: uuid.UUID) -> tuple[ArchivePlan, bytes]:
    """The plan and feed.xml, from one short read transaction."""
    settings = runtime.settings
    async with runtime.db.session(write=False) as session:
        catalog = await read_catalog(session, show_id)
        loaded = await load_feed(
            session, settings, catalog.show, want_plain=True, include_premium=True
        )
    plan = plan_archive(catalog, base_url=settings.base_url)
    assert loaded.plain_items is not None
    channel, items = relative_feed(
        loaded.channel, loaded.plain_items, plan, base_url=settings.base_url
    )
    feed = await anyio.to_thread.run_sync(build_feed, channel, items)  # lxml: off the loop
    return plan, feed


class _Heartbeat:
    """Touches a running export's row now and then (see STALE_RUNNING)."""

    def __init__(self, runtime: Runtime, export_id: uuid.UUID) -> None:
        self.runtime = runtime
        self.export_id = export_id
        self.last = time.monotonic()

    async def __call__(self) -> None:
        if time.monotonic() - self.last < HEARTBEAT_SECONDS:
            return
        self.last = time.monotonic()
        async with self.runtime.db.session() as session:
            await session.execute(
                update(ShowExport)
                .where(ShowExport.id == self.export_id, ShowExport.status == ExportStatus.running)
                .values(updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )


def _zip_info(path: str, when: datetime, *, compress: bool) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(path, date_time=when.timetuple()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16  # a plain readable file once unpacked
    return info


def _write_chunk(handle: IO[bytes], hasher: Any, chunk: bytes) -> None:
    hasher.update(chunk)
    handle.write(chunk)


async def _add_bytes(archive: zipfile.ZipFile, member: Member, when: datetime) -> Written:
    assert member.data is not None
    info = _zip_info(member.path, when, compress=member.compress)
    await anyio.to_thread.run_sync(archive.writestr, info, member.data)
    return Written(hashlib.sha256(member.data).hexdigest(), len(member.data))


async def _add_stored(
    archive: zipfile.ZipFile, storage: Storage, member: Member, when: datetime, beat: _Heartbeat
) -> Written:
    assert member.key is not None
    info = _zip_info(member.path, when, compress=member.compress)
    # A known size lets zipfile decide on ZIP64 itself; an unknown one could pass 4 GiB.
    if member.size is not None:
        info.file_size = member.size
    handle = await anyio.to_thread.run_sync(
        lambda: archive.open(info, "w", force_zip64=member.size is None)
    )
    hasher = hashlib.sha256()
    size = 0
    try:
        async for chunk in storage.read(member.key, chunk_size=CHUNK):
            await anyio.to_thread.run_sync(_write_chunk, handle, hasher, chunk)
            size += len(chunk)
            await beat()
    except StorageKeyNotFound as exc:
        raise ExportBuildError(
            f"{member.label[0].upper()}{member.label[1:]} is missing from storage ({member.key}).",
            details={"path": member.path, "key": member.key},
        ) from exc
    finally:
        # Closing writes the entry's header; the zip must not be closed with it open.
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(handle.close)
    digest = hasher.hexdigest()
    if member.sha256 is not None and digest != member.sha256:
        raise ExportBuildError(
            f"The stored bytes of {member.label} do not match their recorded SHA-256 "
            f"({member.key}): the file is damaged.",
            details={"path": member.path, "key": member.key},
        )
    return Written(digest, size)


async def _write_archive(
    archive: zipfile.ZipFile,
    storage: Storage,
    plan: ArchivePlan,
    feed: bytes,
    *,
    exported_at: datetime,
    beat: _Heartbeat,
) -> int:
    """Fill ``archive``; returns how many files it holds."""
    when = exported_at
    feed_member = Member("feed.xml", "application/rss+xml", "the feed", data=feed, compress=True)
    await _add_bytes(archive, feed_member, when)
    written: dict[str, Written] = {}
    for member in plan.members():
        if member.data is not None:
            written[member.path] = await _add_bytes(archive, member, when)
        else:
            written[member.path] = await _add_stored(archive, storage, member, when, beat)
    # The manifest comes last: it carries the hashes of the files streamed above.
    manifest = build_manifest(plan, written, exported_at=exported_at)
    body = json.dumps(manifest, ensure_ascii=False, indent=2).encode()
    await _add_bytes(
        archive,
        Member("manifest.json", "application/json", "the manifest", data=body, compress=True),
        when,
    )
    return len(written) + 2


def _temp_zip(directory: Path, export_id: uuid.UUID) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=directory, prefix=f"{export_id}-", suffix=".zip.part")
    os.close(fd)
    return Path(name)


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


async def _mark_failed(runtime: Runtime, export_id: uuid.UUID, message: str) -> None:
    async with runtime.db.session() as session:
        export = await session.get(ShowExport, export_id)
        if export is not None:
            export.status = ExportStatus.failed
            export.error = message[:MAX_ERROR_CHARS]
            export.finished_at = utcnow()
            export.storage_key = None


async def build_export(runtime: Runtime, *, export_id: uuid.UUID) -> None:
    """Build, store and record one export. Idempotent: a done (or expired) export is left
    alone; a queued, running or failed one is built from scratch.

    A failure the catalog explains (a file missing or damaged) marks the export failed and
    returns; anything else marks it failed too and is raised, so that the job is retried.
    Either way the temporary zip and any stored copy are removed."""
    show_id = await _claim(runtime, export_id)
    if show_id is None:
        return
    key = storage_key(show_id, export_id)
    temp: Path | None = None
    try:
        plan, feed = await _snapshot(runtime, show_id)
        directory = runtime.settings.resolved_data_dir / TEMP_DIR
        temp = path = await anyio.to_thread.run_sync(_temp_zip, directory, export_id)
        archive = await anyio.to_thread.run_sync(
            lambda: zipfile.ZipFile(path, "w", allowZip64=True)
        )
        try:
            files = await _write_archive(
                archive,
                runtime.storage,
                plan,
                feed,
                exported_at=utcnow(),
                beat=_Heartbeat(runtime, export_id),
            )
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(archive.close)
        stored = await runtime.storage.move_file(key, temp, content_type=ZIP_CONTENT_TYPE)
        async with runtime.db.session() as session:
            export = await session.get(ShowExport, export_id)
            if export is None:  # the show was purged meanwhile (rows cascade)
                raise ExportBuildError("The show no longer exists.")
            export.status = ExportStatus.done
            export.storage_key = key
            export.size = stored.size
            export.files = files
            export.error = None
            export.finished_at = utcnow()
    except ExportBuildError as exc:
        logger.warning("export %s failed: %s", export_id, exc.message)
        await _discard(runtime, key)
        await _mark_failed(runtime, export_id, exc.message)
    except Exception as exc:
        logger.exception("export %s failed", export_id)
        await _discard(runtime, key)
        await _mark_failed(runtime, export_id, f"The export could not be built: {exc!r}")
        raise
    finally:
        if temp is not None:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(_remove, temp)


async def _discard(runtime: Runtime, key: str) -> None:
    with anyio.CancelScope(shield=True):
        try:
            await runtime.storage.delete(key)
        except Exception:  # the original failure matters more
            logger.exception("could not remove the stored export %s", key)


# --- retention -------------------------------------------------------------------------------


async def expired_exports(session: AsyncSession, *, retention_days: int) -> list[uuid.UUID]:
    """Finished exports older than the retention period (a bounded batch; the rest next time)."""
    cutoff = utcnow() - timedelta(days=retention_days)
    rows = await session.scalars(
        select(ShowExport.id)
        .where(ShowExport.status == ExportStatus.done, ShowExport.finished_at < cutoff)
        .limit(1000)
    )
    return list(rows)


async def expire_export(runtime: Runtime, *, export_id: uuid.UUID, retention_days: int) -> None:
    """Delete one old export's zip, then mark the row expired (it stays, as history).

    File first, then row: a crash in between leaves a done row whose file is gone, and the
    next run deletes (nothing) and marks it again."""
    cutoff = utcnow() - timedelta(days=retention_days)
    async with runtime.db.session(write=False) as session:
        export = await session.get(ShowExport, export_id)
        if (
            export is None
            or export.status != ExportStatus.done
            or export.finished_at is None
            or export.finished_at >= cutoff
        ):
            return
        key = export.storage_key
    if key is not None:
        await runtime.storage.delete(key)
    async with runtime.db.session() as session:
        await session.execute(
            update(ShowExport)
            .where(ShowExport.id == export_id, ShowExport.status == ExportStatus.done)
            .values(status=ExportStatus.expired, storage_key=None, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )


def remove_abandoned_temp_files(directory: Path, *, older_than: timedelta) -> int:
    """Temporary zips of workers that died mid-export (blocking: call from a thread)."""
    if not directory.is_dir():
        return 0
    cutoff = time.time() - older_than.total_seconds()
    removed = 0
    for path in directory.glob("*.zip.part"):
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
    return removed
