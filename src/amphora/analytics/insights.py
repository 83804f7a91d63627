"""Read-only queries over the rollups, shaped for dashboards (the insights API's data).

Every figure comes from the rollup tables that processing maintains (``download_days``,
``download_breakdowns``, ``listener_counts``, ``listener_days``), so a query over a year of a
big show reads hundreds of rows, not millions of downloads. Unique listeners are never added
up across days: a week's or a month's figure is the number of distinct listener keys in it.
Only per-episode listener counts read the downloads themselves (one episode's rows).
"""

from __future__ import annotations

import statistics
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Date, Integer, String, cast, func, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from amphora.analytics.errors import BadPeriod, UnknownEpisode
from amphora.analytics.processing import (
    DIMENSIONS,
    LAUNCH_DAYS,
    ROLLING,
    ROLLING_DAYS,
    TOTAL,
    first_days,
    month_end,
    month_start,
    release_day,
    week_start,
)
from amphora.models import (
    Download,
    DownloadBreakdown,
    DownloadDay,
    DownloadMonth,
    Episode,
    EpisodeLaunch,
    ListenerCount,
    ListenerDay,
    Show,
)

MAX_SPAN_DAYS = 3 * 366 + 1
DEFAULT_SPAN_DAYS = 30
PEERS = 50  # episodes an episode's performance is compared with


class Interval(StrEnum):
    day = "day"
    week = "week"
    month = "month"


@dataclass(frozen=True, slots=True)
class Period:
    first: date
    last: date

    @classmethod
    def of(cls, first: date | None, last: date | None, *, today: date) -> Period:
        """The days asked for: ``to`` defaults to today, ``from`` to 30 days before it."""
        last = last or today
        first = first or last - timedelta(days=DEFAULT_SPAN_DAYS - 1)
        if first > last:
            raise BadPeriod("'from' is after 'to'.")
        if (last - first).days + 1 > MAX_SPAN_DAYS:
            raise BadPeriod(f"At most {MAX_SPAN_DAYS} days at a time.")
        return cls(first, last)

    def days(self) -> Iterable[date]:
        day = self.first
        while day <= self.last:
            yield day
            day += timedelta(days=1)


def bucket(day: date, interval: Interval) -> date:
    if interval is Interval.week:
        return week_start(day)
    if interval is Interval.month:
        return month_start(day)
    return day


def _buckets(period: Period, interval: Interval) -> list[date]:
    seen: dict[date, None] = {}
    for day in period.days():
        seen.setdefault(bucket(day, interval))
    return list(seen)


# --- dialect helpers ---------------------------------------------------------------------------


def _days_after(session: AsyncSession, day: Any, start: Any) -> ColumnElement[int]:
    """Whole days from ``start`` to ``day`` (both dates)."""
    if session.get_bind().dialect.name == "sqlite":
        return cast(func.julianday(day) - func.julianday(start), Integer)
    return cast(day - start, Integer)


async def _episode_of_show(
    session: AsyncSession, show_id: uuid.UUID, episode_id: uuid.UUID
) -> Episode:
    episode = await session.get(Episode, episode_id)
    if episode is None or episode.show_id != show_id or episode.deleted_at is not None:
        raise UnknownEpisode
    return episode


def _total(show_id: uuid.UUID | None = None) -> list[ColumnElement[bool]]:
    """The breakdown rows holding shows' daily totals (of one show, or of every show)."""
    where = [DownloadBreakdown.dimension == TOTAL]
    if show_id is not None:
        where.append(DownloadBreakdown.show_id == show_id)
    return where


# --- series --------------------------------------------------------------------------------------


async def downloads_series(
    session: AsyncSession,
    *,
    show_id: uuid.UUID,
    period: Period,
    interval: Interval,
    episode_id: uuid.UUID | None = None,
) -> list[tuple[date, int]]:
    """Downloads per day, week or month (every bucket of the period, zeros included)."""
    if episode_id is None:
        query = select(DownloadBreakdown.day, DownloadBreakdown.downloads).where(
            *_total(show_id), DownloadBreakdown.day >= period.first
        )
        rows = await session.execute(query.where(DownloadBreakdown.day <= period.last))
    else:
        await _episode_of_show(session, show_id, episode_id)
        rows = await session.execute(
            select(DownloadDay.day, DownloadDay.downloads).where(
                DownloadDay.episode_id == episode_id,
                DownloadDay.day >= period.first,
                DownloadDay.day <= period.last,
            )
        )
    totals: dict[date, int] = dict.fromkeys(_buckets(period, interval), 0)
    for day, count in rows:
        totals[bucket(day, interval)] += int(count)
    return list(totals.items())


async def listeners_series(
    session: AsyncSession,
    *,
    show_id: uuid.UUID,
    period: Period,
    interval: Interval,
    episode_id: uuid.UUID | None = None,
) -> list[tuple[date, int]]:
    """Unique listeners per calendar day, ISO week or month overlapping the period (a week
    or month is counted whole, from its listener keys)."""
    starts = _buckets(period, interval)
    counts: dict[date, int] = dict.fromkeys(starts, 0)
    if episode_id is None:
        rows = await session.execute(
            select(ListenerCount.start, ListenerCount.listeners).where(
                ListenerCount.show_id == show_id,
                ListenerCount.period == interval.value,
                ListenerCount.start >= starts[0],
                ListenerCount.start <= starts[-1],
            )
        )
        for start, listeners in rows:
            counts[start] = int(listeners)
        return list(counts.items())
    await _episode_of_show(session, show_id, episode_id)
    last = starts[-1]
    if interval is Interval.week:
        last += timedelta(days=6)
    elif interval is Interval.month:
        last = (last.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    keys: dict[date, set[str]] = defaultdict(set)
    found = await session.execute(
        select(Download.day, Download.listener).where(
            Download.episode_id == episode_id, Download.day >= starts[0], Download.day <= last
        )
    )
    for day, listener in found:
        keys[bucket(day, interval)].add(listener)
    return [(start, len(keys.get(start, ()))) for start in starts]


async def unique_listeners(session: AsyncSession, *, show_id: uuid.UUID, last: date) -> int:
    """Unique listeners of the 30 days ending on ``last``: kept by processing for the last
    day it changed, counted from the listener keys otherwise."""
    first = last - timedelta(days=ROLLING_DAYS - 1)
    kept = await session.scalar(
        select(ListenerCount.listeners).where(
            ListenerCount.show_id == show_id,
            ListenerCount.period == ROLLING,
            ListenerCount.start == first,
        )
    )
    if kept is not None:
        return int(kept)
    count = await session.scalar(
        select(func.count(func.distinct(ListenerDay.listener))).where(
            ListenerDay.show_id == show_id, ListenerDay.day >= first, ListenerDay.day <= last
        )
    )
    return int(count or 0)


# --- summaries -----------------------------------------------------------------------------------


async def _downloads_since(session: AsyncSession, show_id: uuid.UUID, first: date | None) -> int:
    where = _total(show_id)
    if first is not None:
        where.append(DownloadBreakdown.day >= first)
    total = await session.scalar(select(func.sum(DownloadBreakdown.downloads)).where(*where))
    return int(total or 0)


async def summary(session: AsyncSession, *, show_id: uuid.UUID, today: date) -> dict[str, Any]:
    release = release_day(session)
    released = dict(
        (
            await session.execute(
                select(Episode.id, release).where(
                    Episode.show_id == show_id,
                    Episode.deleted_at.is_(None),
                    Episode.publish_at.is_not(None),
                    release <= literal(today, Date),
                )
            )
        ).all()
    )
    launches = {
        row[0]: row[1:]
        for row in await session.execute(
            select(
                EpisodeLaunch.episode_id,
                EpisodeLaunch.day_1,
                EpisodeLaunch.day_7,
                EpisodeLaunch.day_30,
            ).where(EpisodeLaunch.show_id == show_id)
        )
    }
    averages: dict[str, float | None] = {}
    for position, days in enumerate(LAUNCH_DAYS):
        # Only episodes out for the whole span: a new episode would drag the average down.
        firsts = [
            launches[eid][position] if eid in launches else 0
            for eid, day in released.items()
            if (today - day).days + 1 > days
        ]
        averages[f"day_{days}"] = round(statistics.fmean(firsts), 2) if firsts else None
    return {
        "show_id": show_id,
        "as_of": today,
        "episodes": len(released),
        "downloads": {
            "all_time": await _downloads_since(session, show_id, None),
            "last_7_days": await _downloads_since(session, show_id, today - timedelta(days=6)),
            "last_30_days": await _downloads_since(session, show_id, today - timedelta(days=29)),
        },
        "unique_listeners_30_days": await unique_listeners(session, show_id=show_id, last=today),
        "average_downloads_per_episode": averages,
    }


def _episode_downloads(period: Period | None, *where_show: Any) -> Any:
    """Downloads per episode in the period (None: all time) as a subquery ``(episode_id,
    show_id, downloads)``: whole months from ``download_months``, the days before the first
    and after the last whole month from ``download_days``."""
    months = select(DownloadMonth.episode_id, DownloadMonth.show_id, DownloadMonth.downloads)
    days = select(DownloadDay.episode_id, DownloadDay.show_id, DownloadDay.downloads)
    months = months.where(*[c(DownloadMonth) for c in where_show])
    days = days.where(*[c(DownloadDay) for c in where_show])
    if period is None:
        parts = [months]
    else:
        first, last = period.first, period.last
        whole_from = first if first.day == 1 else month_end(first) + timedelta(days=1)
        whole_to = last if last == month_end(last) else month_start(last) - timedelta(days=1)
        if whole_from > whole_to:
            parts = [days.where(DownloadDay.day >= first, DownloadDay.day <= last)]
        else:
            parts = [
                months.where(DownloadMonth.month >= whole_from, DownloadMonth.month <= whole_to),
                days.where(DownloadDay.day >= first, DownloadDay.day < whole_from),
                days.where(DownloadDay.day > whole_to, DownloadDay.day <= last),
            ]
    rows = union_all(*parts).subquery()
    return (
        select(rows.c.episode_id, rows.c.show_id, func.sum(rows.c.downloads).label("downloads"))
        .group_by(rows.c.episode_id, rows.c.show_id)
        .subquery()
    )


def _of_show(show_id: uuid.UUID) -> Any:
    return lambda table: table.show_id == show_id


async def top_episodes(
    session: AsyncSession, *, show_id: uuid.UUID, period: Period | None, limit: int
) -> list[dict[str, Any]]:
    ranked = _episode_downloads(period, _of_show(show_id))
    rows = await session.execute(
        select(Episode.id, Episode.title, Episode.publish_at, ranked.c.downloads)
        .join(ranked, ranked.c.episode_id == Episode.id)
        .where(Episode.deleted_at.is_(None))
        .order_by(ranked.c.downloads.desc(), Episode.publish_at.desc())
        .limit(limit)
    )
    return [
        {"episode_id": eid, "title": title, "published_at": published, "downloads": int(count)}
        for eid, title, published, count in rows
    ]


async def breakdown(
    session: AsyncSession, *, show_id: uuid.UUID, dimension: str, period: Period, limit: int
) -> dict[str, Any]:
    """Downloads by one dimension over the period, largest first; ``value`` None: unknown."""
    assert dimension in DIMENSIONS
    total = func.sum(DownloadBreakdown.downloads)
    rows = (
        await session.execute(
            select(DownloadBreakdown.value, total)
            .where(
                DownloadBreakdown.show_id == show_id,
                DownloadBreakdown.dimension == dimension,
                DownloadBreakdown.day >= period.first,
                DownloadBreakdown.day <= period.last,
            )
            .group_by(DownloadBreakdown.value)
            .order_by(total.desc(), DownloadBreakdown.value)
        )
    ).all()
    overall = sum(int(count) for _, count in rows)
    items = [
        {
            "value": _dimension_value(dimension, value),
            "downloads": int(count),
            "share": round(int(count) / overall, 4) if overall else 0.0,
        }
        for value, count in rows[:limit]
    ]
    return {"dimension": dimension, "total": overall, "items": items}


def _dimension_value(dimension: str, value: str) -> str | None:
    if value == "":
        return None
    if dimension == "subscriber":
        return str(uuid.UUID(value))  # hex on SQLite, hyphenated on PostgreSQL
    return value


async def episode_performance(
    session: AsyncSession, *, show_id: uuid.UUID, episode_id: uuid.UUID, days: int, today: date
) -> dict[str, Any]:
    """Downloads day by day since release (day 1 = the release day), and the median of the
    cumulative downloads of the show's episodes released just before it (up to ``PEERS``;
    the first episode is compared with those after it) on the same day after their release
    (only episodes out that long take part)."""
    episode = await _episode_of_show(session, show_id, episode_id)
    if episode.publish_at is None or episode.publish_at.date() > today:
        raise UnknownEpisode("This episode is not released yet.")
    released = episode.publish_at.date()
    span = min(days, (today - released).days + 1)
    release = release_day(session)
    released_of_show = [
        Episode.show_id == show_id,
        Episode.deleted_at.is_(None),
        Episode.publish_at.is_not(None),
        Episode.id != episode_id,
        release <= today,
    ]
    peers = list(
        await session.scalars(
            select(Episode.id)
            .where(*released_of_show, Episode.publish_at < episode.publish_at)
            .order_by(Episode.publish_at.desc())
            .limit(PEERS)
        )
    ) or list(
        await session.scalars(
            select(Episode.id)
            .where(*released_of_show, Episode.publish_at > episode.publish_at)
            .order_by(Episode.publish_at)
            .limit(PEERS)
        )
    )
    age = _days_after(session, DownloadDay.day, release)
    rows = await session.execute(
        select(
            cast(Episode.id, String),  # text: no UUID object made per row
            Episode.id == episode_id,
            _days_after(session, literal(today, Date), release),
            age,
            DownloadDay.downloads,
        )
        .outerjoin(DownloadDay, first_days(session, span))
        .where(Episode.id.in_([episode_id, *peers]))
    )
    per_episode: dict[str, list[int]] = {}
    out_for: dict[str, int] = {}
    mine_key = ""
    for eid, is_mine, out, offset, count in rows:
        daily = per_episode.setdefault(eid, [0] * span)
        out_for[eid] = int(out) + 1
        if is_mine:
            mine_key = eid
        if offset is not None and 0 <= offset < span:
            daily[int(offset)] += int(count)
    mine = per_episode.get(mine_key, [0] * span)
    others = {eid: _cumulative(d) for eid, d in per_episode.items() if eid != mine_key}
    points = []
    cumulative = 0
    for offset in range(span):
        cumulative += mine[offset]
        values = [c[offset] for eid, c in others.items() if out_for[eid] > offset]
        points.append(
            {
                "day": offset + 1,
                "date": released + timedelta(days=offset),
                "downloads": mine[offset],
                "cumulative": cumulative,
                "median_cumulative": statistics.median(values) if values else None,
            }
        )
    return {
        "episode_id": episode_id,
        "title": episode.title,
        "published_at": episode.publish_at,
        "episodes_compared": len(others),
        "days": points,
    }


def _cumulative(values: list[int]) -> list[int]:
    out, running = [], 0
    for value in values:
        running += value
        out.append(running)
    return out


# --- across shows (superusers) -------------------------------------------------------------------


async def admin_summary(session: AsyncSession, *, period: Period, limit: int) -> dict[str, Any]:
    in_period = [DownloadBreakdown.day >= period.first, DownloadBreakdown.day <= period.last]
    total, shows = (
        await session.execute(
            select(
                func.coalesce(func.sum(DownloadBreakdown.downloads), 0),
                func.count(func.distinct(DownloadBreakdown.show_id)),
            ).where(*_total(), *in_period)
        )
    ).one()
    per_episode = _episode_downloads(period)
    episodes = await session.scalar(select(func.count()).select_from(per_episode))
    downloads = func.sum(DownloadBreakdown.downloads).label("downloads")
    top_shows = await session.execute(
        select(Show.id, Show.title, downloads)
        .join(DownloadBreakdown, DownloadBreakdown.show_id == Show.id)
        .where(*_total(), *in_period)
        .group_by(Show.id, Show.title)
        .order_by(downloads.desc())
        .limit(limit)
    )
    app_total = func.sum(DownloadBreakdown.downloads).label("downloads")
    top_apps = await session.execute(
        select(DownloadBreakdown.value, app_total)
        .where(DownloadBreakdown.dimension == "app", *in_period)
        .group_by(DownloadBreakdown.value)
        .order_by(app_total.desc())
        .limit(limit)
    )
    return {
        "from": period.first,
        "to": period.last,
        "downloads": int(total),
        "shows": int(shows),
        "episodes": int(episodes or 0),
        "top_shows": [
            {"show_id": sid, "title": title, "downloads": int(count)}
            for sid, title, count in top_shows
        ],
        "top_apps": [
            {"value": value or None, "downloads": int(count)} for value, count in top_apps
        ],
    }
