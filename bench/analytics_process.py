"""Audience processing and insight queries at scale.

One show with 1,000 released episodes and a year of traffic: ``BENCH_HITS`` raw hits
(default 10,000,000) from 150,000 listeners, written straight into the ``hits`` table in time
order (about four requests per listening session: Apple's ``bytes=0-1`` probe, then ranges; a
quarter of the sessions stop before a minute of audio; 5 % of the requests come from bots and
1 % from an app nobody knows). Then, per backend:

- ``process_s``: ``process_new_hits`` over all of them, start to end (downloads, rollups,
  listener counts), in this process, and the throughput in hits per second;
- ``reprocess_day_s``: reprocessing one day of the show again;
- insight queries over the year of rollups this leaves, uncached (the cache is cleared before
  each request), through the app in process: p50 / p95 per endpoint over 30 requests.

Targets: processing under 60 s on SQLite and on PostgreSQL; every insight query p95 < 20 ms.
Needs the OPAWG data set (``BENCH_USER_AGENTS``, default: the shared test data beside the
project).
"""

from __future__ import annotations

import asyncio
import bisect
import os
import random
import sqlite3
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
import seed

HITS = int(os.environ.get("BENCH_HITS", "10000000"))
USER_AGENTS = Path(
    os.environ.get(
        "BENCH_USER_AGENTS",
        str(Path(__file__).resolve().parents[2] / "shared" / "data" / "user-agents-v2"),
    )
)
LISTENERS = 150_000
EPISODES = 1_000
SIZE, BITRATE, ID3 = 48_000_000, 128_000, 0
MINUTE = ID3 + BITRATE * 60 // 8
REQUESTS = 30

APPS = [
    ("Podcasts/1410.53 CFNetwork/1111 Darwin/19.0.0 (x86_64)", 40),
    ("AppleCoreMedia/1.0.0.16G114 (iPhone; U; CPU OS 12_4_2 like Mac OS X; en_us)", 10),
    ("Spotify/8.5.68 iOS/13.4 (iPhone9,3)", 20),
    ("Overcast/3.0 (+http://overcast.fm/; iOS podcast app)", 8),
    ("Pocket Casts", 6),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0 Safari/537.36",
        5,
    ),
    ("atc/1.0 watchOS/7.1 model/Watch4,2 hwp/t8006 build/18R590 (6; dt:191)", 2),
    ("Python/3.10 aiohttp/3.9.3", 3),
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", 2),
    ("SomeNewPlayer/0.9 (bench)", 1),
]


def _listeners(rng: random.Random, key: bytes) -> list[tuple[str, str]]:
    from amphora.delivery.hits import client_hash

    agents = [ua for ua, _ in APPS]
    weights = [w for _, w in APPS]
    out = []
    for n in range(LISTENERS):
        address = f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"
        out.append((client_hash(key, address), rng.choices(agents, weights)[0]))
    return out


def _sessions(rng: random.Random, start: datetime, count: int) -> list[float]:
    base = start.timestamp()
    return sorted(base + rng.random() * 365 * 86400 for _ in range(count))


def generate(
    rng: random.Random, key: bytes, episodes: list[tuple[Any, Any, float]], start: datetime
) -> list[tuple[Any, ...]]:
    """``(at, episode_id, media_id, client_hash, ua, status, range, bytes)`` per hit."""
    listeners = _listeners(rng, key)
    sessions = _sessions(rng, start, HITS // 4 + 1)
    hits: list[tuple[Any, ...]] = []
    released = [published for _, _, published in episodes]
    for at in sessions:
        # An episode out by then, newer ones more likely.
        available = bisect.bisect_right(released, at)
        if available == 0:
            continue
        index = available - 1 - min(int(rng.expovariate(1 / 40)), available - 1)
        episode_id, media_id, _ = episodes[index]
        client, ua = listeners[rng.randrange(LISTENERS)]
        hits.append((at, episode_id, media_id, client, ua, 206, "bytes=0-1", 2))
        complete = rng.random() < 0.75
        sent = 2
        for step in range(3):
            if len(hits) >= HITS:
                return hits
            chunk = MINUTE // 2 + 1 if complete else MINUTE // 5
            hits.append(
                (at + 2 + step * 30, episode_id, media_id, client, ua, 206, f"bytes={sent}-", chunk)
            )
            sent += chunk
        if len(hits) >= HITS:
            return hits
    return hits


def _stamp(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def write_sqlite(path: Path, show_id: uuid.UUID, hits: list[tuple[Any, ...]]) -> None:
    connection = sqlite3.connect(path)
    try:
        rows = (
            (
                _stamp(at).strftime("%Y-%m-%d %H:%M:%S.%f"),
                "delivery",
                show_id.hex,
                episode.hex,
                media.hex,
                "GET",
                status,
                range_header,
                sent,
                client,
                ua,
            )
            for at, episode, media, client, ua, status, range_header, sent in hits
        )
        connection.executemany(
            "INSERT INTO hits (at, source, show_id, episode_id, media_id, method, status, range, "
            "bytes_sent, client_hash, user_agent) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            rows,
        )
        connection.commit()
    finally:
        connection.close()


async def write_postgres(url: str, show_id: uuid.UUID, hits: list[tuple[Any, ...]]) -> None:
    import asyncpg

    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        records = (
            (_stamp(at), "delivery", show_id, episode, media, "GET", status, r, sent, client, ua)
            for at, episode, media, client, ua, status, r, sent in hits
        )
        await connection.copy_records_to_table(
            "hits",
            records=records,
            columns=[
                "at",
                "source",
                "show_id",
                "episode_id",
                "media_id",
                "method",
                "status",
                "range",
                "bytes_sent",
                "client_hash",
                "user_agent",
            ],
        )
        await connection.execute("ANALYZE hits")
    finally:
        await connection.close()


async def _catalogue(env: dict[str, str]) -> tuple[uuid.UUID, list[tuple[Any, Any, float]]]:
    from sqlalchemy import select, update

    from amphora.kit.db import Database
    from amphora.models import Episode, MediaFile

    email, password = common.new_credentials()
    common.create_user(env, email, password, "Bench")
    seeded = await seed.seed_catalog(env, email, [("Year of listening", EPISODES)], media=True)
    settings = common.settings_for(env)
    db = Database(settings.resolved_database_url)
    try:
        now = datetime.now(UTC)
        async with db.session() as session:
            show_id = seeded.show_ids[0]
            ids = list(
                await session.scalars(
                    select(Episode.id).where(Episode.show_id == show_id).order_by(Episode.id)
                )
            )
            # Every episode released, one every 8.76 hours over the year before now.
            episodes = []
            for n, episode_id in enumerate(ids):
                published = now - timedelta(days=365) + timedelta(hours=8.76 * n)
                await session.execute(
                    update(Episode).where(Episode.id == episode_id).values(publish_at=published)
                )
            await session.execute(
                update(MediaFile)
                .where(MediaFile.show_id == show_id)
                .values(size=SIZE, bitrate=BITRATE, id3_size=ID3)
            )
            rows = await session.execute(
                select(Episode.id, Episode.media_id, Episode.publish_at)
                .where(Episode.show_id == show_id)
                .order_by(Episode.publish_at)
            )
            episodes = [(e, m, p.timestamp()) for e, m, p in rows]
        return show_id, episodes
    finally:
        await db.dispose()


async def _insights(env: dict[str, str], show_id: uuid.UUID) -> dict[str, Any]:
    """Each insight endpoint, uncached, through the app in this process."""
    from sqlalchemy import select, update

    from amphora.app import release_startup_memory
    from amphora.models import Episode, ShowMember, User

    email, password = common.new_credentials()
    common.create_user(env, email, password, "Admin")
    async with common.in_process_client(env) as (client, app):
        # What `amphora serve` does once started (the lifespan does not run in process).
        release_startup_memory()
        runtime = app.state.runtime
        async with runtime.db.session() as session:
            await session.execute(update(User).where(User.email == email).values(is_superuser=True))
            admin_id = await session.scalar(select(User.id).where(User.email == email))
            session.add(ShowMember(show_id=show_id, user_id=admin_id, role="viewer"))
            episode = await session.scalar(
                select(Episode.id)
                .where(Episode.show_id == show_id)
                .order_by(Episode.publish_at)
                .offset(500)
                .limit(1)
            )
        login = {"email": email, "password": password}
        token = (await client.post("/api/v1/auth/login", json=login)).json()["access_token"]
        today = datetime.now(UTC).date()
        year = {"from": str(today - timedelta(days=364)), "to": str(today)}
        base = f"/api/v1/shows/{show_id}/analytics"
        queries = {
            "summary": (f"{base}/summary", {}),
            "downloads_day_year": (f"{base}/downloads", year),
            "downloads_week_year": (f"{base}/downloads", {**year, "interval": "week"}),
            "downloads_episode_year": (f"{base}/downloads", {**year, "episode_id": str(episode)}),
            "listeners_month_year": (f"{base}/listeners", {**year, "interval": "month"}),
            "listeners_day_year": (f"{base}/listeners", year),
            "top_episodes_year": (f"{base}/episodes/top", {**year, "limit": "100"}),
            "apps_year": (f"{base}/apps", year),
            "devices_year": (f"{base}/devices", year),
            "countries_year": (f"{base}/countries", year),
            "performance_90_days": (f"{base}/episodes/{episode}/performance", {"days": "90"}),
            "admin_summary_year": ("/api/v1/admin/analytics/summary", year),
        }
        headers = {"Authorization": f"Bearer {token}"}
        results: dict[str, Any] = {}
        for name, (url, params) in queries.items():
            seconds = []
            for _ in range(REQUESTS):
                await runtime.cache.clear()
                started = time.perf_counter()
                response = await client.get(url, params=params, headers=headers)
                seconds.append(time.perf_counter() - started)
                assert response.status_code == 200, (name, response.text[:300])
            results[name] = common.latency_summary(seconds)
        return results


async def run_backend(backend: str) -> dict[str, Any]:
    from amphora.analytics.processing import process_new_hits, reprocess
    from amphora.analytics.useragents import UserAgents
    from amphora.delivery.hits import client_hash_key
    from amphora.kit.db import Database

    with (
        common.temp_dir() as data_dir,
        common.backend_env(
            backend, data_dir, common.free_port(), AMPHORA_USER_AGENTS_DIR=str(USER_AGENTS)
        ) as env,
    ):
        common.db_upgrade(env)
        show_id, episodes = await _catalogue(env)
        settings = common.settings_for(env)
        key = client_hash_key(settings.resolved_secret_key)
        rng = random.Random(7)
        started = time.perf_counter()
        hits = generate(rng, key, episodes, datetime.now(UTC) - timedelta(days=365))
        generated_s = time.perf_counter() - started
        started = time.perf_counter()
        if backend == "sqlite":
            write_sqlite(settings.resolved_data_dir / "amphora.db", show_id, hits)
        else:
            await write_postgres(settings.resolved_database_url, show_id, hits)
        written_s = time.perf_counter() - started
        count = len(hits)
        del hits
        agents = UserAgents.load(USER_AGENTS)
        db = Database(settings.resolved_database_url)
        try:
            started = time.perf_counter()
            report = await process_new_hits(db, agents)
            process_s = time.perf_counter() - started
            day = (datetime.now(UTC) - timedelta(days=100)).date()
            started = time.perf_counter()
            await reprocess(db, agents, first=day, last=day, show_id=show_id)
            reprocess_s = time.perf_counter() - started
        finally:
            await db.dispose()
        insights = await _insights(env, show_id)
        return {
            "hits": count,
            "generate_s": round(generated_s, 1),
            "write_s": round(written_s, 1),
            "process_s": round(process_s, 2),
            "hits_per_s": round(count / process_s),
            "downloads": report.downloads_added,
            "process_phases_s": report.seconds,
            "reprocess_day_s": round(reprocess_s, 2),
            "insights": insights,
            "insights_worst_p95_ms": max(q["p95"] for q in insights.values()),
        }


def main() -> None:
    common.exit_on_sigterm()
    results = {}
    for backend in common.wanted_backends():
        results[backend] = asyncio.run(run_backend(backend))
    met = all(r["process_s"] < 60 and r["insights_worst_p95_ms"] < 20 for r in results.values())
    common.write_result("analytics_process", {"backends": results, "met": met})


if __name__ == "__main__":
    main()
