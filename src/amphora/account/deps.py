"""Who is calling: bearer-token authentication and the checks every private route reuses."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Annotated, Any

from fastapi import BackgroundTasks, Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import update

from amphora.account import service
from amphora.account.errors import MissingScope, SessionRequired
from amphora.account.schemas import Scope
from amphora.account.service import Authenticated
from amphora.deps import RuntimeDep, SessionDep, is_write_session
from amphora.kit.clock import utcnow
from amphora.kit.errors import Forbidden, Unauthorized
from amphora.models import AccessToken
from amphora.runtime import Runtime

_bearer = HTTPBearer(auto_error=False, description="A login session or a personal API token.")
LAST_USED_RESOLUTION = timedelta(minutes=15)


async def current_auth(
    background: BackgroundTasks,
    session: SessionDep,
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Authenticated:
    if credentials is None:
        raise Unauthorized("Sign in, or send an API token as 'Authorization: Bearer …'.")
    auth = await service.authenticate(session, secret=credentials.credentials)
    if auth is None:
        raise Unauthorized("This token is invalid, expired or revoked.", code="invalid_token")
    now = utcnow()
    last = auth.token.last_used_at
    if last is None or now - last > LAST_USED_RESOLUTION:
        touch = update(AccessToken).where(AccessToken.id == auth.token.id).values(last_used_at=now)
        if is_write_session(session):
            await session.execute(touch)
        else:
            # After the response, once this request's connection is back in the pool: a read
            # must neither become a write transaction nor hold one connection while awaiting
            # another (a burst of first uses would exhaust the pool).
            background.add_task(_record_use, runtime, touch)
    return auth


async def _record_use(runtime: Runtime, statement: Any) -> None:
    async with runtime.db.session(write=True) as writer:
        await writer.execute(statement)


CurrentAuth = Annotated[Authenticated, Depends(current_auth)]


def ensure_scope(auth: Authenticated, scope: Scope) -> None:
    if scope not in auth.scopes:
        raise MissingScope(f"This token lacks the '{scope}' scope.")


def require_scope(scope: Scope) -> Callable[[Authenticated], Coroutine[Any, Any, Authenticated]]:
    async def check(auth: CurrentAuth) -> Authenticated:
        ensure_scope(auth, scope)
        return auth

    return check


async def require_session(auth: CurrentAuth) -> Authenticated:
    if not auth.is_session:
        raise SessionRequired
    return auth


async def require_superuser(auth: CurrentAuth) -> Authenticated:
    if not auth.user.is_superuser:
        raise Forbidden("Only administrators can do this.", code="superuser_required")
    return auth


Reader = Annotated[Authenticated, Depends(require_scope(Scope.read))]
Writer = Annotated[Authenticated, Depends(require_scope(Scope.write))]
SessionOnly = Annotated[Authenticated, Depends(require_session)]
Superuser = Annotated[Authenticated, Depends(require_superuser)]
