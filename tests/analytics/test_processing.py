"""Processing raw hits into downloads and rollups, on SQLite and PostgreSQL: each IAB rule on a
hand-computed case, late hits, reprocessing, and the unknown User-Agents list."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from amphora.analytics import processing, service
from amphora.analytics.processing import listener_key
from amphora.delivery.hits import client_hash_key, hit_row
from amphora.kit.clock import utcnow
from amphora.models import (
    Download,
    DownloadBreakdown,
    DownloadDay,
    Hit,
    ListenerCount,
    MediaFile,
    UnknownUserAgent,
)
from amphora.runtime import Runtime
from tests.delivery.seed import SeededEpisode, seed_episode, seed_show, set_row

APPLE = "Podcasts/1410.53 CFNetwork/1111 Darwin/19.0.0 (x86_64)"
OVERCAST = "Overcast/3.0 (+http://overcast.fm/; iOS podcast app)"
WATCH = "atc/1.0 watchOS/7.1 model/Watch4,2 hwp/t8006 build/18R590 (6; dt:191)"
BOT_LIBRARY = "Python/3.10 aiohttp/3.9.3"  # libraries.json, category bot
UNKNOWN = "FancyNewPlayer/0.1 (made up for this test)"
SIZE, BITRATE, ID3 = 50_000_000, 128_000, 4_096
MINUTE = ID3 + 960_000  # the threshold of that file


def _first_monday_of_last_month() -> datetime:
    """10:00 UTC on a Monday a month or two ago: every day the tests use is in the past, in
    the hit retention, and its first three days are in one month."""
    first = (utcnow().date().replace(day=1) - timedelta(days=1)).replace(day=1)
    monday = first + timedelta(days=(7 - first.weekday()) % 7)
    return datetime.combine(monday, datetime.min.time(), UTC).replace(hour=10)


T0 = _first_monday_of_last_month()


def day(offset: int) -> date:
    """The day ``offset`` days after T0's."""
    return T0.date() + timedelta(days=offset)


AppRT = tuple[Runtime, httpx.AsyncClient]


@dataclass
class Req:
    """One raw hit as the delivery endpoint records it."""

    at: datetime
    sent: int | None
    ua: str | None = APPLE
    ip: str = "198.51.100.20"
    method: str = "GET"
    status: int = 206
    range: str | None = None
    subscriber: uuid.UUID | None = None


async def long_episode(rt: Runtime, show: Any = None, **media: Any) -> SeededEpisode:
    """A published episode whose file is a 50 MB, 128 kbit/s MP3 (as far as counting sees)."""
    show = show or await seed_show(rt)
    episode = await seed_episode(rt, show, publish_at=T0 - timedelta(days=30))
    values = {"size": SIZE, "bitrate": BITRATE, "id3_size": ID3, **media}
    await set_row(rt, MediaFile, episode.media_id, **values)
    return episode


async def record(rt: Runtime, episode: SeededEpisode, *requests: Req) -> None:
    key = client_hash_key(rt.settings.resolved_secret_key)
    rows = [
        hit_row(
            key=key,
            at=r.at,
            show_id=episode.show.id,
            episode_id=episode.id,
            media_id=episode.media_id,
            subscriber_id=r.subscriber,
            method=r.method,
            status=r.status,
            range_header=r.range,
            bytes_sent=r.sent,
            client_address=r.ip,
            user_agent=r.ua,
            referer=None,
            session_id=None,
        )
        for r in requests
    ]
    async with rt.db.session() as session:
        await session.execute(Hit.metadata.tables["hits"].insert(), rows)


async def process(rt: Runtime) -> service.ProcessReport:
    report = await service.process(rt.db, rt.cache, rt.settings)
    assert report is not None
    return report


async def downloads(rt: Runtime, episode: SeededEpisode | None = None) -> list[Download]:
    async with rt.db.session(write=False) as session:
        query = select(Download).order_by(Download.at)
        if episode is not None:
            query = query.where(Download.episode_id == episode.id)
        return list(await session.scalars(query))


async def daily(rt: Runtime, episode: SeededEpisode) -> dict[date, int]:
    async with rt.db.session(write=False) as session:
        rows = await session.execute(
            select(DownloadDay.day, DownloadDay.downloads).where(
                DownloadDay.episode_id == episode.id
            )
        )
        return {day: count for day, count in rows}


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# --- the rules, one by one -----------------------------------------------------------------------


async def test_head_and_the_probe_never_count(analytics_app: AppRT) -> None:
    rt, _ = analytics_app
    episode = await long_episode(rt)
    await record(
        rt,
        episode,
        Req(at(0), 0, method="HEAD", status=200),
        Req(at(1), 2, range="bytes=0-1"),
        Req(at(2), 2, range="bytes=0-1"),
    )
    await process(rt)
    assert await downloads(rt) == []


async def test_partial_ranges_count_once_their_sum_reaches_a_minute(analytics_app: AppRT) -> None:
    rt, _ = analytics_app
    episode = await long_episode(rt)
    await record(
        rt,
        episode,
        Req(at(0), 2, range="bytes=0-1"),
        Req(at(5), 500_000, range="bytes=2-500001"),
        Req(at(9), MINUTE - 500_002 - 1, range="bytes=500002-"),  # one byte short
    )
    await process(rt)
    assert await downloads(rt) == []
    await record(rt, episode, Req(at(40), 1, range="bytes=964095-964095"))
    await process(rt)
    (counted,) = await downloads(rt)
    assert counted.at == at(40) and counted.day == day(0) and counted.hour == 10
    assert counted.app == "Apple Podcasts"


async def test_a_short_episode_needs_every_byte(analytics_app: AppRT) -> None:
    rt, _ = analytics_app
    episode = await long_episode(rt, size=30_000)  # 30 kB < one minute of 128 kbit/s
    await record(rt, episode, Req(at(0), 29_999, status=200))
    await process(rt)
    assert await downloads(rt) == []
    await record(rt, episode, Req(at(60), 30_000, status=200))
    await process(rt)
    assert len(await downloads(rt)) == 1


async def test_ipv6_addresses_of_one_64_are_one_listener(analytics_app: AppRT) -> None:
    rt, _ = analytics_app
    episode = await long_episode(rt)
    half = MINUTE // 2 + 1
    await record(
        rt,
        episode,
        Req(at(0), half, ip="2001:db8:1:2::10"),
        Req(at(30), half, ip="2001:db8:1:2:aaaa:bbbb:cccc:dddd"),  # same /64: sums
        Req(at(60), half, ip="2001:db8:1:3::10"),  # another /64: alone, short
    )
    await process(rt)
    (counted,) = await downloads(rt)
    assert counted.at == at(30)


async def test_one_download_per_key_and_episode_per_rolling_day(analytics_app: AppRT) -> None:
    rt, _ = analytics_app
    episode = await long_episode(rt)
    await record(
        rt,
        episode,
        Req(at(0), MINUTE),
        Req(at(3_600), MINUTE),  # inside the window
        Req(at(86_399), MINUTE),  # still inside
        Req(at(86_400), MINUTE),  # a new download
        Req(at(90_000), MINUTE, ua=OVERCAST),  # another app: another listener key
    )
    await process(rt)
    counted = await downloads(rt)
    assert [d.at for d in counted] == [at(0), at(86_400), at(90_000)]
    assert {d.listener for d in counted[:2]} == {counted[0].listener} != {counted[2].listener}
    assert await daily(rt, episode) == {day(0): 1, day(1): 2}


async def test_a_download_crossing_midnight_is_dated_when_the_minute_is_reached(
    analytics_app: AppRT,
) -> None:
    rt, _ = analytics_app
    episode = await long_episode(rt)
    before_midnight = T0.replace(hour=23, minute=59, second=30)
    await record(
        rt,
        episode,
        Req(before_midnight, MINUTE // 2),
        Req(before_midnight + timedelta(seconds=60), MINUTE // 2 + 1),
    )
    await process(rt)
    (counted,) = await downloads(rt)
    assert counted.day == day(1) and counted.hour == 0
    assert await daily(rt, episode) == {day(1): 1}


@pytest.mark.parametrize(
    "agent", [WATCH, "(null)/(null) watchOS/5.0.1 model/Watch3,3", BOT_LIBRARY, None, ""]
)
async def test_bots_watches_bot_libraries_and_missing_agents_are_out(
    analytics_app: AppRT, agent: str | None
) -> None:
    rt, _ = analytics_app
    episode = await long_episode(rt)
    await record(rt, episode, Req(at(0), SIZE, ua=agent, status=200))
    await process(rt)
    assert await downloads(rt) == []


async def test_redirected_requests_count_the_bytes_they_handed_over(analytics_app: AppRT) -> None:
    rt, _ = analytics_app
    episode = await long_episode(rt)
    await record(
        rt,
        episode,
        Req(at(0), 2, status=302, range="bytes=0-1"),
        Req(at(1), 100_000, status=302, range="bytes=0-99999"),
        Req(at(2), 0, method="HEAD", status=302),
    )
    await process(rt)
    assert await downloads(rt) == []
    await record(rt, episode, Req(at(3), SIZE, status=302))  # the whole file
    await process(rt)
    assert len(await downloads(rt)) == 1


# --- incremental, late, reprocessed --------------------------------------------------------------


async def test_late_hits_change_the_figures_as_if_they_had_come_in_time(
    analytics_app: AppRT,
) -> None:
    rt, _ = analytics_app
    episode = await long_episode(rt)
    # Processed first: a full listen on day 2 at 12:00.
    await record(rt, episode, Req(at(26 * 3_600), MINUTE))
    await process(rt)
    assert [d.at for d in await downloads(rt)] == [at(26 * 3_600)]
    # A log arrives later: the same listener downloaded on day 1 at 20:00, so the day-2 request
    # falls inside that download's 24 hours and the day-2 download goes.
    await record(rt, episode, Req(at(10 * 3_600), MINUTE))
    await process(rt)
    assert [d.at for d in await downloads(rt)] == [at(10 * 3_600)]
    assert await daily(rt, episode) == {day(0): 1}


async def test_processing_again_and_reprocessing_any_days_change_nothing(
    analytics_app: AppRT,
) -> None:
    rt, _ = analytics_app
    episode = await long_episode(rt)
    other = await long_episode(rt)
    requests = []
    for n in range(10):
        for listener in range(5):
            start = at(n * 86_400 + listener * 7_000)
            ip = f"198.51.100.{listener + 1}"
            requests += [
                Req(start, 2, ip=ip, range="bytes=0-1"),
                Req(start + timedelta(seconds=3), MINUTE // 3, ip=ip),
                Req(
                    start + timedelta(seconds=400 * (listener + 1)),
                    MINUTE * 2 // 3 if (listener + n) % 3 else MINUTE // 4,
                    ip=ip,
                ),
            ]
    await record(rt, episode, *requests)
    await record(rt, other, *requests[:30])
    await process(rt)
    before = await _figures(rt)
    assert before["downloads"] > 0
    assert (await process(rt)).downloads_added == 0  # nothing new
    assert await _figures(rt) == before
    ranges = [(day(0), day(9)), (day(3), day(5))]
    ranges += [(day(n), day(n)) for n in range(-1, 11)]
    for first, last in ranges:
        await service.process_again(rt.db, rt.cache, rt.settings, first=first, last=last)
        assert await _figures(rt) == before, (first, last)


async def _figures(rt: Runtime) -> dict[str, Any]:
    async with rt.db.session(write=False) as session:
        return {
            "downloads": await session.scalar(select(func.count()).select_from(Download)),
            "list": sorted(
                (str(d.episode_id), d.listener, d.at.isoformat())
                for d in await session.scalars(select(Download))
            ),
            "days": sorted(
                (str(e), str(d), n)
                for e, d, n in await session.execute(
                    select(DownloadDay.episode_id, DownloadDay.day, DownloadDay.downloads)
                )
            ),
            "breakdowns": sorted(
                tuple(map(str, row))
                for row in await session.execute(
                    select(
                        DownloadBreakdown.dimension,
                        DownloadBreakdown.day,
                        DownloadBreakdown.value,
                        DownloadBreakdown.downloads,
                    )
                )
            ),
            "listeners": sorted(
                tuple(map(str, row))
                for row in await session.execute(
                    select(ListenerCount.period, ListenerCount.start, ListenerCount.listeners)
                )
            ),
        }


async def test_unique_listeners_are_counted_from_keys_not_summed(analytics_app: AppRT) -> None:
    rt, _ = analytics_app
    episode = await long_episode(rt)
    # The same two listeners on Monday and Tuesday, a third on Wednesday.
    await record(
        rt,
        episode,
        Req(at(0), MINUTE, ip="198.51.100.1"),
        Req(at(60), MINUTE, ip="198.51.100.2"),
        Req(at(86_400 + 100), MINUTE, ip="198.51.100.1"),
        Req(at(86_400 + 160), MINUTE, ip="198.51.100.2"),
        Req(at(2 * 86_400 + 200), MINUTE, ip="198.51.100.3"),
    )
    await process(rt)
    async with rt.db.session(write=False) as session:
        counts = {
            (period, start): n
            for period, start, n in await session.execute(
                select(ListenerCount.period, ListenerCount.start, ListenerCount.listeners)
            )
        }
    assert counts[("day", day(0))] == 2
    assert counts[("day", day(1))] == 2
    assert counts[("day", day(2))] == 1
    assert counts[("week", day(0))] == 3  # not 5
    assert counts[("month", T0.date().replace(day=1))] == 3
    assert (await downloads(rt))[0].listener == listener_key((await _hit_hash(rt)), APPLE)


async def _hit_hash(rt: Runtime) -> str:
    async with rt.db.session(write=False) as session:
        value = await session.scalar(select(Hit.client_hash).order_by(Hit.id).limit(1))
        assert value is not None
        return value


async def test_unknown_user_agents_are_listed_with_their_counts(analytics_app: AppRT) -> None:
    rt, _ = analytics_app
    episode = await long_episode(rt)
    await record(rt, episode, Req(at(0), MINUTE, ua=UNKNOWN), Req(at(5), 100, ua=UNKNOWN))
    await process(rt)
    await process(rt)  # seen once, however often processing runs
    async with rt.db.session(write=False) as session:
        (row,) = await session.scalars(select(UnknownUserAgent))
    assert (row.user_agent, row.hits) == (UNKNOWN, 2)
    # Unknown apps still count: they are not bots.
    (counted,) = await downloads(rt)
    assert counted.app is None


async def test_breakdowns_and_subscribers(analytics_app: AppRT) -> None:
    rt, _ = analytics_app
    episode = await long_episode(rt)
    subscriber = uuid.uuid4()
    await record(
        rt,
        episode,
        Req(at(0), MINUTE, ip="198.51.100.1"),
        Req(at(10), MINUTE, ip="198.51.100.2", ua=OVERCAST, subscriber=subscriber),
    )
    await process(rt)
    async with rt.db.session(write=False) as session:
        rows = await session.execute(
            select(
                DownloadBreakdown.dimension, DownloadBreakdown.value, DownloadBreakdown.downloads
            )
        )
        found = {(dimension, value): n for dimension, value, n in rows}
    assert found[("app", "Apple Podcasts")] == 1 and found[("app", "Overcast")] == 1
    assert found[("hour", "10")] == 2
    assert found[("country", "")] == 2  # no GeoIP database configured
    assert [uuid.UUID(v) for (d, v) in found if d == "subscriber"] == [subscriber]


@pytest.mark.parametrize("margin", [0, 3])
async def test_runs_after_every_few_hits_count_as_one_run_over_all(
    analytics_app: AppRT, monkeypatch: pytest.MonkeyPatch, margin: int
) -> None:
    """Hits arriving a few at a time, processed after each arrival (with no re-read margin,
    or a small one, so that every run starts from the state the last one left), end with
    the figures of counting them all at once."""
    monkeypatch.setattr(processing, "REPLAY_MARGIN_IDS", margin)
    rt, _ = analytics_app
    episode = await long_episode(rt)
    requests = []
    for n in range(4):
        for listener in range(3):
            start = at(n * 80_000 + listener * 5_000)
            ip = f"198.51.100.{listener + 1}"
            requests += [
                Req(start, 2, ip=ip, range="bytes=0-1"),
                Req(start + timedelta(seconds=30), MINUTE // 3, ip=ip),
                Req(start + timedelta(hours=listener + 1), MINUTE // 2 + listener, ip=ip),
            ]
    # Out of time order, as logs and several servers deliver them.
    order = list(range(len(requests)))
    order.reverse()
    for start in range(0, len(order), 5):
        await record(rt, episode, *(requests[i] for i in order[start : start + 5]))
        await process(rt)
    incremental = await _figures(rt)
    assert incremental["downloads"] > 0
    await service.process_again(rt.db, rt.cache, rt.settings, first=day(-1), last=day(6))
    assert await _figures(rt) == incremental
