"""Subscribers of a show: private feed URLs with the premium episodes, revocable one by one."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from amphora.kit.clock import utcnow
from amphora.kit.errors import NotFound
from amphora.kit.security import hash_token, new_token
from amphora.models import Show, Subscriber

TOKEN_PREFIX = "sub_"  # noqa: S105 (a prefix, not a secret)


async def create_subscriber(
    session: AsyncSession,
    *,
    show: Show,
    name: str,
    email: str | None,
    expires_at: datetime | None,
) -> tuple[Subscriber, str]:
    """The new subscriber and its secret token (shown once; only its hash is kept)."""
    token = new_token(TOKEN_PREFIX)
    subscriber = Subscriber(
        show_id=show.id,
        name=name,
        email=email,
        expires_at=expires_at,
        token_hash=hash_token(token),
        token_prefix=token[: len(TOKEN_PREFIX) + 4],
    )
    session.add(subscriber)
    await session.flush()
    return subscriber, token


async def list_subscribers(
    session: AsyncSession, *, show: Show, offset: int, limit: int
) -> list[Subscriber]:
    rows = await session.scalars(
        select(Subscriber)
        .where(Subscriber.show_id == show.id)
        .order_by(Subscriber.created_at.desc(), Subscriber.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return list(rows)


async def revoke_subscriber(
    session: AsyncSession, *, show: Show, subscriber_id: uuid.UUID
) -> Subscriber:
    subscriber = await session.get(Subscriber, subscriber_id)
    if subscriber is None or subscriber.show_id != show.id:
        raise NotFound("No such subscriber.")
    if subscriber.revoked_at is None:
        subscriber.revoked_at = utcnow()
        await session.flush()
    return subscriber
