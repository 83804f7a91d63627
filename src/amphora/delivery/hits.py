"""The raw hit log: one ``hits`` row per enclosure request, written off the request path.

A request only builds a small dict and appends it to a list (:meth:`HitRecorder.record`); a
background task started by the app's lifespan writes the list every ``hit_flush_seconds`` or
as soon as ``hit_batch_size`` rows wait: one INSERT executed for the whole batch, in a short
write transaction of its own. A failed write keeps the rows and is retried with a growing
pause, so no hit is lost while the process lives; stopping the recorder (app shutdown) writes
everything still waiting.

No raw client address is ever stored (STANDARDS.md §5): ``client_hash`` is an HMAC-SHA256,
keyed by a value derived from the app's secret key, of the IPv4 address or of the IPv6 /64
network (one household or phone gets a whole /64), cut to 32 hex characters. Equal inputs
give equal hashes, so audience processing can still group requests by listener. With a GeoIP
database configured (``AMPHORA_GEOIP_DATABASE``), the row gets the address's country and region
when it is built, for the same reason: the address is gone once the row exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import ipaddress
import logging
import socket
import time
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import insert

from amphora.analytics.geo import NOWHERE, GeoIP, geoip_for
from amphora.kit.db import Database
from amphora.models import Hit
from amphora.settings import Settings

__all__ = [
    "MAX_ROWS_PER_STATEMENT",
    "HitRecorder",
    "client_hash",
    "client_hash_key",
    "hit_row",
    "recorder_for",
]

logger = logging.getLogger("amphora.delivery.hits")

# Rows per INSERT (and per transaction) when many are waiting, e.g. after an outage.
MAX_ROWS_PER_STATEMENT = 1000
MAX_RETRY_PAUSE_S = 30.0
SHUTDOWN_FLUSH_TIMEOUT_S = 20.0
_KEY_PURPOSE = b"amphora.delivery.hits.client_hash.v1"
_INSERT = insert(Hit.metadata.tables[Hit.__tablename__])  # Core: no ORM bulk machinery


def client_hash_key(secret_key: str) -> bytes:
    """The HMAC key for client hashes, derived from (never equal to) the app's secret key."""
    return hmac.new(secret_key.encode(), _KEY_PURPOSE, hashlib.sha256).digest()


_V4_MAPPED = b"\x00" * 10 + b"\xff\xff"


def _listener_bytes(address: str) -> bytes:
    """IPv4: the address; IPv6: its /64 network (IPv4-mapped IPv6: the IPv4 address); each
    tagged with its family. Anything else (no peer address) is hashed as given."""
    # inet_pton first: ten times quicker than ipaddress, and equal on what both accept (it
    # refuses scoped IPv6 and nothing ipaddress refuses; those go the long way).
    try:
        if ":" not in address:
            return b"4" + socket.inet_pton(socket.AF_INET, address)
        packed = socket.inet_pton(socket.AF_INET6, address)
        return b"4" + packed[12:] if packed[:12] == _V4_MAPPED else b"6" + packed[:8]
    except (OSError, ValueError):
        pass
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return b"?" + address.encode()
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is None:
            return b"6" + ip.packed[:8]
        ip = ip.ipv4_mapped
    return b"4" + ip.packed


# Hashes of recent addresses: a podcast app fetches one file in many ranges, and a log holds
# many lines per listener. Bounded (cleared when full), and only ever in this process's memory.
_HASHES: dict[tuple[bytes, str], str] = {}
HASH_MEMO_MAX = 50_000


def client_hash(key: bytes, address: str) -> str:
    """32 hex characters identifying a client address (IPv6: its /64) without revealing it:
    HMAC-SHA256 under ``key``."""
    memo_key = (key, address)
    found = _HASHES.get(memo_key)
    if found is None:
        found = hmac.digest(key, _listener_bytes(address), "sha256").hex()[:32]
        if len(_HASHES) >= HASH_MEMO_MAX:
            _HASHES.clear()
        _HASHES[memo_key] = found
    return found


def _cut(value: str | None, limit: int) -> str | None:
    return value[:limit] if value else None


def hit_row(
    *,
    key: bytes,
    at: datetime,
    show_id: uuid.UUID | None,
    episode_id: uuid.UUID | None,
    media_id: uuid.UUID | None,
    subscriber_id: uuid.UUID | None,
    method: str,
    status: int,
    range_header: str | None,
    bytes_sent: int | None,
    client_address: str,
    user_agent: str | None,
    referer: str | None,
    session_id: str | None,
    source: str = "delivery",
    geo: GeoIP | None = None,
    dedupe_key: str | None = None,
) -> dict[str, Any]:
    """One ``hits`` row, with the client address hashed (and located, given ``geo``) and every
    text cut to its column. Every row has the same keys, so any batch is one executemany."""
    country, region = geo.locate(client_address) if geo is not None else NOWHERE
    return {
        "at": at,
        "source": source,
        "show_id": show_id,
        "episode_id": episode_id,
        "media_id": media_id,
        "subscriber_id": subscriber_id,
        "method": method[:8],
        "status": status,
        "range": _cut(range_header, 64),
        "bytes_sent": bytes_sent,
        "client_hash": client_hash(key, client_address),
        "user_agent": _cut(user_agent, 1024),
        "referer": _cut(referer, 2048),
        "session_id": _cut(session_id, 64),
        "country": country,
        "region": region,
        "dedupe_key": dedupe_key,
    }


class HitRecorder:
    """Buffers hit rows in memory and writes them in batches from a background task."""

    def __init__(
        self,
        db: Database,
        *,
        secret_key: str,
        enabled: bool = True,
        batch_size: int = 500,
        interval_s: float = 1.0,
        geo: GeoIP | None = None,
    ) -> None:
        self.db = db
        self.enabled = enabled
        self.geo = geo  # locates each hit as its row is built (see hit_row)
        self.batch_size = batch_size
        self.interval_s = interval_s
        self.key = client_hash_key(secret_key) if enabled else b""
        self._rows: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._stop: asyncio.Event | None = None
        self._lock: asyncio.Lock | None = None
        self.written = 0  # rows written since start (for tests and metrics)

    @property
    def pending(self) -> int:
        return len(self._rows)

    def record(self, row: dict[str, Any]) -> None:
        """Queue a row (from :func:`hit_row`). Cheap: an append, and a wake-up when full."""
        if not self.enabled:
            return
        self._rows.append(row)
        if len(self._rows) >= self.batch_size and self._wake is not None:
            self._wake.set()

    async def start(self) -> None:
        """Start the background writer (on the running event loop)."""
        if not self.enabled or self._task is not None:
            return
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="hit-recorder")

    async def stop(self, timeout_s: float = SHUTDOWN_FLUSH_TIMEOUT_S) -> None:
        """Stop the writer and write every row still waiting (retrying for ``timeout_s``)."""
        task, self._task = self._task, None
        if task is not None:
            assert self._stop is not None
            self._stop.set()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        deadline = time.monotonic() + timeout_s
        pause = 0.1
        while self._rows:
            try:
                await self.flush()
            except Exception as exc:
                if time.monotonic() + pause > deadline:
                    logger.error(
                        "could not write %d hits before shutting down: %r", len(self._rows), exc
                    )
                    return
                await asyncio.sleep(pause)
                pause = min(pause * 2, 2.0)

    async def flush(self) -> int:
        """Write every queued row now; return how many. Raises if the database fails (the
        rows that were not written stay queued)."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            written = 0
            while self._rows:
                batch = self._rows[:MAX_ROWS_PER_STATEMENT]
                async with self.db.session(write=True) as session:
                    # One prepared INSERT for the whole batch, run by the driver's executemany
                    # (asyncpg pipelines it in one round trip). A literal VALUES list would be
                    # compiled again for every batch length: 30-40 ms a flush, measured.
                    await session.execute(_INSERT, batch)
                # Rows recorded meanwhile were appended after the batch: drop only the batch.
                del self._rows[: len(batch)]
                written += len(batch)
                self.written += len(batch)
            return written

    async def _run(self) -> None:
        assert self._wake is not None and self._stop is not None
        failures = 0
        while not self._stop.is_set():
            await _first(self._wake, self._stop, timeout_s=self.interval_s)
            self._wake.clear()
            if self._stop.is_set():
                return  # stop() writes the rest
            try:
                await self.flush()
                failures = 0
            except Exception as exc:
                failures += 1
                pause = min(self.interval_s * 2**failures, MAX_RETRY_PAUSE_S)
                logger.warning(
                    "writing %d hits failed (attempt %d), retrying in %.1f s: %r",
                    len(self._rows),
                    failures,
                    pause,
                    exc,
                )
                await _first(self._stop, timeout_s=pause)  # stop() cuts the pause short


async def _first(*events: asyncio.Event, timeout_s: float) -> None:
    """Wait until one of ``events`` is set, or ``timeout_s`` passed."""
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


def recorder_for(settings: Settings, db: Database) -> HitRecorder:
    """The app's recorder, as configured (``AMPHORA_RECORD_HITS``, ``AMPHORA_HIT_*``,
    ``AMPHORA_GEOIP_DATABASE``). A GeoIP database that does not open fails here, at start-up
    (:class:`~amphora.analytics.geo.GeoDatabaseError`), not on every request."""
    return HitRecorder(
        db,
        secret_key=settings.resolved_secret_key if settings.record_hits else "",
        enabled=settings.record_hits,
        batch_size=settings.hit_batch_size,
        interval_s=settings.hit_flush_seconds,
        geo=geoip_for(settings) if settings.record_hits else None,
    )
