"""App-wide FastAPI dependencies: the runtime, the request's unit of work, the client address."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from amphora.kit.net import client_ip
from amphora.runtime import Runtime

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


WRITE_KEY = "amphora_write"
F = TypeVar("F", bound=Callable[..., Any])


def streams_body(endpoint: F) -> F:
    """Mark a route that receives a long body (uploads). Its request transaction is read-only,
    so a slow client never holds the database's write lock (on SQLite: every writer's); the
    route does its writes in a short unit of work of its own once the bytes are in."""
    endpoint.streams_body = True  # type: ignore[attr-defined]
    return endpoint


def is_write_session(session: AsyncSession) -> bool:
    return bool(session.info.get(WRITE_KEY))


async def db_session(request: Request, runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    """One transaction per request, committed before the response is sent."""
    route = request.scope.get("route")
    streams = getattr(getattr(route, "endpoint", None), "streams_body", False)
    write = request.method not in SAFE_METHODS and not streams
    async with runtime.db.session(write=write) as session:
        session.info[WRITE_KEY] = write
        yield session


# scope="function": the commit (and the jobs it releases) happens before the response goes out.
SessionDep = Annotated[AsyncSession, Depends(db_session, scope="function")]


def client_address_of(request: Request, runtime: Runtime) -> str:
    peer = request.client.host if request.client else None
    return client_ip(
        peer, request.headers.get("x-forwarded-for"), runtime.settings.trusted_networks
    )


async def client_address(request: Request, runtime: RuntimeDep) -> str:
    return client_address_of(request, runtime)


ClientAddress = Annotated[str, Depends(client_address)]
