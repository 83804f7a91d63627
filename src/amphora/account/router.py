"""HTTP routes of the accounts API: parse, call one service function, return a schema."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from amphora.account import service
from amphora.account.deps import CurrentAuth, Reader, SessionOnly, Superuser, Writer
from amphora.account.schemas import (
    AdminUserPage,
    AdminUserRead,
    AdminUserUpdate,
    EmailIn,
    LoginIn,
    LoginOut,
    RegisterIn,
    ResetPasswordIn,
    TokenCreate,
    TokenCreated,
    TokenIn,
    TokenRead,
    UserEmailRead,
    UserRead,
    UserUpdate,
)
from amphora.deps import ClientAddress, RuntimeDep, SessionDep
from amphora.kit.openapi import errors

auth_router = APIRouter(prefix="/auth", tags=["auth"])
users_router = APIRouter(prefix="/users", tags=["users"])
admin_router = APIRouter(prefix="/admin", tags=["admin"])

ANON_MAILS_PER_IP = "30/hour"


@auth_router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=UserRead,
    responses=errors(409, 422),
)
async def register(data: RegisterIn, session: SessionDep, runtime: RuntimeDep) -> object:
    """Create an account; a verification link (valid 24 h) is mailed to the address."""
    return await service.register(session, runtime.settings, data=data)


@auth_router.post("/verify", response_model=UserRead, responses=errors(400))
async def verify(data: TokenIn, session: SessionDep) -> object:
    """Confirm an email address with the token from the mailed link (single use)."""
    return await service.verify_email(session, secret=data.token)


async def _anonymous_mail_guard(runtime: RuntimeDep, ip: str) -> None:
    limiter = runtime.limiter
    await limiter.consume(limiter.limit(ANON_MAILS_PER_IP), f"anon-mail:{ip}")


@auth_router.post("/verify/resend", status_code=status.HTTP_202_ACCEPTED, responses=errors(429))
async def resend_verification(
    data: EmailIn, session: SessionDep, runtime: RuntimeDep, ip: ClientAddress
) -> Response:
    """Send a new verification link. Always 202, whether or not the address has an account."""
    await _anonymous_mail_guard(runtime, ip)
    await service.resend_verification(session, runtime.settings, runtime.limiter, email=data.email)
    return Response(status_code=status.HTTP_202_ACCEPTED)


@auth_router.post("/forgot-password", status_code=status.HTTP_202_ACCEPTED, responses=errors(429))
async def forgot_password(
    data: EmailIn, session: SessionDep, runtime: RuntimeDep, ip: ClientAddress
) -> Response:
    """Mail a password-reset link if the account exists. Always 202."""
    await _anonymous_mail_guard(runtime, ip)
    await service.forgot_password(session, runtime.settings, runtime.limiter, email=data.email)
    return Response(status_code=status.HTTP_202_ACCEPTED)


@auth_router.post(
    "/reset-password", status_code=status.HTTP_204_NO_CONTENT, responses=errors(400, 422)
)
async def reset_password(data: ResetPasswordIn, session: SessionDep) -> Response:
    """Set a new password with the mailed token; every existing session is signed out."""
    await service.reset_password(session, secret=data.token, password=data.password)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@auth_router.post("/find-account", status_code=status.HTTP_202_ACCEPTED, responses=errors(429))
async def find_account(
    data: EmailIn, session: SessionDep, runtime: RuntimeDep, ip: ClientAddress
) -> Response:
    """Forgot which address you signed up with? Give a verified secondary address: the
    sign-in address is mailed to it. Always 202."""
    await _anonymous_mail_guard(runtime, ip)
    await service.find_account(session, runtime.settings, runtime.limiter, email=data.email)
    return Response(status_code=status.HTTP_202_ACCEPTED)


@auth_router.post("/login", response_model=LoginOut, responses=errors(401, 403, 429))
async def login(
    data: LoginIn, session: SessionDep, runtime: RuntimeDep, ip: ClientAddress
) -> LoginOut:
    """Exchange email and password for a bearer session token."""
    secret, token = await service.login(
        session, runtime.settings, runtime.limiter, email=data.email, password=data.password, ip=ip
    )
    assert token.expires_at is not None
    return LoginOut(access_token=secret, expires_at=token.expires_at)


@auth_router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, responses=errors(401))
async def logout(auth: CurrentAuth, session: SessionDep) -> Response:
    """Revoke the token that made this request, at once."""
    await service.logout(session, token=auth.token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- /users/me --------------------------------------------------------------------------------


@users_router.get("/me", response_model=UserRead, responses=errors(401))
async def me(auth: Reader) -> object:
    return auth.user


@users_router.patch("/me", response_model=UserRead, responses=errors(400, 401, 409, 422))
async def update_me(
    data: UserUpdate, auth: Writer, session: SessionDep, runtime: RuntimeDep
) -> object:
    """Change the display name; an email change waits for the new address to be verified;
    a password change needs `current_password` and signs out every other session."""
    return await service.update_me(session, runtime.settings, auth=auth, data=data)


@users_router.get("/me/emails", response_model=list[UserEmailRead], responses=errors(401))
async def list_emails(auth: Reader, session: SessionDep) -> object:
    """Secondary email addresses (the primary one is `email` on the user)."""
    return await service.list_emails(session, user=auth.user)


@users_router.post(
    "/me/emails",
    status_code=status.HTTP_201_CREATED,
    response_model=UserEmailRead,
    responses=errors(401, 409, 422),
)
async def add_email(
    data: EmailIn, auth: Writer, session: SessionDep, runtime: RuntimeDep
) -> object:
    """Add a secondary address; a verification link is mailed to it."""
    return await service.add_email(session, runtime.settings, user=auth.user, email=data.email)


@users_router.post("/me/emails/verify", response_model=UserEmailRead, responses=errors(400, 401))
async def verify_email_address(data: TokenIn, auth: Writer, session: SessionDep) -> object:
    return await service.verify_secondary(session, user=auth.user, secret=data.token)


@users_router.post(
    "/me/emails/{email_id}/primary", response_model=UserRead, responses=errors(401, 404, 409)
)
async def make_primary(email_id: uuid.UUID, auth: SessionOnly, session: SessionDep) -> object:
    """Swap a verified secondary address with the primary one."""
    return await service.make_primary(session, user=auth.user, email_id=email_id)


@users_router.delete(
    "/me/emails/{email_id}", status_code=status.HTTP_204_NO_CONTENT, responses=errors(401, 404)
)
async def delete_email(email_id: uuid.UUID, auth: Writer, session: SessionDep) -> Response:
    await service.delete_email(session, user=auth.user, email_id=email_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- personal API tokens ----------------------------------------------------------------------


@users_router.post(
    "/me/tokens",
    status_code=status.HTTP_201_CREATED,
    response_model=TokenCreated,
    responses=errors(401, 403, 422),
)
async def create_token(data: TokenCreate, auth: SessionOnly, session: SessionDep) -> TokenCreated:
    """Create a personal API token (needs a signed-in session). The secret is shown only here."""
    secret, token = await service.create_personal_token(session, user=auth.user, data=data)
    return TokenCreated.model_validate(
        {**TokenRead.model_validate(token).model_dump(), "token": secret}
    )


@users_router.get("/me/tokens", response_model=list[TokenRead], responses=errors(401))
async def list_tokens(auth: Reader, session: SessionDep) -> object:
    """Active personal tokens, without their secrets."""
    return await service.list_personal_tokens(session, user=auth.user)


@users_router.delete(
    "/me/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT, responses=errors(401, 404)
)
async def revoke_token(token_id: uuid.UUID, auth: Writer, session: SessionDep) -> Response:
    await service.revoke_personal_token(session, user=auth.user, token_id=token_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- superusers -------------------------------------------------------------------------------


@admin_router.get("/users", response_model=AdminUserPage, responses=errors(401, 403))
async def search_users(
    auth: Superuser,
    session: SessionDep,
    q: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> AdminUserPage:
    """Find accounts by email or display name."""
    users, total = await service.search_users(session, q=q, limit=limit, offset=offset)
    return AdminUserPage(items=[AdminUserRead.model_validate(u) for u in users], total=total)


@admin_router.patch(
    "/users/{user_id}", response_model=AdminUserRead, responses=errors(401, 403, 404, 409)
)
async def update_user(
    user_id: uuid.UUID, data: AdminUserUpdate, auth: Superuser, _: Writer, session: SessionDep
) -> object:
    """Deactivate (signs the user out everywhere), verify, promote, or set the storage quota."""
    return await service.admin_update_user(session, actor=auth.user, user_id=user_id, data=data)
