"""Listening sessions: how people listen to an episode in Amphora's own web player.

The player sends beacons (``play``, ``pause``, ``seek``, ``progress``, ``ended``) under a random
session id; this module records them and turns one episode's beacons into figures. The core
(:func:`listen_session`, :func:`summarize`) is pure: plain data in, plain data out.

Recording (:func:`record_beacons`)
    - Only published (``publish_at`` in the past), non-deleted episodes of live shows with a
      known duration (our audio file's, else the duration an import kept) take beacons. An
      unknown, draft, scheduled, deleted or duration-less episode (a live item, say) refuses
      the whole batch with 404 and nothing is stored.
    - Premium episodes take beacons too. A beacon carries no secret and reveals nothing: the
      audio itself stays behind the subscriber key, and refusing would only leave premium
      episodes without figures.
    - A position (and a seek's ``from``) may exceed the duration by
      :func:`position_tolerance` (players estimate durations of VBR files); further is 422.
    - Server time is authoritative: every event of a request is stored at the time the
      request arrived, plus one microsecond per place in the batch, so the batch's order is
      the order of the events. A client clock is ignored.
    - Rate limit: ``listen_events_per_minute`` events per client address in a moving minute;
      a batch costs one per event and is accepted or refused whole (429 with Retry-After).
      The limit is counted before the episode lookup, so probing ids costs allowance too.
    - Beacons are public: anyone can send made-up ones. The rate limit bounds what one
      address can add; the median and the curve's shares keep one session's weight at one.

Rules of one session (:func:`listen_session`), events in order, positions clipped to
``[0, duration]``
    - ``play`` starts an interval at its position (while playing: as ``progress``).
    - ``progress`` extends the current interval to its position; one while not playing means
      the play beacon was lost, and starts an interval at its position.
    - A position lower than the current interval's end without a seek (a player that jumped
      back on its own) closes the interval there and starts a new one at that position.
    - ``pause`` closes the interval at its position and counts as a pause (only when
      something was playing: a repeated pause is not another pause).
    - ``seek`` closes the interval at ``from`` and, when playing, starts a new one at the
      target: the skipped part is not played, and a part sought back to is played again.
      A seek while paused only moves the position.
    - ``ended`` closes the interval at the end of the episode, whatever position it says
      (the player's idea of the duration may differ a little from ours), and completes the
      session.
    - Events stop: the interval closes at the last position heard (a closed tab loses at
      most one beacon period).
    - Positions are trusted: a forward jump without a seek counts as played.

Figures
    - ``listened_seconds`` of a session: the sum of its intervals' lengths. Re-listened parts
      count every time (it is time spent listening), which is why the figure can exceed the
      duration.
    - Coverage: the union of a session's intervals (every position counted once). It drives
      completion and the drop-off curve, so a re-listen never counts twice there.
    - ``sessions``: every session id with at least one event, including one that sent a
      single ``play`` and left (someone pressed play: that bounce is part of the picture,
      and it shows as listened time 0 and as a drop right after 0 %).
    - ``median_listen_seconds``: the median of the sessions' listened seconds (one decimal).
    - ``completion_rate``: the share of sessions that played up to at least 95 % of the
      duration (the end of an interval with time in it: a seek target with nothing heard
      after it is not reached) or sent ``ended``.
    - ``pauses_per_session``: the mean number of pauses.
    - ``dropoff``: 21 points at 0 %, 5 %, …, 100 % of the duration; each is the share of
      sessions whose coverage contains that position (interval ends included, and the point
      of a play or seek target heard before leaving: the listener was there). The curve
      need not fall monotonically: a part skipped by seeking shows as a dip, and a session
      resumed mid-way is absent from the points before it.
    - Rates and shares have four decimals; with no session they are null.
    - Without a known duration (the audio removed since), nothing is clipped at the end,
      only ``ended`` completes a session and the curve is empty.

Reading figures (:func:`episode_listening`): the optional period selects the sessions that
*started* (first event) on those days (UTC); each is taken whole, so a session that runs past
midnight is neither cut in two nor counted twice.
"""

from __future__ import annotations

import math
import statistics
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from limits.aio.strategies import MovingWindowRateLimiter
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from amphora.analytics.errors import BadPeriod, UnknownEpisode
from amphora.delivery.service import published_conditions
from amphora.kit.errors import AmphoraError, NotFound, TooManyRequests
from amphora.kit.ratelimit import RateLimiter
from amphora.models import Episode, ListenEvent, MediaFile, Show

EVENTS = ("play", "pause", "seek", "progress", "ended")
MAX_BATCH = 50
SESSION_ID_PATTERN = r"^[A-Za-z0-9_-]{16,64}$"
COMPLETE_SHARE = 0.95
DROPOFF_STEPS = 20  # 0 %, 5 %, …, 100 %
SECONDS_DECIMALS = 1
SHARE_DECIMALS = 4
STREAM_ROWS = 2_000


def position_tolerance(duration: float) -> float:
    """How far past the end a position may be: 2 s, or 1 % of a long episode."""
    return max(2.0, duration * 0.01)


# --- pure core -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Beacon:
    """One event of a session, as stored."""

    event: str
    position: float
    from_position: float | None = None


@dataclass(frozen=True, slots=True)
class SessionListening:
    listened_seconds: float
    pauses: int
    completed: bool
    covered: tuple[tuple[float, float], ...]  # merged, ascending

    def covers(self, position: float) -> bool:
        return any(start <= position <= end for start, end in self.covered)


@dataclass(frozen=True, slots=True)
class DropoffPoint:
    percent: int
    share: float | None


@dataclass(frozen=True, slots=True)
class Listening:
    sessions: int
    median_listen_seconds: float | None
    completion_rate: float | None
    pauses_per_session: float | None
    dropoff: tuple[DropoffPoint, ...]


@dataclass(slots=True)
class _Player:
    duration: float | None
    intervals: list[tuple[float, float]] = field(default_factory=list)
    start: float = 0.0
    end: float = 0.0
    playing: bool = False
    pauses: int = 0
    ended: bool = False

    def clip(self, position: float) -> float:
        position = max(0.0, position)
        return position if self.duration is None else min(position, self.duration)

    def begin(self, position: float) -> None:
        self.start = self.end = position
        self.playing = True

    def advance(self, position: float) -> None:
        if position >= self.end:
            self.end = position
        else:  # back without a seek: what was played so far stays played
            self.intervals.append((self.start, self.end))
            self.start = self.end = position

    def close(self) -> None:
        if self.playing:
            self.intervals.append((self.start, self.end))
            self.playing = False

    def feed(self, beacon: Beacon) -> None:
        position = self.clip(beacon.position)
        event = beacon.event
        if event in ("play", "progress"):
            if self.playing:
                self.advance(position)
            else:
                self.begin(position)
        elif event == "pause":
            if self.playing:
                self.advance(position)
                self.close()
                self.pauses += 1
        elif event == "seek":
            if self.playing:
                if beacon.from_position is not None:
                    self.advance(self.clip(beacon.from_position))
                self.close()
                self.begin(position)
        elif event == "ended":
            if self.playing:
                self.advance(self.duration if self.duration is not None else position)
                self.close()
            self.ended = True


def _merge(intervals: Iterable[tuple[float, float]]) -> tuple[tuple[float, float], ...]:
    merged: list[tuple[float, float]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return tuple(merged)


def listen_session(beacons: Iterable[Beacon], duration: float | None) -> SessionListening:
    """One session's listened time, pauses, completion and coverage (rules: module doc)."""
    player = _Player(duration)
    for beacon in beacons:
        player.feed(beacon)
    player.close()
    covered = _merge(player.intervals)
    # Reached by playing: a seek target (or a play) with nothing heard after it is no time.
    furthest = max((end for start, end in player.intervals if end > start), default=0.0)
    completed = player.ended or (
        duration is not None and duration > 0 and furthest >= COMPLETE_SHARE * duration
    )
    return SessionListening(
        listened_seconds=sum(end - start for start, end in player.intervals),
        pauses=player.pauses,
        completed=completed,
        covered=covered,
    )


def dropoff_positions(duration: float) -> list[tuple[int, float]]:
    """(percent, seconds) of the curve's 21 points."""
    return [(100 * k // DROPOFF_STEPS, duration * k / DROPOFF_STEPS) for k in range(21)]


def summarize(sessions: Iterable[SessionListening], duration: float | None) -> Listening:
    """The figures of an episode from its sessions (rules: module doc)."""
    listened: list[float] = []
    pauses = completed = 0
    points = dropoff_positions(duration) if duration is not None else []
    still = [0] * len(points)
    for one in sessions:
        listened.append(one.listened_seconds)
        pauses += one.pauses
        completed += one.completed
        for index, (_, position) in enumerate(points):
            still[index] += one.covers(position)
    count = len(listened)

    def share(part: float) -> float | None:
        return round(part / count, SHARE_DECIMALS) if count else None

    return Listening(
        sessions=count,
        median_listen_seconds=(
            round(statistics.median(listened), SECONDS_DECIMALS) if listened else None
        ),
        completion_rate=share(completed),
        pauses_per_session=share(pauses),
        dropoff=tuple(
            DropoffPoint(percent, share(n)) for (percent, _), n in zip(points, still, strict=True)
        ),
    )


def listening(sessions: Iterable[Iterable[Beacon]], duration: float | None) -> Listening:
    """The figures of an episode from its events, grouped by session, each group in order."""
    return summarize((listen_session(events, duration) for events in sessions), duration)


# --- recording -----------------------------------------------------------------------------------


class PositionPastEnd(AmphoraError):
    status_code = 422
    code = "validation_error"
    message = "A position is past the end of the episode."


class NotListenable(NotFound):
    message = "No such episode."


@dataclass(frozen=True, slots=True)
class IncomingBeacon:
    """A validated beacon as the player sent it (the HTTP layer checks shapes and ranges)."""

    session_id: str
    episode_id: uuid.UUID
    event: str
    position: float
    from_position: float | None = None


def _duration(media_duration: Any, remote_media: Any) -> float | None:
    value = media_duration
    if value is None and isinstance(remote_media, Mapping):
        value = remote_media.get("duration_s")
    if isinstance(value, int | float) and math.isfinite(value) and value > 0:
        return float(value)
    return None


async def _listenable(
    session: AsyncSession, episode_ids: set[uuid.UUID], now: datetime
) -> dict[uuid.UUID, tuple[uuid.UUID, float]]:
    """episode id → (show id, duration) of those that may take beacons."""
    rows = await session.execute(
        select(Episode.id, Episode.show_id, MediaFile.duration_s, Episode.remote_media)
        .join(Show, Show.id == Episode.show_id)
        .outerjoin(MediaFile, MediaFile.id == Episode.media_id)
        .where(Episode.id.in_(episode_ids), *published_conditions(now))
    )
    found: dict[uuid.UUID, tuple[uuid.UUID, float]] = {}
    for episode_id, show_id, media_duration, remote in rows:
        duration = _duration(media_duration, remote)
        if duration is not None:
            found[episode_id] = (show_id, duration)
    return found


async def _consume(limiter: RateLimiter, *, key: str, cost: int, per_minute: int) -> None:
    # RateLimiter.consume counts one per call; a batch costs one per event in one round trip.
    item = limiter.limit(f"{per_minute}/minute")
    strategy = MovingWindowRateLimiter(limiter.storage)
    if not await strategy.hit(item, key, cost=cost):
        stats = await strategy.get_window_stats(item, key)
        retry_after = max(1, math.ceil(stats.reset_time - datetime.now(UTC).timestamp()))
        raise TooManyRequests(retry_after, "Too many listening events. Try again later.")


async def record_beacons(
    session: AsyncSession,
    limiter: RateLimiter,
    *,
    beacons: Sequence[IncomingBeacon],
    client_address: str,
    per_minute: int,
    now: datetime,
) -> int:
    """Store a batch of beacons whole, or refuse it whole (rules: module doc). Returns the
    number stored."""
    if not beacons:
        return 0
    await _consume(
        limiter, key=f"listen:{client_address}", cost=len(beacons), per_minute=per_minute
    )
    episodes = await _listenable(session, {b.episode_id for b in beacons}, now)
    problems: list[dict[str, Any]] = []
    for index, beacon in enumerate(beacons):
        if beacon.episode_id not in episodes:
            raise NotListenable()
        duration = episodes[beacon.episode_id][1]
        limit = duration + position_tolerance(duration)
        for name, value in (("position", beacon.position), ("from", beacon.from_position)):
            if value is not None and value > limit:
                problems.append(
                    {
                        "loc": ["body", "events", index, name],
                        "msg": f"Past the end of the episode ({limit:.1f} s at most).",
                        "type": "position_past_end",
                    }
                )
    if problems:
        raise PositionPastEnd(details=problems)
    await session.execute(
        insert(ListenEvent),
        [
            {
                "show_id": episodes[b.episode_id][0],
                "episode_id": b.episode_id,
                "session_id": b.session_id,
                "event": b.event,
                "position": b.position,
                "from_position": b.from_position,
                "at": now + timedelta(microseconds=index),
            }
            for index, b in enumerate(beacons)
        ],
    )
    return len(beacons)


# --- reading -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EpisodeListening:
    episode_id: uuid.UUID
    duration: float | None
    first: date | None
    last: date | None
    figures: Listening


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, UTC)


async def episode_listening(
    session: AsyncSession,
    *,
    show_id: uuid.UUID,
    episode_id: uuid.UUID,
    first: date | None = None,
    last: date | None = None,
) -> EpisodeListening:
    """The listening figures of one of the show's episodes, of sessions started from
    ``first`` to ``last`` (UTC days, both included; open when not given)."""
    if first is not None and last is not None and first > last:
        raise BadPeriod("'from' is after 'to'.")
    episode = (
        await session.execute(
            select(Episode.show_id, Episode.deleted_at, MediaFile.duration_s, Episode.remote_media)
            .outerjoin(MediaFile, MediaFile.id == Episode.media_id)
            .where(Episode.id == episode_id)
        )
    ).first()
    if episode is None or episode.show_id != show_id or episode.deleted_at is not None:
        raise UnknownEpisode
    duration = _duration(episode.duration_s, episode.remote_media)

    where: list[Any] = [ListenEvent.episode_id == episode_id]
    if first is not None or last is not None:
        started = func.min(ListenEvent.at)
        bounds = []
        if first is not None:
            bounds.append(started >= _day_start(first))
        if last is not None:
            bounds.append(started < _day_start(last + timedelta(days=1)))
        where.append(
            ListenEvent.session_id.in_(
                select(ListenEvent.session_id)
                .where(ListenEvent.episode_id == episode_id)
                .group_by(ListenEvent.session_id)
                .having(*bounds)
            )
        )
    query = (
        select(
            ListenEvent.session_id,
            ListenEvent.event,
            ListenEvent.position,
            ListenEvent.from_position,
        )
        .where(*where)
        .order_by(ListenEvent.session_id, ListenEvent.at, ListenEvent.id)
        .execution_options(yield_per=STREAM_ROWS)
    )
    # Streamed one session at a time: memory grows with sessions, not with events.
    sessions: list[SessionListening] = []
    current: str | None = None
    events: list[Beacon] = []
    result = await session.stream(query)
    async for session_id, event, position, from_position in result:
        if session_id != current:
            if events:
                sessions.append(listen_session(events, duration))
            current, events = session_id, []
        events.append(Beacon(event, position, from_position))
    if events:
        sessions.append(listen_session(events, duration))
    return EpisodeListening(episode_id, duration, first, last, summarize(sessions, duration))
