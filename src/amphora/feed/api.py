"""Private feed API: subscribers (premium feeds), the creator's feed check, and OPML."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import anyio
from fastapi import APIRouter, Query, status
from fastapi.responses import Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, EmailStr, Field
from sqlalchemy import func, select

from amphora.account.deps import Reader
from amphora.account.schemas import Input
from amphora.delivery.urls import feed_url, private_feed_url
from amphora.deps import RuntimeDep, SessionDep
from amphora.feed import subscribers as service
from amphora.feed.builder import assemble
from amphora.feed.loader import load_feed
from amphora.feed.opml import build_opml
from amphora.feed.pings import ping_history
from amphora.feed.rules import check_feed
from amphora.kit.clock import utcnow
from amphora.kit.openapi import errors
from amphora.kit.pagination import Page, decode_cursor, encode_cursor
from amphora.models import Episode, Show, ShowMember
from amphora.show.deps import ShowEditor, ShowViewer

router = APIRouter(tags=["feeds"])


# --- subscribers ------------------------------------------------------------------------------


class SubscriberCreate(Input):
    name: Annotated[str, Field(min_length=1, max_length=255)]
    email: EmailStr | None = None
    expires_at: AwareDatetime | None = Field(None, description="After this, the feed is 404.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"name": "Grace Hopper", "email": "grace@example.com", "expires_at": None}]
        }
    )


class SubscriberRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    email: str | None
    token_prefix: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class SubscriberCreated(SubscriberRead):
    token: str = Field(description="Shown once; only a hash is kept.")
    feed_url: str = Field(description="The subscriber's private feed URL. Shown once.")


@router.post(
    "/shows/{show_id}/subscribers",
    status_code=status.HTTP_201_CREATED,
    response_model=SubscriberCreated,
    responses=errors(401, 403, 404, 422),
)
async def create_subscriber(
    data: SubscriberCreate, access: ShowEditor, session: SessionDep, runtime: RuntimeDep
) -> SubscriberCreated:
    """Issue a private feed with the premium episodes (marked `itunes:block`)."""
    subscriber, token = await service.create_subscriber(
        session,
        show=access.show,
        name=data.name,
        email=str(data.email) if data.email else None,
        expires_at=data.expires_at,
    )
    return SubscriberCreated(
        **SubscriberRead.model_validate(subscriber).model_dump(),
        token=token,
        feed_url=private_feed_url(runtime.settings.base_url, access.show.slug, token),
    )


@router.get(
    "/shows/{show_id}/subscribers",
    response_model=Page[SubscriberRead],
    responses=errors(401, 403, 404),
)
async def list_subscribers(
    access: ShowEditor,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: str | None = None,
) -> Page[SubscriberRead]:
    """Subscribers, newest first (tokens are never shown again)."""
    fingerprint = f"subscribers:{access.show.id}"
    offset = decode_cursor(cursor, fingerprint)
    rows = await service.list_subscribers(session, show=access.show, offset=offset, limit=limit + 1)
    more = len(rows) > limit
    return Page(
        items=[SubscriberRead.model_validate(row) for row in rows[:limit]],
        next_cursor=encode_cursor(offset + limit, fingerprint) if more else None,
    )


@router.delete(
    "/shows/{show_id}/subscribers/{subscriber_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(401, 403, 404),
)
async def revoke_subscriber(
    subscriber_id: uuid.UUID, access: ShowEditor, session: SessionDep
) -> Response:
    """Revoke a subscriber: their private feed and premium files answer 404 from now on."""
    await service.revoke_subscriber(session, show=access.show, subscriber_id=subscriber_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- feed check -------------------------------------------------------------------------------


class ProblemRead(BaseModel):
    code: str
    severity: Literal["error", "warning"]
    message: str
    hint: str
    where: str


class FeedCheck(BaseModel):
    feed_url: str
    ok: bool = Field(description="No errors (warnings may remain).")
    errors: int
    warnings: int
    problems: list[ProblemRead]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "feed_url": "https://podcasts.example.com/feeds/the-lighthouse-hour.xml",
                    "ok": False,
                    "errors": 1,
                    "warnings": 0,
                    "problems": [
                        {
                            "code": "channel.no_category",
                            "severity": "error",
                            "message": "The show has no Apple Podcasts category.",
                            "hint": "Choose a category in the show settings.",
                            "where": "channel",
                        }
                    ],
                }
            ]
        }
    )


@router.get(
    "/shows/{show_id}/feed/check", response_model=FeedCheck, responses=errors(401, 403, 404)
)
async def check_show_feed(
    access: ShowViewer, session: SessionDep, runtime: RuntimeDep
) -> FeedCheck:
    """Check the current public feed against Apple's, PSP-1 and Podcasting 2.0 rules, plus
    catalog problems a feed cannot show (published episodes left out for lack of audio)."""
    show = access.show
    loaded = await load_feed(session, runtime.settings, show)
    found = await anyio.to_thread.run_sync(  # megabytes of XML for a big show: off the loop
        lambda: check_feed(assemble(loaded.channel, loaded.items, loaded.live_items))
    )
    problems = [ProblemRead(**vars(problem)) for problem in found]
    silent = await session.scalar(
        select(func.count())
        .select_from(Episode)
        .where(
            Episode.show_id == show.id,
            Episode.deleted_at.is_(None),
            Episode.publish_at <= utcnow(),
            Episode.media_id.is_(None),
            Episode.live.is_(None),
        )
    )
    if silent:
        problems.append(
            ProblemRead(
                code="catalog.episode_without_audio",
                severity="error",
                message=f"{silent} published episode(s) have no audio and are not in the feed.",
                hint="Upload the audio of each published episode, or move it back to drafts.",
                where="catalog",
            )
        )
    errors_found = sum(1 for p in problems if p.severity == "error")
    return FeedCheck(
        feed_url=feed_url(runtime.settings.base_url, show.slug),
        ok=errors_found == 0,
        errors=errors_found,
        warnings=len(problems) - errors_found,
        problems=problems,
    )


# --- pings ----------------------------------------------------------------------------------


class PingRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    target: str = Field(description="websub, podcastindex or podping")
    endpoint: str
    feed_url: str
    reason: str
    attempt: int
    status_code: int | None
    ok: bool
    error: str | None
    at: datetime


@router.get(
    "/shows/{show_id}/feed/pings", response_model=list[PingRead], responses=errors(401, 404)
)
async def feed_pings(
    access: ShowViewer,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[PingRead]:
    """The latest attempts to tell aggregators about feed changes, newest first."""
    rows = await ping_history(session, access.show.id, limit=limit)
    return [PingRead.model_validate(row) for row in rows]


# --- OPML -------------------------------------------------------------------------------------


@router.get(
    "/users/me/opml",
    response_class=Response,
    responses={200: {"content": {"text/x-opml": {}}, "description": "OPML 2.0"}, **errors(401)},
)
async def my_opml(auth: Reader, session: SessionDep, runtime: RuntimeDep) -> Response:
    """The feeds of every show you are on the team of, as OPML (for any podcast app)."""
    shows = await session.scalars(
        select(Show)
        .join(ShowMember, ShowMember.show_id == Show.id)
        .where(ShowMember.user_id == auth.user.id, Show.deleted_at.is_(None))
        .order_by(Show.title, Show.id)
    )
    base = runtime.settings.base_url
    body = build_opml(
        f"Shows of {auth.user.display_name or auth.user.email}",
        [(show.title, feed_url(base, show.slug), show.link) for show in shows],
    )
    return Response(
        body,
        media_type="text/x-opml; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="amphora-shows.opml"'},
    )
