"""A cache of rendered bytes that never serves what an invalidation has replaced.

Every entry belongs to a *tag* (for feeds: the show). Invalidating a tag bumps the tag's
generation; an entry is fresh only while its generation is the tag's current one and its expiry
(if any) has not passed. Rendering reads the generation *before* it loads its data, so a render
that races with an edit stores an entry that is already stale instead of a stale entry that
looks fresh.

Stale entries are kept (least recently used first out): when the database is down, the last
rendered bytes are still better than an error.

Embedded, the store lives in this process and is shared by the web app and the in-process job
runner (one store per database). At scale, Redis holds the entries and the generations, and a
pub/sub channel tells every process to update its local copy of a generation immediately, so a
hot entry is served from memory without a round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import struct
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger("amphora.cache")

# Where a database session finds the cache (so that commits can invalidate it).
CACHE_KEY = "amphora_cache"

# Sent on the invalidation channel instead of "<tag> <generation>": drop every entry.
CLEAR_MESSAGE = "* clear"

# Generation counters are seeded with the time so that a restarted embedded process (which
# forgot its counters) never mistakes an entry rendered before the restart for a fresh one.
_START = time.time_ns()


@dataclass(frozen=True, slots=True)
class Entry:
    value: bytes
    tag: str
    generation: int
    expires_at: float | None  # unix time; None: until invalidated


@dataclass(frozen=True, slots=True)
class Lookup:
    value: bytes
    fresh: bool
    tag: str
    generation: int
    expires_at: float | None


class LocalStore:
    """Entries and generations in this process, least recently used evicted beyond a byte
    budget. Thread-safe: the web app and the job runner thread share it."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._generations: dict[str, int] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> Entry | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def put(self, key: str, entry: Entry) -> None:
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= len(old.value)
            self._entries[key] = entry
            self._bytes += len(entry.value)
            while self._bytes > self.max_bytes and len(self._entries) > 1:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= len(evicted.value)

    def generation(self, tag: str) -> int | None:
        return self._generations.get(tag)

    def set_generation(self, tag: str, generation: int) -> None:
        with self._lock:
            if generation > self._generations.get(tag, -1):
                self._generations[tag] = generation

    def bump(self, tag: str) -> int:
        with self._lock:
            generation = max(self._generations.get(tag, _START), _START) + 1
            self._generations[tag] = generation
            return generation

    def forget_generations(self) -> None:
        with self._lock:
            self._generations.clear()

    def stats(self) -> tuple[int, int]:
        """Entries held and the bytes of their values."""
        with self._lock:
            return len(self._entries), self._bytes

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0


_STORES: dict[str, LocalStore] = {}
_STORES_LOCK = threading.Lock()


def local_store(namespace: str, max_bytes: int) -> LocalStore:
    with _STORES_LOCK:
        store = _STORES.get(namespace)
        if store is None:
            store = _STORES[namespace] = LocalStore(max_bytes)
        return store


_HEADER = struct.Struct(">qdH")  # generation, expires_at (0: never), tag length


def _pack(entry: Entry) -> bytes:
    tag = entry.tag.encode()
    return _HEADER.pack(entry.generation, entry.expires_at or 0.0, len(tag)) + tag + entry.value


def _unpack(blob: bytes) -> Entry:
    generation, expires_at, tag_length = _HEADER.unpack_from(blob)
    start = _HEADER.size
    tag = blob[start : start + tag_length].decode()
    return Entry(blob[start + tag_length :], tag, generation, expires_at or None)


class Cache:
    """One process side's handle on the cache (see the module docstring)."""

    def __init__(
        self,
        *,
        namespace: str,
        redis_url: str | None = None,
        max_local_bytes: int = 256 * 1024**2,
    ) -> None:
        self.namespace = namespace
        self.local = local_store(namespace, max_local_bytes)
        self._redis_url = redis_url
        self._redis: Any = None
        self._listener: asyncio.Task[None] | None = None
        # Hashed: the namespace holds a database URL, which may hold a password.
        self._prefix = f"amphora:cache:{hashlib.sha256(namespace.encode()).hexdigest()[:12]}:"

    @property
    def shared(self) -> bool:
        return self._redis_url is not None

    def _client(self) -> Any:
        if self._redis is None:
            import redis.asyncio as aioredis

            assert self._redis_url is not None
            self._redis = aioredis.Redis.from_url(self._redis_url)
        return self._redis

    # --- reading and writing ---------------------------------------------------------------

    async def generation(self, tag: str) -> int:
        """The tag's current generation: read it before loading what you will render."""
        known = self.local.generation(tag)
        if known is not None and (self._listener is not None or not self.shared):
            return known
        if not self.shared:
            return self.local.bump(tag) if known is None else known
        raw = await self._client().get(self._prefix + "gen:" + tag)
        if raw is None:
            # Never invalidated yet: start the counter so later bumps are comparable.
            await self._client().set(self._prefix + "gen:" + tag, _START, nx=True)
            raw = await self._client().get(self._prefix + "gen:" + tag)
        generation = int(raw)
        self.local.set_generation(tag, generation)
        return generation

    @property
    def listening(self) -> bool:
        """Whether local generations are current: always embedded; at scale, only while this
        process follows the invalidation channel."""
        return not self.shared or self._listener is not None

    def local_fresh(self, key: str) -> Entry | None:
        """The entry if this process knows, without any I/O, that it is fresh."""
        if not self.listening:
            return None  # without the invalidation feed, local generations may be behind
        entry = self.local.get(key)
        if entry is None or self.local.generation(entry.tag) != entry.generation:
            return None
        if entry.expires_at is not None and time.time() >= entry.expires_at:
            return None
        return entry

    async def get(self, key: str) -> Lookup | None:
        entry = self.local.get(key)
        if entry is None and self.shared:
            try:
                blob = await self._client().get(self._prefix + "entry:" + key)
            except Exception as exc:  # Redis down: behave as a miss
                logger.warning("cache read failed: %r", exc)
                return None
            if blob is None:
                return None
            entry = _unpack(blob)
            self.local.put(key, entry)
        if entry is None:
            return None
        try:
            current = await self.generation(entry.tag)
        except Exception as exc:
            logger.warning("cache generation read failed: %r", exc)
            current = -1
        fresh = entry.generation == current and (
            entry.expires_at is None or time.time() < entry.expires_at
        )
        return Lookup(entry.value, fresh, entry.tag, entry.generation, entry.expires_at)

    async def put(
        self,
        key: str,
        value: bytes,
        *,
        tag: str,
        generation: int,
        expires_at: float | None = None,
    ) -> None:
        entry = Entry(value, tag, generation, expires_at)
        self.local.put(key, entry)
        if self.shared:
            try:
                await self._client().set(self._prefix + "entry:" + key, _pack(entry), ex=86400 * 7)
            except Exception as exc:
                logger.warning("cache write failed: %r", exc)

    async def invalidate(self, tags: set[str] | list[str]) -> None:
        """Every entry of these tags becomes stale, in every process."""
        for tag in tags:
            if not self.shared:
                self.local.bump(tag)
                continue
            client = self._client()
            generation = await client.incr(self._prefix + "gen:" + tag)
            if generation <= _START:  # first bump ever: jump past any seeded counter
                generation = await client.incrby(self._prefix + "gen:" + tag, _START)
            self.local.set_generation(tag, generation)
            await client.publish(self._prefix + "invalidate", f"{tag} {generation}")

    async def stats(self) -> dict[str, Any]:
        """What the cache holds: in this process, and in Redis when shared."""
        entries, size = self.local.stats()
        result: dict[str, Any] = {"local": {"entries": entries, "bytes": size}, "shared": None}
        if self.shared:
            client = self._client()
            count = total = 0
            async for key in client.scan_iter(match=self._prefix + "entry:*", count=1000):
                count += 1
                total += int(await client.strlen(key))
            result["shared"] = {"entries": count, "bytes": total}
        return result

    async def clear(self) -> None:
        """Drop every entry, here, in Redis and in every other process (they are rendered
        again on the next request)."""
        self.local.clear()
        if self.shared:
            client = self._client()
            keys = [key async for key in client.scan_iter(match=self._prefix + "entry:*")]
            for start in range(0, len(keys), 1000):
                await client.delete(*keys[start : start + 1000])
            await client.publish(self._prefix + "invalidate", CLEAR_MESSAGE)

    # --- cross-process invalidation --------------------------------------------------------

    async def start_listener(self) -> None:
        """Follow other processes' invalidations (web processes at scale)."""
        if not self.shared or self._listener is not None:
            return
        self._listener = asyncio.create_task(self._listen(), name="cache-invalidations")

    async def _listen(self) -> None:
        while True:
            pubsub = self._client().pubsub()
            try:
                await pubsub.subscribe(self._prefix + "invalidate")
                # Messages sent while we were not listening are lost: forget what we knew.
                self.local.forget_generations()
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    data = message["data"].decode()
                    if data == CLEAR_MESSAGE:
                        self.local.clear()
                        continue
                    tag, _, generation = data.rpartition(" ")
                    self.local.set_generation(tag, int(generation))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("cache invalidation listener lost Redis: %r", exc)
                self.local.forget_generations()
                await asyncio.sleep(1)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
            self._listener = None
        if self._redis is not None:
            with contextlib.suppress(Exception):
                await self._redis.aclose()
            self._redis = None
