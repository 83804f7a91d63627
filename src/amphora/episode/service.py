"""Business rules of episodes: access through the show's roles, numbering, scheduling,
filters, deletion with a grace period, transcripts and chapters."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from amphora.episode.companions import validate_chapters, validate_transcript
from amphora.episode.schemas import EpisodeCreate, EpisodeFields, Status
from amphora.kit.clock import utcnow
from amphora.kit.db import new_id
from amphora.kit.errors import AmphoraError, Conflict, NotFound
from amphora.kit.html import sanitize_html
from amphora.kit.storage import Storage
from amphora.models import Episode, MediaFile, Role, Series, Show, Transcript, User
from amphora.show.search import index_episode, index_new_episodes
from amphora.show.service import ShowAccess, check_version, show_access

Sort = Literal["-published", "published", "-created", "created", "number", "-number", "title"]


@dataclass(frozen=True)
class EpisodeAccess:
    episode: Episode
    show: Show
    role: Role


def status_of(episode: Episode, now: datetime | None = None) -> Status:
    if episode.publish_at is None:
        return "draft"
    return "scheduled" if episode.publish_at > (now or utcnow()) else "published"


async def episode_access(
    session: AsyncSession,
    *,
    episode_id: uuid.UUID,
    user: User,
    minimum: Role,
    deleted: bool = False,
) -> EpisodeAccess:
    episode = await session.get(Episode, episode_id)
    if episode is None or (episode.deleted_at is not None) != deleted:
        raise NotFound("No such episode.")
    try:
        access = await show_access(session, show_id=episode.show_id, user=user, minimum=minimum)
    except NotFound:
        raise NotFound("No such episode.") from None
    return EpisodeAccess(episode=episode, show=access.show, role=access.role)


# --- create / update ------------------------------------------------------------------------------


def field_values(data: EpisodeFields) -> dict[str, Any]:
    """The given fields as column values (JSON-ready structures, HTML sanitised)."""
    values = data.model_dump(mode="json", exclude_unset=True)
    for key in ("number", "publish_at", "series_id"):  # keep real types for these columns
        if key in values:
            values[key] = getattr(data, key)
    if values.get("description") is not None:
        values["description"] = sanitize_html(values["description"])
    return values


async def _check_series(session: AsyncSession, show: Show, series_id: uuid.UUID | None) -> None:
    if series_id is None:
        return
    series = await session.get(Series, series_id)
    if series is None or series.show_id != show.id:
        raise AmphoraError("No such series in this show.", code="unknown_series", status_code=422)


async def _check_guid(
    session: AsyncSession, show: Show, guid: str, episode_id: uuid.UUID | None
) -> None:
    query = select(Episode.id).where(Episode.show_id == show.id, Episode.guid == guid)
    found = await session.scalar(query)
    if found is not None and found != episode_id:
        raise Conflict("Another episode of this show has this guid.", code="guid_taken")


def _check_serial(show: Show, episode: Episode) -> None:
    if show.show_type == "serial" and episode.publish_at is not None and episode.number is None:
        raise AmphoraError(
            "Episodes of a serial show need a number before they are scheduled or published.",
            code="number_required",
            status_code=422,
        )


async def create_episode(
    session: AsyncSession, *, access: ShowAccess, data: EpisodeCreate
) -> Episode:
    (episode,) = await create_episodes(session, access=access, data=[data])
    return episode


async def create_episodes(
    session: AsyncSession, *, access: ShowAccess, data: Sequence[EpisodeCreate]
) -> list[Episode]:
    """New episodes of one show in one write: one guid check, one insert batch, one index
    batch (an import brings hundreds at once)."""
    show = access.show
    rows = [field_values(item) for item in data]
    for values in rows:
        values["guid"] = values.get("guid") or str(uuid.uuid4())
    guids = [values["guid"] for values in rows]
    taken = await session.scalar(
        select(Episode.id).where(Episode.show_id == show.id, Episode.guid.in_(guids)).limit(1)
    )
    if taken is not None or len(set(guids)) < len(guids):
        raise Conflict("Another episode of this show has this guid.", code="guid_taken")
    for series_id in {values["series_id"] for values in rows if values.get("series_id")}:
        await _check_series(session, show, series_id)
    episodes = [Episode(id=new_id(), show_id=show.id, **values) for values in rows]
    for episode in episodes:
        _check_serial(show, episode)
    session.add_all(episodes)
    show.version += 1
    await session.flush()
    await index_new_episodes(session, episodes)
    return episodes


async def update_episode(
    session: AsyncSession, *, access: EpisodeAccess, data: EpisodeFields, if_match: str | None
) -> Episode:
    episode, show = access.episode, access.show
    check_version(episode.version, if_match)
    values = field_values(data)
    if "title" in values and values["title"] is None:
        raise AmphoraError("An episode needs a title.", code="validation_error", status_code=422)
    new_guid = values.get("guid")
    if new_guid is not None and new_guid != episode.guid:
        if status_of(episode) == "published":
            raise Conflict(
                "The guid of a published episode never changes (apps would list it twice).",
                code="guid_immutable",
            )
        await _check_guid(session, show, new_guid, episode.id)
    elif "guid" in values:
        values.pop("guid")
    if "series_id" in values:
        await _check_series(session, show, values["series_id"])
    for field, value in values.items():
        setattr(episode, field, value)
    _check_serial(show, episode)
    episode.version += 1
    show.version += 1
    await session.flush()
    await index_episode(session, episode)
    return episode


# --- listing --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EpisodeFilters:
    q: str | None = None
    series_id: uuid.UUID | None = None
    season: int | None = None
    episode_type: str | None = None
    status: str | None = None
    published_after: datetime | None = None
    published_before: datetime | None = None

    def fingerprint(self) -> str:
        return repr(self)


def conditions(filters: EpisodeFilters) -> list[Any]:
    """The filters as conditions on ``Episode`` (shared by the list and search)."""
    now = utcnow()
    where: list[Any] = []
    if filters.q:
        where.append(func.lower(Episode.title).contains(filters.q.lower(), autoescape=True))
    if filters.series_id is not None:
        where.append(Episode.series_id == filters.series_id)
    if filters.season is not None:
        where.append(Episode.season == filters.season)
    if filters.episode_type is not None:
        where.append(Episode.episode_type == filters.episode_type)
    if filters.status == "draft":
        where.append(Episode.publish_at.is_(None))
    elif filters.status == "scheduled":
        where.append(Episode.publish_at > now)
    elif filters.status == "published":
        where.append(Episode.publish_at <= now)
    if filters.published_after is not None:
        where.append(Episode.publish_at >= filters.published_after)
    if filters.published_before is not None:
        where.append(Episode.publish_at < filters.published_before)
    return where


def filtered(show_ids: Sequence[uuid.UUID], filters: EpisodeFilters) -> Select[Any]:
    """Live episodes of these shows matching the filters."""
    return select(Episode).where(
        Episode.show_id.in_(show_ids), Episode.deleted_at.is_(None), *conditions(filters)
    )


_ORDER = {
    "-published": (Episode.publish_at.desc().nulls_first(), Episode.id.desc()),
    "published": (Episode.publish_at.asc().nulls_last(), Episode.id.asc()),
    "-created": (Episode.id.desc(),),  # UUIDv7: creation order
    "created": (Episode.id.asc(),),
    "number": (Episode.season.asc().nulls_first(), Episode.number.asc().nulls_last(), Episode.id),
    "-number": (Episode.season.desc().nulls_last(), Episode.number.desc().nulls_last(), Episode.id),
    "title": (Episode.title.asc(), Episode.id),
}


async def list_episodes(
    session: AsyncSession,
    *,
    show: Show,
    filters: EpisodeFilters,
    sort: Sort,
    offset: int,
    limit: int,
) -> Sequence[Any]:
    """Plain rows (attribute access like an ``Episode``): a page is only read, and skipping the
    ORM's identity map for 50 wide rows is a large part of the request's time."""
    query = (
        filtered([show.id], filters)
        .with_only_columns(*Episode.__table__.columns)
        .order_by(*_ORDER[sort])
        .offset(offset)
        .limit(limit)
    )
    return (await session.execute(query)).all()


async def next_numbers(session: AsyncSession, *, show: Show) -> list[tuple[int | None, int]]:
    """Per season (None: episodes without a season), the number after the highest used."""
    rows = await session.execute(
        select(Episode.season, func.max(Episode.number))
        .where(Episode.show_id == show.id, Episode.deleted_at.is_(None))
        .group_by(Episode.season)
        .order_by(Episode.season.asc().nulls_first())
    )
    result = [(season, int(Decimal(highest or 0)) + 1) for season, highest in rows.all()]
    return result or [(None, 1)]


# --- trash ----------------------------------------------------------------------------------------


async def delete_episode(
    session: AsyncSession, *, access: EpisodeAccess, grace_days: int
) -> Episode:
    now = utcnow()
    episode = access.episode
    episode.deleted_at, episode.purge_after = now, now + timedelta(days=grace_days)
    episode.deleted_with_show = False
    episode.version += 1
    access.show.version += 1
    await session.flush()
    return episode


async def restore_episode(session: AsyncSession, *, access: EpisodeAccess) -> Episode:
    if access.episode.deleted_with_show:
        raise Conflict("Restore the show: this episode was deleted with it.", code="show_deleted")
    if access.episode.guid and await session.scalar(
        select(Episode.id).where(
            Episode.show_id == access.show.id,
            Episode.guid == access.episode.guid,
            Episode.id != access.episode.id,
            Episode.deleted_at.is_(None),
        )
    ):
        raise Conflict("Another episode now uses this guid.", code="guid_taken")
    episode = access.episode
    episode.deleted_at = episode.purge_after = None
    episode.version += 1
    access.show.version += 1
    await session.flush()
    return episode


async def trash(
    session: AsyncSession, *, user: User
) -> tuple[list[Show], list[tuple[Episode, Show]]]:
    """Deleted shows the caller administers, and deleted episodes of shows they edit."""
    from amphora.models import ShowMember

    shows = await session.scalars(
        select(Show)
        .join(ShowMember, ShowMember.show_id == Show.id)
        .where(
            ShowMember.user_id == user.id,
            ShowMember.role == Role.admin,
            Show.deleted_at.is_not(None),
        )
        .order_by(Show.purge_after)
    )
    episodes = await session.execute(
        select(Episode, Show)
        .join(Show, Show.id == Episode.show_id)
        .join(ShowMember, ShowMember.show_id == Show.id)
        .where(
            ShowMember.user_id == user.id,
            ShowMember.role.in_([Role.admin, Role.editor]),
            Show.deleted_at.is_(None),
            Episode.deleted_at.is_not(None),
        )
        .order_by(Episode.purge_after)
    )
    return list(shows), [(e, s) for e, s in episodes.all()]


# --- transcripts and chapters ---------------------------------------------------------------------


async def add_transcript(
    session: AsyncSession,
    storage: Storage,
    *,
    access: EpisodeAccess,
    data: bytes,
    declared: str | None,
    filename: str | None,
    language: str | None,
    captions: bool,
) -> Transcript:
    valid = validate_transcript(data, declared=declared, filename=filename)
    transcript_id = new_id()
    key = f"transcripts/{access.episode.id}/{transcript_id}.{valid.extension}"
    await storage.write_bytes(key, valid.data, content_type=valid.content_type)
    try:
        transcript = Transcript(
            id=transcript_id,
            episode_id=access.episode.id,
            storage_key=key,
            content_type=valid.content_type,
            extension=valid.extension,
            language=language,
            captions=captions,
            size=len(valid.data),
        )
        session.add(transcript)
        access.episode.version += 1
        access.show.version += 1
        await session.flush()
    except BaseException:
        await storage.delete(key)
        raise
    return transcript


async def transcripts_of(
    session: AsyncSession, episode_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[Transcript]]:
    result: dict[uuid.UUID, list[Transcript]] = {i: [] for i in episode_ids}
    if episode_ids:
        rows = await session.scalars(
            select(Transcript)
            .where(Transcript.episode_id.in_(episode_ids))
            .order_by(Transcript.created_at)
        )
        for row in rows:
            result[row.episode_id].append(row)
    return result


async def delete_transcript(
    session: AsyncSession, storage: Storage, *, access: EpisodeAccess, transcript_id: uuid.UUID
) -> None:
    transcript = await session.get(Transcript, transcript_id)
    if transcript is None or transcript.episode_id != access.episode.id:
        raise NotFound("No such transcript.")
    key = transcript.storage_key
    await session.delete(transcript)
    access.episode.version += 1
    access.show.version += 1
    await session.flush()
    await storage.delete(key)


async def set_chapters(
    session: AsyncSession, *, access: EpisodeAccess, document: Any
) -> dict[str, Any]:
    media = (
        await session.get(MediaFile, access.episode.media_id) if access.episode.media_id else None
    )
    chapters = validate_chapters(document, duration_s=media.duration_s if media else None)
    access.episode.chapters = chapters
    access.episode.version += 1
    access.show.version += 1
    await session.flush()
    return chapters


async def clear_chapters(session: AsyncSession, *, access: EpisodeAccess) -> None:
    access.episode.chapters = None
    access.episode.version += 1
    access.show.version += 1
    await session.flush()
