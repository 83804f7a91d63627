"""App-wide FastAPI dependencies: the runtime, the request's unit of work, the client address."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from amphora.kit.net import client_ip
from amphora.runtime import Runtime

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def db_session(request: Request, runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    """One transaction per request, committed before the response is sent."""
    async with runtime.db.session(write=request.method not in SAFE_METHODS) as session:
        yield session


# scope="function": the commit (and the jobs it releases) happens before the response goes out.
SessionDep = Annotated[AsyncSession, Depends(db_session, scope="function")]


def client_address(request: Request, runtime: RuntimeDep) -> str:
    peer = request.client.host if request.client else None
    return client_ip(
        peer, request.headers.get("x-forwarded-for"), runtime.settings.trusted_networks
    )


ClientAddress = Annotated[str, Depends(client_address)]
