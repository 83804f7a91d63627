"""Counting failures and attempts per key (memory in one process, Redis across many)."""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from amphora.kit.errors import TooManyRequests


class RateLimiter:
    def __init__(self, redis_url: str | None = None) -> None:
        self.storage: Storage = (
            RedisStorage(f"async+{redis_url}", implementation="redispy")
            if redis_url
            else MemoryStorage()
        )
        self._strategy = MovingWindowRateLimiter(self.storage)

    @staticmethod
    def limit(spec: str) -> RateLimitItem:
        """``"10/minute"``, ``"5/hour"``: the `limits` notation."""
        return parse(spec)

    async def ensure_allowed(self, item: RateLimitItem, *keys: str) -> None:
        """Raise 429 (with Retry-After) if any key has used up its allowance."""
        for key in keys:
            if not await self._strategy.test(item, key):
                stats = await self._strategy.get_window_stats(item, key)
                retry_after = max(1, math.ceil(stats.reset_time - time.time()))
                raise TooManyRequests(retry_after)

    async def hit(self, item: RateLimitItem, *keys: str) -> None:
        for key in keys:
            await self._strategy.hit(item, key)

    async def consume(self, item: RateLimitItem, *keys: str) -> None:
        """Count an attempt, refusing it (429) once a key's allowance is used up."""
        for key in keys:
            if not await self._strategy.hit(item, key):
                await self.ensure_allowed(item, key)

    async def clear(self, item: RateLimitItem, *keys: str) -> None:
        for key in keys:
            await self._strategy.clear(item, key)
