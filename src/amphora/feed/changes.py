"""Noticing every change that affects a show's feed, at the one place all of them pass.

Every edit that a feed can show (the show, its episodes, media, artwork, transcripts,
chapters, deletion, restore) bumps ``Show.version`` in the same unit of work, and purging deletes
the show row. So a flush that changes a show's version, inserts or deletes a show is a feed
change. Once that unit of work commits, the show's cached feeds become stale in every process
and a job tells aggregators, if the public feed really changed.
"""

from __future__ import annotations

import functools
import uuid
from typing import Any

import anyio
from sqlalchemy import event, inspect
from sqlalchemy.orm import Session, UOWTransaction

from amphora.kit.cache import CACHE_KEY, Cache
from amphora.kit.db import after_commit
from amphora.kit.jobs import ENQUEUE_KEY
from amphora.models import Show

CHANGED_KEY = "amphora_feed_changed"


def feed_tag(show_id: uuid.UUID | str) -> str:
    """The cache tag of everything rendered from a show."""
    return f"show:{show_id}"


@event.listens_for(Session, "after_flush")
def _collect(session: Session, _flush: UOWTransaction) -> None:
    if CACHE_KEY not in session.info:
        return
    changed: set[uuid.UUID] = set()
    for obj in session.new:
        if isinstance(obj, Show):
            changed.add(obj.id)
    for obj in session.deleted:
        if isinstance(obj, Show):
            changed.add(obj.id)
    for obj in session.dirty:
        if isinstance(obj, Show) and inspect(obj).attrs.version.history.has_changes():
            changed.add(obj.id)
    if not changed:
        return
    pending: set[uuid.UUID] | None = session.info.get(CHANGED_KEY)
    if pending is None:
        pending = session.info[CHANGED_KEY] = set()
        after_commit(session, functools.partial(_committed, session.info))
    pending |= changed


async def _committed(info: dict[str, Any]) -> None:
    from amphora.feed.tasks import announce_feed

    cache: Cache = info[CACHE_KEY]
    show_ids: set[uuid.UUID] = info.pop(CHANGED_KEY, set())
    await cache.invalidate(sorted(feed_tag(show_id) for show_id in show_ids))
    enqueue = info[ENQUEUE_KEY]
    for show_id in show_ids:
        await anyio.to_thread.run_sync(enqueue, announce_feed.name, (str(show_id),))
