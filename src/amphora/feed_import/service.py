"""Imports: the requests (create, read, cancel, verify ownership) and mapping a parsed feed onto
the catalog.

The pipeline (``tasks.py``) fetches and parses outside any transaction, then calls
:func:`apply_feed` in one short write: the show, one draft episode per item (keyed on its guid, so
a re-run or a re-read never duplicates one) and a row per file to bring over. ``mirror.py``
downloads those; an episode gets its publication date only once its media is in place.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import asdict
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from amphora.account.errors import EmailNotVerified
from amphora.episode.schemas import EpisodeCreate, EpisodeFields
from amphora.episode.service import create_episodes, field_values
from amphora.feed.guid import podcast_guid
from amphora.feed_import.parsed import ParsedFeed, ParsedItem, Problem
from amphora.kit.clock import utcnow
from amphora.kit.db import new_id
from amphora.kit.errors import AmphoraError, Conflict, NotFound
from amphora.kit.mail import queue_mail
from amphora.models import (
    Episode,
    FeedSlug,
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
from amphora.models.show_import import ACTIVE_STATUSES
from amphora.settings import Settings
from amphora.show.schemas import SeriesCreate, ShowCreate
from amphora.show.search import index_episode
from amphora.show.service import ShowAccess, create_series, create_show, list_series

MAX_PROBLEMS = 2000
ITEM_BATCH = 500  # new episodes written per batch
VERIFY_CODE_TTL = timedelta(hours=1)
VERIFY_MAX_ATTEMPTS = 5
# Extensions for enclosures kept on the old host whose type the feed did not say.
_TYPE_BY_EXTENSION = {
    "mp3": "audio/mpeg",
    "m4a": "audio/x-m4a",
    "mp4": "video/mp4",
    "m4v": "video/x-m4v",
    "mov": "video/quicktime",
    "aac": "audio/aac",
    "ogg": "audio/ogg",
    "opus": "audio/opus",
    "wav": "audio/wav",
    "flac": "audio/flac",
    "pdf": "application/pdf",
}


class ImportFailed(AmphoraError):
    status_code = 422
    code = "import_failed"


class FeedLocked(ImportFailed):
    status_code = 403
    code = "feed_locked"
    message = "The feed is locked (podcast:locked) and names no owner address to verify."


class WrongCode(ImportFailed):
    status_code = 422
    code = "wrong_code"
    message = "That code is not right (or has expired)."


class NothingImported(ImportFailed):
    code = "nothing_imported"


# --- requests -------------------------------------------------------------------------------------


async def create_import(
    session: AsyncSession,
    *,
    user: User,
    feed_url: str | None,
    archive_path: str | None = None,
    mirror_media: bool = True,
    keep_in_sync: bool = False,
) -> ShowImport:
    """A new import, queued. Importing a URL this user already imported goes into that show
    again (items are keyed on their guids): nothing is duplicated."""
    if not user.is_verified:
        raise EmailNotVerified("Verify your email address before importing a show.")
    show_id = None
    if feed_url is not None:
        previous = await session.scalar(
            select(ShowImport)
            .join(Show, Show.id == ShowImport.show_id)
            .where(
                ShowImport.owner_id == user.id,
                ShowImport.feed_url == feed_url,
                Show.deleted_at.is_(None),
            )
            .order_by(ShowImport.created_at.desc())
            .limit(1)
        )
        if previous is not None:
            if previous.status in ACTIVE_STATUSES:
                raise Conflict(
                    "This feed is being imported already.",
                    code="import_running",
                    details={"import_id": str(previous.id)},
                )
            show_id = previous.show_id
    imp = ShowImport(
        owner_id=user.id,
        show_id=show_id,
        feed_url=feed_url,
        archive_path=archive_path,
        mirror_media=mirror_media,
        keep_in_sync=keep_in_sync and feed_url is not None,
        status=ImportStatus.queued,
        problems=[],
    )
    session.add(imp)
    await session.flush()
    return imp


async def get_import(session: AsyncSession, *, user: User, import_id: uuid.UUID) -> ShowImport:
    imp = await session.get(ShowImport, import_id)
    if imp is None or imp.owner_id != user.id:
        raise NotFound("No such import.")
    return imp


async def list_imports(
    session: AsyncSession, *, user: User, offset: int, limit: int
) -> Sequence[ShowImport]:
    rows = await session.scalars(
        select(ShowImport)
        .where(ShowImport.owner_id == user.id)
        .order_by(ShowImport.created_at.desc(), ShowImport.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return rows.all()


async def cancel_import(session: AsyncSession, *, imp: ShowImport) -> ShowImport:
    """Stop fetching; what is already in place stays (drafts stay drafts). Also stops syncing."""
    if imp.status in (*ACTIVE_STATUSES, ImportStatus.verifying):
        imp.status = ImportStatus.cancelled
        imp.finished_at = utcnow()
    imp.keep_in_sync = False
    await session.flush()
    return imp


def _code_hash(settings: Settings, import_id: uuid.UUID, code: str) -> str:
    key = settings.resolved_secret_key.encode()
    return hmac.new(key, f"{import_id}:{code}".encode(), hashlib.sha256).hexdigest()


async def request_verification(
    session: AsyncSession, settings: Settings, *, imp: ShowImport, parsed: ParsedFeed
) -> None:
    """podcast:locked yes: mail a code to the owner address the feed itself names."""
    address = parsed.locked_owner or parsed.show.get("owner_email")
    if not address:
        raise FeedLocked
    code = f"{secrets.randbelow(10**6):06d}"
    imp.status = ImportStatus.verifying
    imp.verify_email = address
    imp.verify_code_hash = _code_hash(settings, imp.id, code)
    imp.verify_expires_at = utcnow() + VERIFY_CODE_TTL
    imp.verify_attempts = 0
    await queue_mail(
        session,
        to=address,
        template="import_locked",
        context={
            "code": code,
            "feed_url": imp.feed_url,
            "title": parsed.show.get("title") or imp.feed_url,
            "minutes": int(VERIFY_CODE_TTL.total_seconds() // 60),
        },
    )
    await session.flush()


async def verify_ownership(
    session: AsyncSession, settings: Settings, *, imp: ShowImport, code: str
) -> WrongCode | None:
    """Check the code; on success the import is queued again. A wrong code is *returned*, not
    raised, so that the attempt it used up is committed with the request."""
    if imp.status != ImportStatus.verifying or imp.verify_code_hash is None:
        raise Conflict("This import is not waiting for a code.", code="not_verifying")
    imp.verify_attempts += 1
    expired = imp.verify_expires_at is None or imp.verify_expires_at < utcnow()
    if expired or imp.verify_attempts > VERIFY_MAX_ATTEMPTS:
        fail(imp, WrongCode("The code expired or was tried too often; import again for a new one."))
        await session.flush()
        return WrongCode(imp.error_message)
    if not hmac.compare_digest(imp.verify_code_hash, _code_hash(settings, imp.id, code.strip())):
        await session.flush()
        return WrongCode(details={"attempts_left": VERIFY_MAX_ATTEMPTS - imp.verify_attempts})
    imp.verified_at = utcnow()
    imp.verify_code_hash = None
    imp.status = ImportStatus.queued
    await session.flush()
    return None


# --- progress and problems ------------------------------------------------------------------------


def add_problems(imp: ShowImport, problems: Sequence[Problem | dict[str, str]]) -> None:
    if not problems:
        return
    new = [p.as_dict() if isinstance(p, Problem) else p for p in problems]
    # Re-reads of a synced feed meet the same problems again: keep each once.
    seen = {(p["where"], p["field"], p["message"]) for p in imp.problems}
    fresh = [p for p in new if (p["where"], p["field"], p["message"]) not in seen]
    imp.problems = [*imp.problems, *fresh][:MAX_PROBLEMS]


def fail(imp: ShowImport, error: AmphoraError) -> None:
    imp.status = ImportStatus.failed
    imp.error_code, imp.error_message = error.code, error.message
    imp.finished_at = utcnow()


async def refresh_counts(session: AsyncSession, imp: ShowImport) -> None:
    """Progress from the item and file rows themselves (right after any crash or re-run)."""
    items = await session.execute(
        select(func.count(), func.count().filter(ImportItem.published.is_(True))).where(
            ImportItem.import_id == imp.id
        )
    )
    imp.items_total, imp.items_done = items.one()
    files = await session.execute(
        select(
            func.count(),
            func.count().filter(ImportFile.state != FileState.pending),
            func.coalesce(func.sum(func.coalesce(ImportFile.size, ImportFile.declared_length)), 0),
            func.coalesce(func.sum(ImportFile.size), 0),
        ).where(ImportFile.import_id == imp.id)
    )
    counts = [int(n or 0) for n in files.one()]
    imp.files_total, imp.files_done, imp.bytes_total, imp.bytes_done = counts
    imp.updated_at = utcnow()


# --- mapping --------------------------------------------------------------------------------------


def _file_key(kind: str, owner: str, url: str) -> str:
    return hashlib.sha256(f"{kind}\n{owner}\n{url}".encode()).hexdigest()


def _digest(item: ParsedItem) -> str:
    payload = json.dumps(asdict(item), sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def _remote_media(item: ParsedItem) -> dict[str, Any] | None:
    if item.enclosure is None:
        return None
    url = item.enclosure.url
    extension = url.split("?")[0].rsplit(".", 1)[-1].lower() if "." in url else ""
    return {
        "url": url,
        "length": item.enclosure.length or 0,
        "type": item.enclosure.type or _TYPE_BY_EXTENSION.get(extension, "audio/mpeg"),
        "duration_s": item.duration_s,
    }


def _wanted_files(
    imp: ShowImport, item: ParsedItem, item_id: uuid.UUID
) -> list[tuple[str, str, str | None, int | None, dict[str, Any]]]:
    """(kind, url, declared type, declared length, extra) of every file the item needs."""
    files: list[tuple[str, str, str | None, int | None, dict[str, Any]]] = []
    if imp.mirror_media and item.enclosure is not None:
        enclosure = item.enclosure
        extra: dict[str, Any] = {"filename": enclosure.filename} if enclosure.filename else {}
        files.append((FileKind.media, enclosure.url, enclosure.type, enclosure.length, extra))
    if item.image_url:
        files.append((FileKind.artwork, item.image_url, None, None, {}))
    for transcript in item.transcripts:
        extra = {"language": transcript.language, "captions": transcript.captions}
        files.append((FileKind.transcript, transcript.url, transcript.type, None, extra))
    if item.chapters is not None:
        files.append((FileKind.chapters, item.chapters.url, item.chapters.type, None, {}))
    return files


async def _new_show(
    session: AsyncSession, settings: Settings, *, imp: ShowImport, user: User, parsed: ParsedFeed
) -> Show:
    wanted = {"title": "Untitled show", **parsed.show}
    if parsed.locked_owner and not wanted.get("owner_email"):
        wanted["owner_email"] = parsed.locked_owner  # the address podcast:locked names
    if parsed.slug and await session.get(FeedSlug, parsed.slug) is None:
        wanted["slug"] = parsed.slug  # an export keeps its feed URL path where it is free
    data = ShowCreate.model_validate(wanted)
    access = await create_show(session, user=user, data=data, base_url=settings.base_url)
    show = access.show
    # Kept from the source, or computed from the feed URL it had there (STANDARDS §3): the
    # show's identity follows it to its new home.
    source_url = parsed.self_url or imp.feed_url
    if parsed.podcast_guid:
        show.podcast_guid = parsed.podcast_guid
    elif source_url:
        show.podcast_guid = podcast_guid(source_url)
    imp.show_id, imp.created_show = show.id, True
    await session.flush()
    return show


async def apply_feed(
    session: AsyncSession, settings: Settings, *, imp: ShowImport, parsed: ParsedFeed
) -> Show:
    """Bring the parsed feed into the catalog (one write, no network)."""
    user = await session.get(User, imp.owner_id)
    assert user is not None
    show = await session.get(Show, imp.show_id) if imp.show_id else None
    if show is None or show.deleted_at is not None:
        show = await _new_show(session, settings, imp=imp, user=user, parsed=parsed)
    access = ShowAccess(show=show, role=Role.admin)
    add_problems(imp, parsed.problems)
    series = await _series_ids(session, show, parsed)

    episodes = {
        guid: (episode_id, publish_at)
        for episode_id, guid, publish_at in (
            await session.execute(
                select(Episode.id, Episode.guid, Episode.publish_at).where(
                    Episode.show_id == show.id
                )
            )
        ).all()
    }
    items = {
        row.guid: row
        for row in await session.scalars(select(ImportItem).where(ImportItem.import_id == imp.id))
    }
    known_files = set(
        await session.scalars(select(ImportFile.key).where(ImportFile.import_id == imp.id))
    )
    # Artwork comes over whether or not the media does (mirror_media is about enclosures).
    if (
        parsed.image_url is not None
        and (key := _file_key(FileKind.show_artwork, "show", parsed.image_url)) not in known_files
    ):
        session.add(
            ImportFile(import_id=imp.id, key=key, kind=FileKind.show_artwork, url=parsed.image_url)
        )
        known_files.add(key)
    now = utcnow()
    changed: list[tuple[ParsedItem, str, Episode]] = []
    fresh: list[tuple[ParsedItem, str]] = []
    for item in parsed.items:
        digest = _digest(item)
        row = items.get(item.guid)
        if row is not None and (row.digest == digest or row.episode_id is None):
            continue  # unchanged, or deleted here by the creator: never brought back
        known = episodes.get(item.guid)
        if known is None:
            fresh.append((item, digest))
            continue
        found = await session.get(Episode, known[0])
        if found is None or found.deleted_at is not None:
            continue
        fields = _episode_fields(item, series)
        for field, value in field_values(EpisodeFields.model_validate(fields)).items():
            setattr(found, field, value)
        found.version += 1
        show.version += 1
        await index_episode(session, found)
        changed.append((item, digest, found))
    for start in range(0, len(fresh), ITEM_BATCH):
        batch = fresh[start : start + ITEM_BATCH]
        data = [
            EpisodeCreate.model_validate(
                {"title": "Untitled episode", **_episode_fields(item, series), "guid": item.guid}
            )
            for item, _ in batch
        ]
        created = await create_episodes(session, access=access, data=data)
        for (item, digest), episode in zip(batch, created, strict=True):
            episode.announced_at = now  # the show's feed is announced once, not per episode
            changed.append((item, digest, episode))

    rows: list[tuple[ParsedItem, Episode, ImportItem]] = []
    for item, digest, episode in changed:
        if not imp.mirror_media and (remote := _remote_media(item)) is not None:
            episode.remote_media = remote
        row = items.get(item.guid)
        if row is None:
            row = ImportItem(id=new_id(), import_id=imp.id, guid=item.guid, episode_id=episode.id)
            session.add(row)
        row.digest = digest
        row.publish_at = item.pub_date if item.draft else item.pub_date or now
        rows.append((item, episode, row))
    await session.flush()  # the items exist before their files
    for item, episode, row in rows:
        needs_media = False
        for kind, url, declared_type, declared_length, extra in _wanted_files(imp, item, row.id):
            key = _file_key(kind, item.guid, url)
            needs_media = needs_media or kind == FileKind.media
            if key in known_files:
                continue
            known_files.add(key)
            session.add(
                ImportFile(
                    import_id=imp.id,
                    item_id=row.id,
                    key=key,
                    kind=kind,
                    url=url,
                    declared_type=declared_type,
                    declared_length=declared_length,
                    extra=extra,
                )
            )
        if not needs_media or episode.media_id is not None:
            publish(episode, row)
    await session.flush()
    await refresh_counts(session, imp)
    return show


def _episode_fields(item: ParsedItem, series: dict[str, uuid.UUID]) -> dict[str, Any]:
    return {**item.fields, "series_id": series.get(item.series) if item.series else None}


async def _series_ids(
    session: AsyncSession, show: Show, parsed: ParsedFeed
) -> dict[str, uuid.UUID]:
    """The show's series by name, with the source's missing ones created (exports)."""
    existing = {s.name: s.id for s in await list_series(session, show=show)}
    for values in parsed.series:
        if values.get("name") and values["name"] not in existing:
            created = await create_series(session, show=show, data=SeriesCreate(**values))
            existing[created.name] = created.id
    return existing


def publish(episode: Episode, item: ImportItem) -> None:
    """The episode's media is in place (or lives elsewhere): give it the source's date."""
    if episode.publish_at != item.publish_at:
        episode.publish_at = item.publish_at
        episode.version += 1
    item.published = True


async def media_arrived(session: AsyncSession, *, item_id: uuid.UUID) -> None:
    item = await session.get(ImportItem, item_id)
    if item is None or item.episode_id is None:
        return
    episode = await session.get(Episode, item.episode_id)
    if episode is not None and episode.deleted_at is None:
        publish(episode, item)
        show = await session.get(Show, episode.show_id)
        if show is not None:
            show.version += 1
    await session.flush()


async def unpublished_count(session: AsyncSession, imp: ShowImport) -> tuple[int, int]:
    """(items, items published) of the import."""
    row = await session.execute(
        select(func.count(), func.count().filter(ImportItem.published.is_(True))).where(
            ImportItem.import_id == imp.id
        )
    )
    total, published = row.one()
    return int(total), int(published)


async def forget_show_slug(session: AsyncSession, *, show_id: uuid.UUID) -> None:
    """A show a failed first import created was never public: its slug may be used again,
    at once. The row keeps a placeholder slug until the purge removes it (shows.slug is
    unique, so the real slug is freed in the same transaction as its feed URL)."""
    await session.execute(delete(FeedSlug).where(FeedSlug.show_id == show_id))
    await session.execute(
        update(Show)
        .where(Show.id == show_id)
        .values(slug=f"purging-{show_id.hex}", deleted_at=utcnow(), purge_after=utcnow())
        .execution_options(synchronize_session=False)
    )
