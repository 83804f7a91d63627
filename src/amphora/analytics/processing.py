"""Turning new raw hits into counted downloads, then into rollups (the periodic job's work).

A run reads the hits after the last one processed (``analytics_state``), groups them by
listener key and episode (a *pair*), and replays each pair from its earliest new hit with the
state :mod:`amphora.analytics.counting` needs there: the pair's last download before that
moment and its requests of the 24 hours before. The pair's downloads from that moment on are
replaced by the replay's. Because the replay depends on nothing else, hits that arrive late
(an imported log of last week) and runs that see the same hits twice change nothing that was
right, and reprocessing days (``reprocess``) is the same operation with chosen hits.

Reading and counting happen outside any write transaction; the results are written in one
short transaction that first checks that no other run has moved the mark meanwhile (several
workers may run the job at once: one wins, the others find nothing new next time).

Then the rollups of every (show, day) whose downloads changed are computed again from the
downloads, in SQL: daily downloads per episode, breakdowns per dimension, the listener keys
of each day, and unique listeners per day, ISO week and month from those keys.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    Float,
    Select,
    String,
    and_,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from amphora.analytics.counting import (
    DAY,
    REDIRECTS,
    count_downloads,
    threshold_bytes,
)
from amphora.analytics.useragents import Agent, UserAgents
from amphora.kit.db import Database
from amphora.models import (
    AnalyticsState,
    Download,
    DownloadBreakdown,
    DownloadDay,
    DownloadMonth,
    Episode,
    EpisodeLaunch,
    Hit,
    ListenerCount,
    ListenerDay,
    MediaFile,
    UnknownUserAgent,
)

__all__ = [
    "DIMENSIONS",
    "ProcessReport",
    "listener_key",
    "process_new_hits",
    "reprocess",
]

logger = logging.getLogger("amphora.analytics.processing")

MARK = "hits"
# Ids below the mark are read again: on PostgreSQL a hit can commit after one with a higher
# id (two writers at once). Replaying them is harmless (idempotent), missing them is not.
REPLAY_MARGIN_IDS = 10_000
BATCH_IDS = 1_000_000
IN_CHUNK = 500  # ids per IN (...) list
FEW_LISTENERS = 2_000  # up to this many, context hits are read per listener
WRITE_CHUNK = 5_000  # rows per INSERT executemany
READ_CHUNK = 20_000  # pair rows fetched at a time
APP_KINDS = frozenset({"app", "library", "browser"})

# The breakdown that holds a show's total downloads per day.
TOTAL = "total"
# Breakdown dimensions and the download column each is drawn from.
DIMENSIONS: dict[str, Any] = {
    "app": Download.app,
    "device": Download.device,
    "os": Download.os,
    "referrer": Download.referrer,
    "country": Download.country,
    "region": Download.region,
    "hour": Download.hour,
    "subscriber": Download.subscriber_id,
}


@dataclass
class ProcessReport:
    hits: int = 0  # hits read (the replay margin included)
    pairs: int = 0  # listener-episode pairs replayed
    downloads_added: int = 0
    downloads_removed: int = 0
    shows: set[uuid.UUID] = field(default_factory=set)  # whose figures changed
    seconds: dict[str, float] = field(default_factory=dict)  # per phase: read, count, ...

    def add(self, other: ProcessReport) -> None:
        self.hits += other.hits
        self.pairs += other.pairs
        self.downloads_added += other.downloads_added
        self.downloads_removed += other.downloads_removed
        self.shows |= other.shows
        for phase, seconds in other.seconds.items():
            self.time(phase, seconds)

    def time(self, phase: str, seconds: float) -> None:
        self.seconds[phase] = round(self.seconds.get(phase, 0.0) + seconds, 3)


def listener_key(client_hash: str, user_agent: str) -> str:
    """The listener key stored with downloads: client hash and User-Agent, hashed together."""
    return hashlib.blake2b(
        f"{client_hash}\x00{user_agent}".encode(errors="surrogatepass"), digest_size=16
    ).hexdigest()


def _epoch(column: Any, dialect: str) -> ColumnElement[float]:
    """A timestamp column as unix seconds, computed by the database (no datetime objects)."""
    if dialect == "sqlite":
        # Stored as 'YYYY-MM-DD HH:MM:SS.ffffff': whole seconds plus the fraction (julianday
        # would lose microseconds).
        text = type_coerce(column, String)
        return type_coerce(
            cast(func.strftime("%s", text), Float) + cast(func.substr(text, 20), Float), Float
        )
    # date_part is double precision already (EXTRACT is numeric, much slower to make).
    return type_coerce(func.date_part("epoch", column), Float)


def _raw(column: Any) -> Any:
    # Ids as text (hex on SQLite, where that is how they are stored; hyphenated on
    # PostgreSQL): grouping millions of hits by id hashes them, and text caches its hash.
    return cast(column, String)


# Only hits that can take part: GET requests with a User-Agent that delivered bytes (a
# redirect to object storage records the bytes it handed over). The database drops the rest,
# which Python would only skip.
_COUNTABLE = [
    Hit.episode_id.is_not(None),
    Hit.method == "GET",
    Hit.user_agent.is_not(None),
    Hit.bytes_sent > 0,
    or_((Hit.status >= 200) & (Hit.status < 300), Hit.status.in_(sorted(REDIRECTS))),
]


def _hit_columns(dialect: str) -> list[Any]:
    """What counting needs of each hit, and nothing more: with millions of hits, every
    column is a Python object made per hit."""
    return [
        Hit.id,
        _raw(Hit.episode_id),
        Hit.client_hash,
        Hit.user_agent,
        _epoch(Hit.at, dialect),
        Hit.bytes_sent,
        _raw(Hit.media_id),
        Hit.referer,
        Hit.country,
        Hit.region,
        _raw(Hit.subscriber_id),
    ]


@dataclass
class _Pair:
    show: Any
    episode: Any
    client_hash: str
    user_agent: str
    agent: Agent
    media: Any
    referer: str | None
    country: str | None
    region: str | None
    subscriber: Any
    hits: list[tuple[float, int, int]] = field(default_factory=list)  # (at, id, bytes)
    start: float = math.inf  # earliest new hit: replay from here


@dataclass
class _Plan:
    """What one step read: the pairs to replay and what the database holds around them."""

    mark: int
    top: int
    dialect: str
    hits: int = 0
    pairs: dict[tuple[Any, str, str], _Pair] = field(default_factory=dict)
    agents: dict[str, Agent] = field(default_factory=dict)
    unknown: dict[str, list[Any]] = field(default_factory=dict)  # ua -> [hits, first, last]
    media: dict[uuid.UUID, int] = field(default_factory=dict)  # thresholds
    # existing downloads near the replays, per (episode, listener): (id, at, day, show)
    downloads: dict[tuple[Any, str], list[tuple[int, float, date, Any]]] = field(
        default_factory=dict
    )


# --- reading -------------------------------------------------------------------------------------


async def _mark(session: AsyncSession, *, lock: bool = False) -> int:
    query = select(AnalyticsState.value).where(AnalyticsState.name == MARK)
    if lock:
        query = query.with_for_update()
    value = await session.scalar(query)
    return int(value or 0)


def _group(
    plan: _Plan, rows: Iterable[Sequence[Any]], agents: UserAgents, *, new_after: int | None
) -> None:
    """Pairs from hits (see ``_hit_columns``). Hits with an id above ``new_after`` start
    replays (None: none do, they are context). Excluded agents (bots) are dropped here, and
    User-Agents nobody knows are tallied, once, when their hits are new."""
    pairs = plan.pairs
    agent_of = plan.agents
    mark = plan.mark if new_after is not None else math.inf
    starts = new_after if new_after is not None else math.inf
    for hit_id, episode, client, ua, at, size, media, referer, country, region, sub in rows:
        plan.hits += 1
        agent = agent_of.get(ua)
        if agent is None:
            agent = agent_of[ua] = agents.classify(ua)
        if agent.excluded:
            continue
        if hit_id > mark and agent.kind == "unknown":
            seen = plan.unknown.setdefault(ua, [0, at, at])
            seen[0] += 1
            seen[1] = min(seen[1], at)
            seen[2] = max(seen[2], at)
        key = (episode, client, ua)
        pair = pairs.get(key)
        if pair is None:
            if new_after is None:
                continue  # context of a pair with nothing new
            pair = pairs[key] = _Pair(
                None, episode, client, ua, agent, media, referer, country, region, sub
            )
        pair.hits.append((at, hit_id, size))
        if hit_id > starts and at < pair.start:
            pair.start = at


async def _read(
    session: AsyncSession,
    agents: UserAgents,
    *,
    mark: int,
    top: int,
    new: Sequence[Any],
    new_after: int,
    context: Sequence[Any] | None,
) -> _Plan:
    """Everything a step needs, read in one (read) transaction: the hits matching ``new``
    (those with an id above ``new_after`` start replays), older hits of the same pairs
    matching ``context`` (None: there are none), their downloads and their files."""
    dialect = session.get_bind().dialect.name
    plan = _Plan(mark=mark, top=top, dialect=dialect)
    connection = await session.connection()
    columns = _hit_columns(dialect)
    async for chunk in _driver_rows(connection, select(*columns).where(*_COUNTABLE, *new)):
        _group(plan, chunk, agents, new_after=new_after)
    if not plan.pairs:
        return plan
    # Context: older hits of the same pairs in the 24 hours before their replay starts.
    start = min(pair.start for pair in plan.pairs.values())
    cut = datetime.fromtimestamp(start - DAY, UTC)
    episodes = list({pair.episode for pair in plan.pairs.values()})
    if context is not None:
        # A few pairs (the usual run, every few minutes): only their listeners' hits, not a
        # day of every hit of their episodes.
        clients = list({pair.client_hash for pair in plan.pairs.values()})
        only = [Hit.client_hash.in_(clients)] if len(clients) <= FEW_LISTENERS else []
        for chunk_ids in _chunks(episodes, IN_CHUNK):
            rows = await connection.execute(
                select(*columns).where(
                    *_COUNTABLE,
                    *context,
                    *only,
                    Hit.episode_id.in_(_uuids(chunk_ids)),
                    Hit.at >= cut,
                )
            )
            _group(plan, rows, agents, new_after=None)
    # Each episode's show (hits of episodes purged since are left alone).
    shows: dict[Any, Any] = {}
    for chunk_ids in _chunks(episodes, IN_CHUNK):
        found = await connection.execute(
            select(_raw(Episode.id), _raw(Episode.show_id)).where(Episode.id.in_(_uuids(chunk_ids)))
        )
        shows.update((episode, show) for episode, show in found)
    for key, pair in list(plan.pairs.items()):
        pair.show = shows.get(pair.episode)
        if pair.show is None:
            del plan.pairs[key]
    # Existing downloads of these episodes from two days before the earliest replay on: one
    # counted up to 48 hours before a replay starts has a window reaching into the 24 hours
    # whose requests the replay starts with.
    for chunk_ids in _chunks(episodes, IN_CHUNK):
        downloads = await connection.execute(
            select(
                Download.id,
                _raw(Download.episode_id),
                Download.listener,
                _epoch(Download.at, dialect),
                Download.day,
                _raw(Download.show_id),
            ).where(
                Download.episode_id.in_(_uuids(chunk_ids)),
                Download.at >= cut - timedelta(seconds=DAY),
            )
        )
        for download_id, episode, listener, at, day, show in downloads:
            plan.downloads.setdefault((episode, listener), []).append((download_id, at, day, show))
    # The files' thresholds.
    media_ids = list({pair.media for pair in plan.pairs.values()} - {None})
    for chunk_ids in _chunks(media_ids, IN_CHUNK):
        files = await connection.execute(
            select(MediaFile.id, MediaFile.size, MediaFile.bitrate, MediaFile.id3_size).where(
                MediaFile.id.in_(_uuids(chunk_ids))
            )
        )
        for media_id, size, bitrate, id3_size in files:
            threshold = threshold_bytes(size=size, bitrate=bitrate, id3_size=id3_size)
            plan.media[media_id] = threshold
    return plan


async def _driver_rows(
    connection: AsyncConnection, query: Select[Any]
) -> AsyncIterator[list[Sequence[Any]]]:
    """The rows of ``query``, a chunk at a time, straight from the driver: for millions of
    hits, SQLAlchemy's result rows (and on PostgreSQL its cursor adapter) cost several times
    what reading them does."""
    dialect = connection.dialect
    sqlite = dialect.name == "sqlite"
    compiled = query.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    params = compiled.construct_params()
    values = [_driver_value(params[name], sqlite) for name in compiled.positiontup or ()]
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None
    if sqlite:
        cursor = await driver.execute(str(compiled), values)
        try:
            while rows := await cursor.fetchmany(READ_CHUNK):
                yield rows
        finally:
            await cursor.close()
        return
    pg_cursor = await driver.cursor(str(compiled), *values)
    while rows := await pg_cursor.fetch(READ_CHUNK):
        yield rows


def _driver_value(value: Any, sqlite: bool) -> Any:
    """A bound value as the driver takes it (SQLite: ids as hex, times as stored text)."""
    if sqlite and isinstance(value, uuid.UUID):
        return value.hex
    if sqlite and isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def _uuid(value: Any) -> uuid.UUID:
    """An id read as text (see ``_raw``) as a UUID again."""
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _uuids(values: Iterable[Any]) -> list[uuid.UUID]:
    return [_uuid(value) for value in values]


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- counting ------------------------------------------------------------------------------------


@dataclass
class _Changes:
    removed: list[int] = field(default_factory=list)
    added: list[tuple[Any, ...]] = field(default_factory=list)  # DOWNLOAD_COLUMNS, raw
    days: dict[Any, list[date]] = field(default_factory=dict)  # show -> [first, last] changed

    def touch(self, show: Any, day: date) -> None:
        span = self.days.get(show)
        if span is None:
            self.days[show] = [day, day]
        elif day < span[0]:
            span[0] = day
        elif day > span[1]:
            span[1] = day


def _count(plan: _Plan, agents: UserAgents) -> _Changes:
    changes = _Changes()
    sqlite = plan.dialect == "sqlite"
    default_threshold = threshold_bytes(size=None, bitrate=None, id3_size=None)
    for pair in plan.pairs.values():
        start = pair.start
        if start == math.inf:
            continue  # only context hits (cannot happen, but costs nothing to guard)
        listener = listener_key(pair.client_hash, pair.user_agent)
        window_until = -math.inf
        for download_id, at, day, show in plan.downloads.get((pair.episode, listener), ()):
            if at >= start:
                changes.removed.append(download_id)
                changes.touch(show, day)
            elif at + DAY > window_until:
                window_until = at + DAY
        media = pair.media and uuid.UUID(str(pair.media))
        threshold = plan.media.get(media, default_threshold) if media else default_threshold
        hits = sorted(pair.hits)
        horizon = start - DAY
        earlier = [(at, size) for at, _, size in hits if horizon < at < start]
        requests = [(at, size, threshold) for at, _, size in hits if at >= start]
        agent = pair.agent
        app = _cut(agent.name, 128) if agent.kind in APP_KINDS else None
        details = (
            app,
            _cut(agent.device, 64),
            _cut(agent.os, 64),
            _cut(agents.referrer(pair.referer, agent), 128),
            pair.country,
            pair.region,
            pair.subscriber,
        )
        for position in count_downloads(requests, window_until=window_until, earlier=earlier):
            stamp, raw_day, day, hour = _when(requests[position][0], sqlite)
            changes.touch(pair.show, day)
            changes.added.append(
                (pair.show, pair.episode, listener, stamp, raw_day, hour, *details)
            )
    return changes


def _when(at: float, sqlite: bool) -> tuple[Any, Any, date, int]:
    """A download's time and day as the driver writes them, its day, and its hour."""
    when = datetime.fromtimestamp(at, UTC)
    day = when.date()
    if sqlite:  # as SQLAlchemy stores them there
        return when.strftime("%Y-%m-%d %H:%M:%S.%f"), day.isoformat(), day, when.hour
    return when, day, day, when.hour


def _cut(value: str | None, limit: int) -> str | None:
    return value[:limit] if value else None


# --- writing -------------------------------------------------------------------------------------


async def _write(
    session: AsyncSession, plan: _Plan, changes: _Changes, *, advance: bool
) -> ProcessReport:
    for chunk in _chunks(changes.removed, IN_CHUNK):
        await session.execute(delete(Download).where(Download.id.in_(chunk)))
    # Straight to the driver (PostgreSQL: COPY): the values are already as it reads and
    # writes them (hex ids and text timestamps on SQLite), and SQLAlchemy's per-value
    # processing would cost seconds per million rows.
    report = ProcessReport(
        hits=plan.hits,
        pairs=len(plan.pairs),
        downloads_added=len(changes.added),
        downloads_removed=len(changes.removed),
    )
    started = time.perf_counter()
    connection = await session.connection()
    if connection.dialect.name == "postgresql":
        driver = (await connection.get_raw_connection()).driver_connection
        assert driver is not None
        await driver.copy_records_to_table(
            "downloads", records=changes.added, columns=DOWNLOAD_COLUMNS
        )
    else:
        statement = _insert_downloads()
        for chunk in _chunks(changes.added, WRITE_CHUNK):
            await connection.exec_driver_sql(statement, list(chunk))
    report.time("write", time.perf_counter() - started)
    started = time.perf_counter()
    report.shows = {_uuid(show) for show in changes.days}
    for show, (first, last) in changes.days.items():
        await refresh_rollups(session, show_id=_uuid(show), first=first, last=last)
    await _record_unknown(session, plan.unknown)
    if advance:
        await _set_mark(session, plan.top)
    report.time("rollups", time.perf_counter() - started)
    return report


DOWNLOAD_COLUMNS = (
    "show_id",
    "episode_id",
    "listener",
    "at",
    "day",
    "hour",
    "app",
    "device",
    "os",
    "referrer",
    "country",
    "region",
    "subscriber_id",
)


def _insert_downloads() -> str:
    marks = ", ".join("?" for _ in DOWNLOAD_COLUMNS)
    return f"INSERT INTO downloads ({', '.join(DOWNLOAD_COLUMNS)}) VALUES ({marks})"  # noqa: S608


async def _set_mark(session: AsyncSession, value: int) -> None:
    updated = await session.execute(
        update(AnalyticsState).where(AnalyticsState.name == MARK).values(value=value)
    )
    if not updated.rowcount:  # type: ignore[attr-defined]
        session.add(AnalyticsState(name=MARK, value=value))
        await session.flush()


async def _record_unknown(session: AsyncSession, unknown: dict[str, list[Any]]) -> None:
    if not unknown:
        return
    keyed = {hashlib.sha256(ua.encode(errors="replace")).hexdigest()[:32]: ua for ua in unknown}
    existing: dict[str, UnknownUserAgent] = {}
    keys = list(keyed)
    for chunk in _chunks(keys, IN_CHUNK):
        rows = await session.scalars(
            select(UnknownUserAgent).where(UnknownUserAgent.key.in_(chunk))
        )
        existing.update({row.key: row for row in rows})
    for key, ua in keyed.items():
        count, first, last = unknown[ua]
        first_at = datetime.fromtimestamp(first, UTC)
        last_at = datetime.fromtimestamp(last, UTC)
        row = existing.get(key)
        if row is None:
            session.add(
                UnknownUserAgent(
                    key=key,
                    user_agent=ua[:1024],
                    hits=count,
                    first_seen=first_at,
                    last_seen=last_at,
                )
            )
        else:
            row.hits += count
            row.first_seen = min(row.first_seen, first_at)
            row.last_seen = max(row.last_seen, last_at)
    await session.flush()


async def refresh_rollups(
    session: AsyncSession, *, show_id: uuid.UUID, first: date, last: date
) -> None:
    """Compute the show's rollups for the days ``first``..``last`` again from its downloads
    (and its listener counts for every day, week and month those days fall in)."""
    in_range = [Download.show_id == show_id, Download.day >= first, Download.day <= last]
    await session.execute(
        delete(DownloadDay).where(
            DownloadDay.show_id == show_id, DownloadDay.day >= first, DownloadDay.day <= last
        )
    )
    await session.execute(
        insert(DownloadDay).from_select(
            ["episode_id", "day", "show_id", "downloads"],
            select(Download.episode_id, Download.day, Download.show_id, func.count())
            .where(*in_range)
            .group_by(Download.episode_id, Download.day, Download.show_id),
        )
    )
    await session.execute(
        delete(DownloadBreakdown).where(
            DownloadBreakdown.show_id == show_id,
            DownloadBreakdown.day >= first,
            DownloadBreakdown.day <= last,
        )
    )
    # The show's total per day, as a breakdown of its own: series read 365 rows for a year.
    await session.execute(
        insert(DownloadBreakdown).from_select(
            ["show_id", "dimension", "day", "value", "downloads"],
            select(Download.show_id, literal(TOTAL), Download.day, literal(""), func.count())
            .where(*in_range)
            .group_by(Download.show_id, Download.day),
        )
    )
    for name, column in DIMENSIONS.items():
        value = func.coalesce(cast(column, String), "")
        where = [*in_range]
        if name == "subscriber":
            where.append(column.is_not(None))
        await session.execute(
            insert(DownloadBreakdown).from_select(
                ["show_id", "dimension", "day", "value", "downloads"],
                select(Download.show_id, literal(name), Download.day, value, func.count())
                .where(*where)
                .group_by(Download.show_id, Download.day, value),
            )
        )
    await session.execute(
        delete(ListenerDay).where(
            ListenerDay.show_id == show_id, ListenerDay.day >= first, ListenerDay.day <= last
        )
    )
    await session.execute(
        insert(ListenerDay).from_select(
            ["show_id", "day", "listener"],
            select(Download.show_id, Download.day, Download.listener).where(*in_range).distinct(),
        )
    )
    await _refresh_months(session, show_id=show_id, first=month_start(first), last=last)
    await _refresh_launches(session, show_id=show_id, first=first, last=last)
    await _refresh_listener_counts(session, show_id=show_id, first=first, last=last)


LAUNCH_DAYS = (1, 7, 30)  # an episode's downloads in its first N days (EpisodeLaunch)


def release_day(session: AsyncSession) -> ColumnElement[date]:
    """An episode's publication time as its UTC date."""
    if session.get_bind().dialect.name == "sqlite":
        return type_coerce(func.date(Episode.publish_at), Date)
    return cast(func.timezone("UTC", Episode.publish_at), Date)


def release_plus(session: AsyncSession, days: int) -> ColumnElement[date]:
    """The day ``days`` days after an episode's release day."""
    if session.get_bind().dialect.name == "sqlite":
        return type_coerce(func.date(Episode.publish_at, f"+{int(days)} days"), Date)
    return release_day(session) + int(days)


def first_days(session: AsyncSession, days: int) -> ColumnElement[bool]:
    """``download_days`` rows of an episode's first ``days`` days since its release, as a
    range the primary key (episode, day) finds directly."""
    return and_(
        DownloadDay.episode_id == Episode.id,
        DownloadDay.day >= release_day(session),
        DownloadDay.day < release_plus(session, days),
    )


async def _refresh_launches(
    session: AsyncSession, *, show_id: uuid.UUID, first: date, last: date
) -> None:
    """The first-days downloads of the show's episodes whose first days include a changed
    day."""
    release = release_day(session)
    since = literal(first - timedelta(days=max(LAUNCH_DAYS) - 1), Date)
    affected = [
        Episode.show_id == show_id,
        Episode.publish_at.is_not(None),
        release >= since,
        release <= literal(last, Date),
    ]
    await session.execute(
        delete(EpisodeLaunch).where(
            EpisodeLaunch.episode_id.in_(select(Episode.id).where(*affected))
        )
    )
    sums = [
        func.sum(
            case((DownloadDay.day < release_plus(session, days), DownloadDay.downloads), else_=0)
        )
        for days in LAUNCH_DAYS
    ]
    await session.execute(
        insert(EpisodeLaunch).from_select(
            ["episode_id", "show_id", *(f"day_{days}" for days in LAUNCH_DAYS)],
            select(Episode.id, Episode.show_id, *sums)
            .join(DownloadDay, first_days(session, max(LAUNCH_DAYS)))
            .where(*affected)
            .group_by(Episode.id, Episode.show_id),
        )
    )


def month_of(session: AsyncSession, day: Any) -> Any:
    """The first day of ``day``'s month, in SQL (as the ``Date`` type stores it)."""
    if session.get_bind().dialect.name == "sqlite":
        return func.strftime("%Y-%m-01", day)
    return cast(func.date_trunc("month", day), Date)


async def _refresh_months(
    session: AsyncSession, *, show_id: uuid.UUID, first: date, last: date
) -> None:
    last = month_end(last)
    await session.execute(
        delete(DownloadMonth).where(
            DownloadMonth.show_id == show_id,
            DownloadMonth.month >= first,
            DownloadMonth.month <= last,
        )
    )
    month = month_of(session, DownloadDay.day)
    await session.execute(
        insert(DownloadMonth).from_select(
            ["episode_id", "month", "show_id", "downloads"],
            select(
                DownloadDay.episode_id, month, DownloadDay.show_id, func.sum(DownloadDay.downloads)
            )
            .where(
                DownloadDay.show_id == show_id, DownloadDay.day >= first, DownloadDay.day <= last
            )
            .group_by(DownloadDay.episode_id, month, DownloadDay.show_id),
        )
    )


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def month_start(day: date) -> date:
    return day.replace(day=1)


def month_end(day: date) -> date:
    following = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return following - timedelta(days=1)


ROLLING = "30d"  # listener count of the 30 days ending on a day (start: its first day)
ROLLING_DAYS = 30


async def _refresh_listener_counts(
    session: AsyncSession, *, show_id: uuid.UUID, first: date, last: date
) -> None:
    """Unique listeners of every day, week and month the changed days fall in, and of the 30
    days ending on the last changed day (dashboards ask for it on every visit)."""
    rolling = last - timedelta(days=ROLLING_DAYS - 1)
    low = min(week_start(first), month_start(first), rolling)
    high = max(week_start(last) + timedelta(days=6), month_end(last))
    rows = await session.execute(
        select(ListenerDay.day, ListenerDay.listener).where(
            ListenerDay.show_id == show_id, ListenerDay.day >= low, ListenerDay.day <= high
        )
    )
    periods: dict[tuple[str, date], set[str]] = defaultdict(set)
    for day, listener in rows:
        periods["week", week_start(day)].add(listener)
        periods["month", month_start(day)].add(listener)
        if first <= day <= last:
            periods["day", day].add(listener)
        if rolling <= day <= last:
            periods[ROLLING, rolling].add(listener)
    starts = {
        "day": (first, last),
        "week": (week_start(first), week_start(last)),
        "month": (month_start(first), month_start(last)),
        ROLLING: (rolling, rolling),
    }
    for period, (a, b) in starts.items():
        await session.execute(
            delete(ListenerCount).where(
                ListenerCount.show_id == show_id,
                ListenerCount.period == period,
                ListenerCount.start >= a,
                ListenerCount.start <= b,
            )
        )
    values = [
        {"show_id": show_id, "period": period, "start": start, "listeners": len(keys)}
        for (period, start), keys in periods.items()
        if starts[period][0] <= start <= starts[period][1]
    ]
    for chunk in _chunks(values, WRITE_CHUNK):
        await session.execute(
            insert(ListenerCount.metadata.tables[ListenerCount.__tablename__]), list(chunk)
        )


# --- entry points --------------------------------------------------------------------------------


async def process_new_hits(
    db: Database, agents: UserAgents, *, batch_ids: int = BATCH_IDS
) -> ProcessReport:
    """Count every hit recorded since the last run (in steps of ``batch_ids`` ids)."""
    report = ProcessReport()
    while True:
        async with db.session(write=False) as session:
            mark = await _mark(session)
            top = await session.scalar(select(func.max(Hit.id)))
            if top is None or top <= mark:
                return report
            top = min(int(top), mark + batch_ids)
            low = max(mark - REPLAY_MARGIN_IDS, 0)
            started = time.perf_counter()
            plan = await _read(
                session,
                agents,
                mark=mark,
                top=top,
                new=[Hit.id > low, Hit.id <= top],
                new_after=low,
                context=[Hit.id <= low] if low else None,
            )
        report.time("read", time.perf_counter() - started)
        started = time.perf_counter()
        changes = _count(plan, agents)
        report.time("count", time.perf_counter() - started)
        async with db.session(write=True) as session:
            if await _mark(session, lock=True) != mark:
                logger.info("another run processed these hits meanwhile")
                continue
            report.add(await _write(session, plan, changes, advance=True))


async def reprocess(
    db: Database, agents: UserAgents, *, first: date, last: date, show_id: uuid.UUID | None = None
) -> ProcessReport:
    """Count the hits of the days ``first``..``last`` again (every show, or one): for each pair
    with hits on those days, its downloads from its first hit of those days on are replaced.
    Days whose hits retention has removed keep the downloads counted back then."""
    since = datetime.combine(first, datetime.min.time(), UTC)
    until = datetime.combine(last + timedelta(days=1), datetime.min.time(), UTC)
    new: list[Any] = [Hit.at >= since, Hit.at < until]
    if show_id is not None:
        new.append(Hit.show_id == show_id)
    async with db.session(write=False) as session:
        mark = await _mark(session)
        plan = await _read(
            session,
            agents,
            mark=mark,
            top=mark,
            new=new,
            new_after=-1,
            context=[or_(Hit.at < since, Hit.at >= until)],
        )
    plan.unknown.clear()  # counted when these hits were new
    changes = _count(plan, agents)
    async with db.session(write=True) as session:
        return await _write(session, plan, changes, advance=False)
