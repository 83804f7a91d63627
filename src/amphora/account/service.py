"""Business rules of accounts. Services flush, never commit; the caller's unit of work commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession

from amphora.account import repository as repo
from amphora.account.errors import (
    AccountDisabled,
    EmailTaken,
    InvalidCredentials,
    InvalidToken,
    TooManyEmails,
    WeakPassword,
    WrongCurrentPassword,
)
from amphora.account.schemas import (
    AdminUserUpdate,
    RegisterIn,
    TokenCreate,
    UserUpdate,
)
from amphora.kit.clock import utcnow
from amphora.kit.errors import AmphoraError, NotFound
from amphora.kit.mail import queue_mail
from amphora.kit.ratelimit import RateLimiter
from amphora.kit.security import hash_password, hash_token, new_token, verify_password

__all__ = ["hash_password"]
from amphora.models import AccessToken, OneTimeToken, TokenKind, TokenPurpose, User, UserEmail
from amphora.settings import Settings

LINK_TTL = timedelta(hours=24)
RESET_TTL = timedelta(hours=2)
MAX_SECONDARY_EMAILS = 10
SESSION_PREFIX = "amp_s_"
PERSONAL_PREFIX = "amp_pat_"
ONE_TIME_PREFIX = "amp_ot_"
VERIFY_PURPOSES = frozenset(
    {TokenPurpose.verify_email, TokenPurpose.change_email, TokenPurpose.verify_secondary}
)
# Mails an anonymous caller can trigger for one address: enough for a real person, useless for
# flooding someone's inbox.
MAILS_PER_ADDRESS = "5/hour"


@dataclass(frozen=True)
class Authenticated:
    user: User
    token: AccessToken

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(self.token.scopes)

    @property
    def is_session(self) -> bool:
        return self.token.kind == TokenKind.session


# --- passwords and one-time tokens ------------------------------------------------------------


def check_password_policy(password: str, email: str) -> None:
    """At least 10 characters (schemas enforce the length) and not built on the email's name."""
    local = email.split("@", 1)[0].lower()
    if len(local) >= 3 and local in password.lower():
        raise WeakPassword("The password must not contain the name part of your email address.")


async def _issue_one_time(
    session: AsyncSession, *, user: User, purpose: TokenPurpose, email: str, ttl: timedelta
) -> str:
    """A new single-use link token; earlier unused ones for the same purpose stop working."""
    now = utcnow()
    await repo.expire_one_time_tokens(
        session, user_id=user.id, purpose=purpose, email=email, now=now
    )
    secret = new_token(ONE_TIME_PREFIX)
    session.add(
        OneTimeToken(
            user_id=user.id,
            purpose=purpose,
            email=email,
            token_hash=hash_token(secret),
            expires_at=now + ttl,
        )
    )
    await session.flush()
    return secret


async def _consume_one_time(
    session: AsyncSession, secret: str, purposes: frozenset[TokenPurpose]
) -> tuple[OneTimeToken, User]:
    token = await repo.one_time_token(session, hash_token(secret))
    now = utcnow()
    if (
        token is None
        or token.purpose not in purposes
        or token.used_at is not None
        or token.expires_at <= now
    ):
        raise InvalidToken
    user = await session.get(User, token.user_id)
    if user is None or not user.is_active:
        raise InvalidToken
    token.used_at = now
    return token, user


def _link(settings: Settings, path: str, secret: str) -> str:
    return f"{settings.base_url}{path}?token={secret}"


async def _send_verification(
    session: AsyncSession, settings: Settings, *, user: User, email: str, purpose: TokenPurpose
) -> None:
    secret = await _issue_one_time(session, user=user, purpose=purpose, email=email, ttl=LINK_TTL)
    await queue_mail(
        session,
        to=email,
        template="verify_email",
        context={
            "display_name": user.display_name,
            "link": _link(settings, "/verify-email", secret),
            "token": secret,
            "email": email,
            "purpose": purpose.value,
            "hours": int(LINK_TTL.total_seconds() // 3600),
        },
    )


# --- registration and verification ------------------------------------------------------------


async def create_user(
    session: AsyncSession,
    *,
    email: str,
    password: str,
    display_name: str,
    is_verified: bool = False,
    is_superuser: bool = False,
) -> User:
    check_password_policy(password, email)
    if await repo.email_in_use(session, email):
        raise EmailTaken
    user = User(
        email=email,
        display_name=display_name,
        password_hash=await hash_password(password),
        is_verified=is_verified,
        email_verified_at=utcnow() if is_verified else None,
        is_superuser=is_superuser,
    )
    session.add(user)
    await session.flush()
    return user


async def register(session: AsyncSession, settings: Settings, *, data: RegisterIn) -> User:
    user = await create_user(
        session,
        email=data.email,
        password=data.password.get_secret_value(),
        display_name=data.display_name,
    )
    await _send_verification(
        session, settings, user=user, email=user.email, purpose=TokenPurpose.verify_email
    )
    return user


async def verify_email(session: AsyncSession, *, secret: str) -> User:
    """Confirms whichever address the link was sent to: sign-up, new primary, or secondary."""
    token, user = await _consume_one_time(session, secret, VERIFY_PURPOSES)
    now = utcnow()
    if token.purpose == TokenPurpose.verify_email:
        if token.email != user.email:
            raise InvalidToken
        user.is_verified = True
        user.email_verified_at = user.email_verified_at or now
    elif token.purpose == TokenPurpose.change_email:
        if user.pending_email != token.email:
            raise InvalidToken
        clash = await repo.user_by_email(session, token.email)
        if clash is not None and clash.id != user.id:
            raise EmailTaken
        user.email = token.email
        user.pending_email = None
        user.is_verified = True
        user.email_verified_at = now
    else:
        address = await _own_secondary_by_email(session, user, token.email)
        address.verified_at = address.verified_at or now
    await session.flush()
    return user


async def resend_verification(
    session: AsyncSession, settings: Settings, limiter: RateLimiter, *, email: str
) -> None:
    """Always "accepted" to the caller, whether or not the address has an account."""
    user = await repo.user_by_email(session, email)
    if user is None or user.is_verified or not user.is_active:
        return
    if not await _mail_allowance(limiter, "verify", email):
        return
    await _send_verification(
        session, settings, user=user, email=user.email, purpose=TokenPurpose.verify_email
    )


async def _mail_allowance(limiter: RateLimiter, kind: str, email: str) -> bool:
    try:
        await limiter.consume(limiter.limit(MAILS_PER_ADDRESS), f"mail:{kind}:{email}")
    except AmphoraError:
        return False
    return True


# --- passwords --------------------------------------------------------------------------------


async def forgot_password(
    session: AsyncSession, settings: Settings, limiter: RateLimiter, *, email: str
) -> None:
    user = await repo.user_by_email(session, email)
    if user is None or not user.is_active:
        return
    if not await _mail_allowance(limiter, "reset", email):
        return
    secret = await _issue_one_time(
        session, user=user, purpose=TokenPurpose.reset_password, email=user.email, ttl=RESET_TTL
    )
    await queue_mail(
        session,
        to=user.email,
        template="reset_password",
        context={
            "display_name": user.display_name,
            "link": _link(settings, "/reset-password", secret),
            "token": secret,
            "hours": int(RESET_TTL.total_seconds() // 3600),
        },
    )


async def reset_password(session: AsyncSession, *, secret: str, password: SecretStr) -> User:
    token, user = await _consume_one_time(session, secret, frozenset({TokenPurpose.reset_password}))
    if token.email != user.email:
        raise InvalidToken
    plain = password.get_secret_value()
    check_password_policy(plain, user.email)
    user.password_hash = await hash_password(plain)
    # Whoever knew the old password may hold a session: every one of them ends now.
    await repo.revoke_tokens(session, user_id=user.id, kind=TokenKind.session, now=utcnow())
    await session.flush()
    return user


# --- sessions ---------------------------------------------------------------------------------


def _login_keys(email: str, ip: str) -> tuple[str, str]:
    return f"login:account:{email}", f"login:ip:{ip}"


async def login(
    session: AsyncSession,
    settings: Settings,
    limiter: RateLimiter,
    *,
    email: str,
    password: SecretStr,
    ip: str,
) -> tuple[str, AccessToken]:
    failures = limiter.limit(f"{settings.login_failures_per_minute}/minute")
    account_key, ip_key = _login_keys(email, ip)
    await limiter.ensure_allowed(failures, account_key, ip_key)
    user = await repo.user_by_email(session, email)
    if not await verify_password(password.get_secret_value(), user.password_hash if user else None):
        await limiter.hit(failures, account_key, ip_key)
        raise InvalidCredentials
    assert user is not None
    if not user.is_active:
        raise AccountDisabled
    await limiter.clear(failures, account_key)
    return await _new_access_token(
        session,
        user=user,
        kind=TokenKind.session,
        name="login",
        scopes=sorted(s for s in ("read", "write", "analytics")),
        expires_at=utcnow() + timedelta(days=settings.session_ttl_days),
    )


async def _new_access_token(
    session: AsyncSession,
    *,
    user: User,
    kind: TokenKind,
    name: str,
    scopes: list[str],
    expires_at: datetime | None,
) -> tuple[str, AccessToken]:
    secret = new_token(SESSION_PREFIX if kind == TokenKind.session else PERSONAL_PREFIX)
    token = AccessToken(
        user_id=user.id,
        kind=kind,
        name=name,
        scopes=scopes,
        token_hash=hash_token(secret),
        token_prefix=secret[: len(PERSONAL_PREFIX) + 4],
        expires_at=expires_at,
    )
    session.add(token)
    await session.flush()
    return secret, token


async def authenticate(session: AsyncSession, *, secret: str) -> Authenticated | None:
    found = await repo.token_with_user(session, hash_token(secret), utcnow())
    if found is None or not found[1].is_active:
        return None
    return Authenticated(user=found[1], token=found[0])


async def logout(session: AsyncSession, *, token: AccessToken) -> None:
    token.revoked_at = utcnow()
    await session.flush()


# --- the signed-in user -----------------------------------------------------------------------


async def update_me(
    session: AsyncSession, settings: Settings, *, auth: Authenticated, data: UserUpdate
) -> User:
    user = auth.user
    if data.display_name is not None:
        user.display_name = data.display_name
    if data.password is not None:
        current = data.current_password.get_secret_value() if data.current_password else ""
        if not await verify_password(current, user.password_hash):
            raise WrongCurrentPassword
        plain = data.password.get_secret_value()
        check_password_policy(plain, user.email)
        user.password_hash = await hash_password(plain)
        await repo.revoke_tokens(
            session, user_id=user.id, kind=TokenKind.session, keep=auth.token.id, now=utcnow()
        )
    if data.email is not None and data.email != user.email:
        if data.email != user.pending_email and await repo.email_in_use(session, data.email):
            raise EmailTaken
        user.pending_email = data.email
        await _send_verification(
            session, settings, user=user, email=data.email, purpose=TokenPurpose.change_email
        )
    await session.flush()
    return user


# --- secondary emails -------------------------------------------------------------------------


async def _own_secondary_by_email(session: AsyncSession, user: User, email: str) -> UserEmail:
    for address in await repo.secondary_emails(session, user.id):
        if address.email == email:
            return address
    raise InvalidToken


async def _own_secondary(session: AsyncSession, user: User, email_id: uuid.UUID) -> UserEmail:
    address = await session.get(UserEmail, email_id)
    if address is None or address.user_id != user.id:
        raise NotFound("No such email address on your account.")
    return address


async def list_emails(session: AsyncSession, *, user: User) -> Sequence[UserEmail]:
    return await repo.secondary_emails(session, user.id)


async def add_email(
    session: AsyncSession, settings: Settings, *, user: User, email: str
) -> UserEmail:
    if await repo.email_in_use(session, email):
        raise EmailTaken
    if await repo.count_secondary_emails(session, user.id) >= MAX_SECONDARY_EMAILS:
        raise TooManyEmails
    address = UserEmail(user_id=user.id, email=email)
    session.add(address)
    await session.flush()
    await _send_verification(
        session, settings, user=user, email=email, purpose=TokenPurpose.verify_secondary
    )
    return address


async def verify_secondary(session: AsyncSession, *, user: User, secret: str) -> UserEmail:
    token, owner = await _consume_one_time(
        session, secret, frozenset({TokenPurpose.verify_secondary})
    )
    if owner.id != user.id:
        raise InvalidToken
    address = await _own_secondary_by_email(session, user, token.email)
    address.verified_at = address.verified_at or utcnow()
    await session.flush()
    return address


async def make_primary(session: AsyncSession, *, user: User, email_id: uuid.UUID) -> User:
    address = await _own_secondary(session, user, email_id)
    if address.verified_at is None:
        raise AmphoraError(
            "Verify this address before making it your primary one.",
            code="email_not_verified",
            status_code=409,
        )
    old_primary, old_verified_at = user.email, user.email_verified_at
    new_primary, new_verified_at = address.email, address.verified_at
    # Swap in steps so the unique constraint never sees one address twice.
    address.email = f"swap-{address.id}@invalid"
    await session.flush()
    user.email, user.email_verified_at, user.is_verified = new_primary, new_verified_at, True
    await session.flush()
    address.email, address.verified_at = old_primary, old_verified_at
    await session.flush()
    return user


async def delete_email(session: AsyncSession, *, user: User, email_id: uuid.UUID) -> None:
    address = await _own_secondary(session, user, email_id)
    await session.delete(address)
    await session.flush()


async def find_account(
    session: AsyncSession, settings: Settings, limiter: RateLimiter, *, email: str
) -> None:
    """Mail the sign-in address to a verified secondary address of the same account."""
    found = await repo.verified_secondary(session, email)
    if found is None or not found[1].is_active:
        return
    if not await _mail_allowance(limiter, "find", email):
        return
    address, user = found
    await queue_mail(
        session,
        to=address.email,
        template="find_account",
        context={
            "display_name": user.display_name,
            "primary_email": user.email,
            "login_link": settings.base_url,
        },
    )


# --- personal API tokens ----------------------------------------------------------------------


async def create_personal_token(
    session: AsyncSession, *, user: User, data: TokenCreate
) -> tuple[str, AccessToken]:
    expires_at = utcnow() + timedelta(days=data.expires_in_days) if data.expires_in_days else None
    return await _new_access_token(
        session,
        user=user,
        kind=TokenKind.personal,
        name=data.name,
        scopes=sorted({scope.value for scope in data.scopes}),
        expires_at=expires_at,
    )


async def list_personal_tokens(session: AsyncSession, *, user: User) -> Sequence[AccessToken]:
    return await repo.personal_tokens(session, user.id, utcnow())


async def revoke_personal_token(session: AsyncSession, *, user: User, token_id: uuid.UUID) -> None:
    token = await session.get(AccessToken, token_id)
    if (
        token is None
        or token.user_id != user.id
        or token.kind != TokenKind.personal
        or token.revoked_at is not None
    ):
        raise NotFound("No such token.")
    token.revoked_at = utcnow()
    await session.flush()


# --- housekeeping ----------------------------------------------------------------------------

# Spent tokens are kept a while so that "this link was already used" stays explainable.
SPENT_TOKEN_RETENTION = timedelta(days=30)


async def purge_spent_tokens(session: AsyncSession) -> int:
    """Delete used/expired link tokens and revoked/expired access tokens past the retention."""
    cutoff = utcnow() - SPENT_TOKEN_RETENTION
    return await repo.delete_spent_tokens(session, cutoff=cutoff)


# --- superuser administration -----------------------------------------------------------------


async def search_users(
    session: AsyncSession, *, q: str | None, limit: int, offset: int
) -> tuple[Sequence[User], int]:
    return await repo.search_users(session, q=q, limit=limit, offset=offset)


async def admin_update_user(
    session: AsyncSession, *, actor: User, user_id: uuid.UUID, data: AdminUserUpdate
) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("No such user.")
    changes = data.model_dump(exclude_unset=True)
    if user.id == actor.id and (
        changes.get("is_active") is False or changes.get("is_superuser") is False
    ):
        raise AmphoraError(
            "You cannot deactivate or demote yourself.", code="cannot_demote_self", status_code=409
        )
    for field, value in changes.items():
        setattr(user, field, value)
    if changes.get("is_verified") and user.email_verified_at is None:
        user.email_verified_at = utcnow()
    if changes.get("is_active") is False:
        await repo.revoke_tokens(session, user_id=user.id, now=utcnow())
    await session.flush()
    return user
