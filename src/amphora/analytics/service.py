"""Running audience processing and serving insight answers from the cache.

Insight answers are cached per show and query (the exact path, query string and format) as
bytes under the show's analytics tag: processing invalidates the tag of every show whose
figures it changed, in every process (see :mod:`amphora.kit.cache`). The day is part of the
key too, since "the last 30 days" means other days tomorrow.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import delete, select

from amphora.analytics.errors import UserAgentsMissing
from amphora.analytics.processing import ProcessReport, process_new_hits, reprocess
from amphora.analytics.useragents import UserAgents, load_user_agents
from amphora.kit.cache import Cache
from amphora.kit.clock import utcnow
from amphora.kit.db import Database
from amphora.models import Hit, ListenEvent
from amphora.settings import Settings

logger = logging.getLogger("amphora.analytics")

PURGE_CHUNK = 50_000
_locks: dict[int, asyncio.Lock] = {}


def analytics_tag(show_id: uuid.UUID | str) -> str:
    return f"analytics:{show_id}"


def user_agents(settings: Settings) -> UserAgents:
    agents = load_user_agents(settings.resolved_user_agents_dir)
    if agents is None:
        raise UserAgentsMissing
    return agents


def _lock() -> asyncio.Lock:
    # One run at a time per event loop (the job runner's): a long run must not be joined by
    # the next tick's. Other processes are kept out by the mark check in processing.
    loop = id(asyncio.get_running_loop())
    lock = _locks.get(loop)
    if lock is None:
        lock = _locks[loop] = asyncio.Lock()
    return lock


async def process(
    db: Database, cache: Cache, settings: Settings, *, wait: bool = True
) -> ProcessReport | None:
    """Count new hits and invalidate the insights of every show whose figures changed.
    None: another run in this process is busy (and ``wait`` is false)."""
    agents = user_agents(settings)
    lock = _lock()
    if lock.locked() and not wait:
        return None
    async with lock:
        report = await process_new_hits(db, agents)
    await _invalidate(cache, report)
    return report


async def _invalidate(cache: Cache, report: ProcessReport) -> None:
    if report.shows:
        tags = [analytics_tag(show) for show in report.shows]
        await cache.invalidate([*tags, analytics_tag("all")])


async def process_again(
    db: Database,
    cache: Cache,
    settings: Settings,
    *,
    first: date,
    last: date,
    show_id: uuid.UUID | None = None,
) -> ProcessReport:
    agents = user_agents(settings)
    async with _lock():
        report = await reprocess(db, agents, first=first, last=last, show_id=show_id)
    await _invalidate(cache, report)
    return report


async def purge_old(db: Database, settings: Settings) -> int:
    """Delete raw hits and listening events older than the retention, a chunk at a time (no
    long write lock). Counted downloads and rollups stay."""
    cutoff = utcnow() - timedelta(days=settings.hit_retention_days)
    removed = 0
    for model in (Hit, ListenEvent):
        while True:
            async with db.session() as session:
                ids = list(
                    await session.scalars(
                        select(model.id).where(model.at < cutoff).limit(PURGE_CHUNK)
                    )
                )
                if ids:
                    await session.execute(delete(model).where(model.id.in_(ids)))
            removed += len(ids)
            if len(ids) < PURGE_CHUNK:
                break
    return removed


# --- cached answers ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    body: bytes
    media_type: str


async def cached(
    cache: Cache, show_id: uuid.UUID | None, key: str, compute: Callable[[], Awaitable[Answer]]
) -> Answer:
    """The answer for ``key`` from the cache while the show's figures are unchanged, else
    computed and kept. ``show_id`` None: figures across shows (every change invalidates)."""
    tag = analytics_tag(show_id if show_id is not None else "all")
    generation = await cache.generation(tag)
    full_key = f"{tag}|{utcnow().date()}|{key}"
    found = await cache.get(full_key)
    if found is not None and found.fresh:
        media_type, _, body = found.value.partition(b"\n")
        return Answer(body, media_type.decode())
    answer = await compute()
    await cache.put(
        full_key,
        answer.media_type.encode() + b"\n" + answer.body,
        tag=tag,
        generation=generation,
    )
    return answer
