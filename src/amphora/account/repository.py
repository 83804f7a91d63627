"""Queries of the accounts domain."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from amphora.models import AccessToken, OneTimeToken, TokenKind, User, UserEmail


async def user_by_email(session: AsyncSession, email: str) -> User | None:
    return await session.scalar(select(User).where(User.email == email))


async def email_in_use(session: AsyncSession, email: str) -> bool:
    query = select(
        exists().where(or_(User.email == email, User.pending_email == email))
        | exists().where(UserEmail.email == email)
    )
    return bool(await session.scalar(query))


async def token_with_user(
    session: AsyncSession, token_hash: str, now: datetime
) -> tuple[AccessToken, User] | None:
    query = (
        select(AccessToken, User)
        .join(User, User.id == AccessToken.user_id)
        .where(
            AccessToken.token_hash == token_hash,
            AccessToken.revoked_at.is_(None),
            or_(AccessToken.expires_at.is_(None), AccessToken.expires_at > now),
        )
    )
    row = (await session.execute(query)).first()
    return (row[0], row[1]) if row else None


async def one_time_token(session: AsyncSession, token_hash: str) -> OneTimeToken | None:
    return await session.scalar(select(OneTimeToken).where(OneTimeToken.token_hash == token_hash))


async def expire_one_time_tokens(
    session: AsyncSession, *, user_id: uuid.UUID, purpose: str, email: str | None, now: datetime
) -> None:
    query = update(OneTimeToken).where(
        OneTimeToken.user_id == user_id,
        OneTimeToken.purpose == purpose,
        OneTimeToken.used_at.is_(None),
    )
    if email is not None:
        query = query.where(OneTimeToken.email == email)
    await session.execute(query.values(used_at=now))


async def revoke_tokens(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    now: datetime,
    kind: TokenKind | None = None,
    keep: uuid.UUID | None = None,
) -> None:
    query = update(AccessToken).where(
        AccessToken.user_id == user_id, AccessToken.revoked_at.is_(None)
    )
    if kind is not None:
        query = query.where(AccessToken.kind == kind)
    if keep is not None:
        query = query.where(AccessToken.id != keep)
    await session.execute(query.values(revoked_at=now))


async def personal_tokens(
    session: AsyncSession, user_id: uuid.UUID, now: datetime
) -> Sequence[AccessToken]:
    query = (
        select(AccessToken)
        .where(
            AccessToken.user_id == user_id,
            AccessToken.kind == TokenKind.personal,
            AccessToken.revoked_at.is_(None),
            or_(AccessToken.expires_at.is_(None), AccessToken.expires_at > now),
        )
        .order_by(AccessToken.created_at.desc())
    )
    return (await session.scalars(query)).all()


async def secondary_emails(session: AsyncSession, user_id: uuid.UUID) -> Sequence[UserEmail]:
    query = select(UserEmail).where(UserEmail.user_id == user_id).order_by(UserEmail.created_at)
    return (await session.scalars(query)).all()


async def count_secondary_emails(session: AsyncSession, user_id: uuid.UUID) -> int:
    return int(
        await session.scalar(
            select(func.count()).select_from(UserEmail).where(UserEmail.user_id == user_id)
        )
        or 0
    )


async def verified_secondary(session: AsyncSession, email: str) -> tuple[UserEmail, User] | None:
    query = (
        select(UserEmail, User)
        .join(User, User.id == UserEmail.user_id)
        .where(UserEmail.email == email, UserEmail.verified_at.is_not(None))
    )
    row = (await session.execute(query)).first()
    return (row[0], row[1]) if row else None


async def search_users(
    session: AsyncSession, *, q: str | None, limit: int, offset: int
) -> tuple[Sequence[User], int]:
    query = select(User)
    if q:
        escaped = q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        query = query.where(
            or_(
                func.lower(User.email).like(pattern, escape="\\"),
                func.lower(User.display_name).like(pattern, escape="\\"),
            )
        )
    total = int(await session.scalar(select(func.count()).select_from(query.subquery())) or 0)
    rows = await session.scalars(query.order_by(User.created_at.desc()).limit(limit).offset(offset))
    return rows.all(), total


async def delete_spent_tokens(session: AsyncSession, *, cutoff: datetime) -> int:
    one_time = await session.execute(
        delete(OneTimeToken).where(
            or_(OneTimeToken.used_at < cutoff, OneTimeToken.expires_at < cutoff)
        )
    )
    access = await session.execute(
        delete(AccessToken).where(
            or_(AccessToken.revoked_at < cutoff, AccessToken.expires_at < cutoff)
        )
    )
    return int(one_time.rowcount or 0) + int(access.rowcount or 0)  # type: ignore[attr-defined]
