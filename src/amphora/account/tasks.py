"""Periodic housekeeping of the accounts domain."""

from __future__ import annotations

from typing import Any

from amphora.account import service
from amphora.kit.jobs import crontab, periodic


@periodic(crontab(minute="17", hour="3"))
async def purge_spent_tokens(ctx: Any) -> None:
    """Daily: forget link tokens and access tokens that can never be used again."""
    async with ctx.db.session() as session:
        await service.purge_spent_tokens(session)
