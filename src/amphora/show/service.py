"""Business rules of shows: access by role, create/update/delete/restore, team, series."""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from amphora.account import repository as accounts
from amphora.account.errors import EmailNotVerified
from amphora.delivery.urls import feed_url
from amphora.feed.guid import podcast_guid
from amphora.kit.clock import utcnow
from amphora.kit.errors import AmphoraError, Conflict, Forbidden, NotFound
from amphora.kit.html import sanitize_html
from amphora.models import Episode, FeedSlug, Role, Series, Show, ShowMember, User
from amphora.show.schemas import (
    MemberCreate,
    MemberUpdate,
    SeriesCreate,
    SeriesUpdate,
    ShowCreate,
    ShowFields,
)
from amphora.show.search import index_show

SLUG_MAX = 80


class PreconditionFailed(AmphoraError):
    status_code = 412
    code = "precondition_failed"
    message = "The resource changed since you read it; fetch it again and retry."


class SlugTaken(Conflict):
    code = "slug_taken"
    message = "Another show already uses this slug."


class InsufficientRole(Forbidden):
    code = "insufficient_role"


@dataclass(frozen=True)
class ShowAccess:
    show: Show
    role: Role


# --- access: the one permission check every route uses ------------------------------------------


async def show_access(
    session: AsyncSession,
    *,
    show_id: uuid.UUID,
    user: User,
    minimum: Role,
    deleted: bool = False,
) -> ShowAccess:
    """The show and the caller's role. Unknown shows and shows of others are both 404;
    a member whose role is too low gets 403."""
    row = (
        await session.execute(
            select(Show, ShowMember.role)
            .join(ShowMember, ShowMember.show_id == Show.id)
            .where(Show.id == show_id, ShowMember.user_id == user.id)
        )
    ).first()
    if row is None or (row[0].deleted_at is not None) != deleted:
        raise NotFound("No such show.")
    role = Role(row[1])
    if role.rank < minimum.rank:
        raise InsufficientRole(f"This needs the {minimum.value} role on the show.")
    return ShowAccess(show=row[0], role=role)


def check_version(current: int, if_match: str | None) -> None:
    """Optimistic concurrency: a stale ``If-Match`` ETag refuses the change."""
    if if_match is None or if_match.strip() == "*":
        return
    tags = {tag.strip().removeprefix("W/") for tag in if_match.split(",")}
    if f'"{current}"' not in tags:
        raise PreconditionFailed


def etag(version: int) -> str:
    return f'"{version}"'


# --- shows ----------------------------------------------------------------------------------------


def slugify(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:SLUG_MAX].strip("-")
    return slug or "show"


async def _free_slug(session: AsyncSession, wanted: str) -> str:
    """The title's slug, or with -2, -3, … appended when taken (now or ever: feed URLs of
    renamed and purged shows stay reserved)."""
    taken = set(
        await session.scalars(
            select(FeedSlug.slug).where(
                or_(FeedSlug.slug == wanted, FeedSlug.slug.like(f"{wanted}-%"))
            )
        )
    )
    if wanted not in taken:
        return wanted
    n = 2
    while f"{wanted}-{n}"[:SLUG_MAX] in taken:
        n += 1
    return f"{wanted[: SLUG_MAX - len(str(n)) - 1]}-{n}"


def _plain(fields: ShowFields) -> dict[str, Any]:
    """The given fields as JSON-ready values, HTML sanitised."""
    values = fields.model_dump(mode="json", exclude_unset=True)
    if values.get("description") is not None:
        values["description"] = sanitize_html(values["description"])
    return values


async def _slug_available(session: AsyncSession, slug: str, show_id: uuid.UUID | None) -> bool:
    """Free, or already this show's own (a show may take back one of its old slugs)."""
    holder = await session.get(FeedSlug, slug)
    return holder is None or (show_id is not None and holder.show_id == show_id)


async def create_show(
    session: AsyncSession, *, user: User, data: ShowCreate, base_url: str
) -> ShowAccess:
    if not user.is_verified:
        raise EmailNotVerified("Verify your email address before creating a show.")
    values = _plain(data)
    wanted = values.pop("slug", None)
    if wanted is not None and not await _slug_available(session, wanted, None):
        raise SlugTaken
    slug = wanted or await _free_slug(session, slugify(data.title))
    values.setdefault("author", user.display_name)
    values.setdefault("owner_name", user.display_name)
    values.setdefault("owner_email", user.email)
    show = Show(owner_id=user.id, slug=slug, **values)
    # Assigned once from the canonical feed URL, never recomputed (STANDARDS §3).
    show.podcast_guid = podcast_guid(feed_url(base_url, slug))
    session.add(show)
    await session.flush()
    session.add(FeedSlug(slug=slug, show_id=show.id))
    session.add(ShowMember(show_id=show.id, user_id=user.id, role=Role.admin))
    await index_show(session, show)
    await session.flush()
    return ShowAccess(show=show, role=Role.admin)


async def update_show(
    session: AsyncSession, *, access: ShowAccess, data: ShowFields, if_match: str | None
) -> Show:
    show = access.show
    check_version(show.version, if_match)
    values = _plain(data)
    if "title" in values and values["title"] is None:
        raise AmphoraError("A show needs a title.", code="validation_error", status_code=422)
    new_slug = values.get("slug")
    if new_slug and new_slug != show.slug:
        if not await _slug_available(session, new_slug, show.id):
            raise SlugTaken
        # The old slug keeps answering (301 to the new feed URL).
        if await session.get(FeedSlug, new_slug) is None:
            session.add(FeedSlug(slug=new_slug, show_id=show.id))
    for field, value in values.items():
        setattr(show, field, value)
    show.version += 1
    await index_show(session, show)
    await session.flush()
    return show


async def list_shows(
    session: AsyncSession, *, user: User, q: str | None, offset: int, limit: int
) -> list[tuple[Show, Role]]:
    query = (
        select(Show, ShowMember.role)
        .join(ShowMember, ShowMember.show_id == Show.id)
        .where(ShowMember.user_id == user.id, Show.deleted_at.is_(None))
    )
    if q:
        query = query.where(func.lower(Show.title).contains(q.lower(), autoescape=True))
    rows = await session.execute(
        query.order_by(Show.created_at.desc(), Show.id).offset(offset).limit(limit)
    )
    return [(show, Role(role)) for show, role in rows.all()]


async def delete_show(session: AsyncSession, *, access: ShowAccess, grace_days: int) -> Show:
    """Into the trash with its live episodes; purged for good after the grace period."""
    now = utcnow()
    show = access.show
    show.deleted_at, show.purge_after = now, now + timedelta(days=grace_days)
    show.version += 1
    await session.execute(
        update(Episode)
        .where(Episode.show_id == show.id, Episode.deleted_at.is_(None))
        .values(deleted_at=now, purge_after=show.purge_after, deleted_with_show=True)
    )
    await session.flush()
    return show


async def restore_show(session: AsyncSession, *, access: ShowAccess) -> Show:
    show = access.show
    show.deleted_at = show.purge_after = None
    show.version += 1
    await session.execute(
        update(Episode)
        .where(Episode.show_id == show.id, Episode.deleted_with_show.is_(True))
        .values(deleted_at=None, purge_after=None, deleted_with_show=False)
    )
    await session.flush()
    return show


# --- team -----------------------------------------------------------------------------------------


async def list_members(session: AsyncSession, *, show: Show) -> list[tuple[ShowMember, User]]:
    rows = await session.execute(
        select(ShowMember, User)
        .join(User, User.id == ShowMember.user_id)
        .where(ShowMember.show_id == show.id)
        .order_by(ShowMember.created_at)
    )
    return [(member, user) for member, user in rows.all()]


async def add_member(
    session: AsyncSession, *, show: Show, data: MemberCreate
) -> tuple[ShowMember, User]:
    user = await accounts.user_by_email(session, data.email)
    if user is None or not user.is_active:
        raise AmphoraError(
            "There is no account with this email address; ask them to sign up first.",
            code="unknown_user",
            status_code=422,
        )
    existing = await session.scalar(
        select(ShowMember).where(ShowMember.show_id == show.id, ShowMember.user_id == user.id)
    )
    if existing is not None:
        raise Conflict("This person is already on the team.", code="already_member")
    member = ShowMember(show_id=show.id, user_id=user.id, role=data.role)
    session.add(member)
    await session.flush()
    return member, user


async def _member(session: AsyncSession, show: Show, user_id: uuid.UUID) -> tuple[ShowMember, User]:
    row = (
        await session.execute(
            select(ShowMember, User)
            .join(User, User.id == ShowMember.user_id)
            .where(ShowMember.show_id == show.id, ShowMember.user_id == user_id)
        )
    ).first()
    if row is None:
        raise NotFound("No such team member.")
    return row[0], row[1]


async def update_member(
    session: AsyncSession, *, show: Show, user_id: uuid.UUID, data: MemberUpdate
) -> tuple[ShowMember, User]:
    member, user = await _member(session, show, user_id)
    if user_id == show.owner_id and data.role != Role.admin:
        raise Conflict("The owner stays an admin.", code="owner_is_admin")
    member.role = data.role
    await session.flush()
    return member, user


async def remove_member(session: AsyncSession, *, show: Show, user_id: uuid.UUID) -> None:
    member, _ = await _member(session, show, user_id)
    if user_id == show.owner_id:
        raise Conflict("The owner cannot be removed from the show.", code="owner_is_admin")
    await session.delete(member)
    await session.flush()


# --- series ---------------------------------------------------------------------------------------


async def list_series(session: AsyncSession, *, show: Show) -> Sequence[Series]:
    query = select(Series).where(Series.show_id == show.id).order_by(Series.position, Series.name)
    return (await session.scalars(query)).all()


async def _series_name_free(session: AsyncSession, show: Show, name: str) -> None:
    if await session.scalar(
        select(Series.id).where(Series.show_id == show.id, Series.name == name)
    ):
        raise Conflict("This show already has a series with that name.", code="series_exists")


async def create_series(session: AsyncSession, *, show: Show, data: SeriesCreate) -> Series:
    await _series_name_free(session, show, data.name)
    series = Series(show_id=show.id, **data.model_dump())
    session.add(series)
    show.version += 1
    await session.flush()
    return series


async def get_series(session: AsyncSession, *, show: Show, series_id: uuid.UUID) -> Series:
    series = await session.get(Series, series_id)
    if series is None or series.show_id != show.id:
        raise NotFound("No such series.")
    return series


async def update_series(
    session: AsyncSession, *, show: Show, series_id: uuid.UUID, data: SeriesUpdate
) -> Series:
    series = await get_series(session, show=show, series_id=series_id)
    values = data.model_dump(exclude_unset=True, exclude_none=True)
    if "name" in values and values["name"] != series.name:
        await _series_name_free(session, show, values["name"])
    for field, value in values.items():
        setattr(series, field, value)
    show.version += 1
    await session.flush()
    return series


async def delete_series(session: AsyncSession, *, show: Show, series_id: uuid.UUID) -> None:
    """Its episodes stay, outside any series."""
    series = await get_series(session, show=show, series_id=series_id)
    await session.execute(
        update(Episode).where(Episode.series_id == series.id).values(series_id=None)
    )
    await session.delete(series)
    show.version += 1
    await session.flush()
