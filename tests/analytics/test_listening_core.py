"""Listening sessions from beacons, without a database: hand-built sessions of a 200 s episode
(so 5 % is 10 s) and their figures worked out by hand."""

from __future__ import annotations

from amphora.analytics.listening import Beacon, listen_session, listening, summarize

DURATION = 200.0


def play(position: float) -> Beacon:
    return Beacon("play", position)


def progress(position: float) -> Beacon:
    return Beacon("progress", position)


def pause(position: float) -> Beacon:
    return Beacon("pause", position)


def seek(source: float, target: float) -> Beacon:
    return Beacon("seek", target, source)


def ended(position: float) -> Beacon:
    return Beacon("ended", position)


def playing(start: float, stop: float, step: float = 15) -> list[Beacon]:
    """A play at ``start`` and progress beacons every ``step`` seconds up to ``stop``."""
    beacons = [play(start)]
    position = start
    while position + step < stop:
        position += step
        beacons.append(progress(position))
    beacons.append(progress(stop))
    return beacons


# The sessions of the aggregate test, each with what it should give.
STRAIGHT = [*playing(0, 195), ended(199.6)]  # the player's end is a little short of ours
PLAY_PAUSE_PLAY = [play(0), progress(50), pause(60), play(60), progress(100), pause(120)]
SEEK_FORWARD = [play(0), progress(40), seek(40, 120), progress(150), pause(160)]
RELISTEN = [play(0), progress(100), seek(100, 50), progress(150), ended(200)]
ABANDONED = playing(0, 80)  # 40 %: the tab was closed
BOUNCED = [play(0)]


def covered_percents(beacons: list[Beacon]) -> list[int]:
    found = listen_session(beacons, DURATION)
    return [p for p in range(0, 101, 5) if found.covers(DURATION * p / 100)]


def test_straight_play_to_the_end() -> None:
    found = listen_session(STRAIGHT, DURATION)
    # `ended` closes at the episode's end even though the player said 199.6.
    assert found.listened_seconds == 200
    assert found.pauses == 0 and found.completed
    assert found.covered == ((0, 200),)
    assert covered_percents(STRAIGHT) == list(range(0, 101, 5))


def test_play_pause_play() -> None:
    found = listen_session(PLAY_PAUSE_PLAY, DURATION)
    assert found.listened_seconds == 120  # 0 to 60, then 60 to 120
    assert found.pauses == 2 and not found.completed
    assert found.covered == ((0, 120),)
    assert covered_percents(PLAY_PAUSE_PLAY) == list(range(0, 61, 5))


def test_seek_forward_skips_a_part() -> None:
    found = listen_session(SEEK_FORWARD, DURATION)
    assert found.listened_seconds == 80  # 0 to 40 and 120 to 160
    assert found.pauses == 1 and not found.completed
    assert found.covered == ((0, 40), (120, 160))
    # The gap from 20 % to 60 % and everything after 80 % was not played.
    assert covered_percents(SEEK_FORWARD) == [0, 5, 10, 15, 20, 60, 65, 70, 75, 80]


def test_relistening_counts_time_twice_but_positions_once() -> None:
    found = listen_session(RELISTEN, DURATION)
    assert found.listened_seconds == 250  # 0 to 100, then 50 to 200 again
    assert found.completed
    assert found.covered == ((0, 200),)
    assert covered_percents(RELISTEN) == list(range(0, 101, 5))


def test_abandoned_at_40_percent() -> None:
    found = listen_session(ABANDONED, DURATION)
    assert found.listened_seconds == 80  # up to the last progress heard
    assert found.pauses == 0 and not found.completed
    assert covered_percents(ABANDONED) == [0, 5, 10, 15, 20, 25, 30, 35, 40]


def test_a_single_play_is_a_session_without_time() -> None:
    found = listen_session(BOUNCED, DURATION)
    assert found.listened_seconds == 0 and found.pauses == 0 and not found.completed
    assert covered_percents(BOUNCED) == [0]


def test_seek_while_paused_only_moves() -> None:
    beacons = [play(0), pause(10), seek(10, 100), play(100), progress(110)]
    found = listen_session(beacons, DURATION)
    assert found.listened_seconds == 20 and found.pauses == 1
    assert found.covered == ((0, 10), (100, 110))


def test_lost_and_repeated_beacons() -> None:
    # A progress without a play: the play was lost, playing started there.
    assert listen_session([progress(30), progress(45)], DURATION).covered == ((30, 45),)
    # A repeated play while playing is progress; a repeated pause is not another pause.
    found = listen_session([play(0), play(20), pause(30), pause(30)], DURATION)
    assert found.listened_seconds == 30 and found.pauses == 1
    # A jump back without a seek keeps what was played and starts again there.
    found = listen_session([play(0), progress(60), progress(20), progress(40)], DURATION)
    assert found.listened_seconds == 80 and found.covered == ((0, 60),)


def test_completion_at_95_percent_of_what_was_played() -> None:
    assert listen_session(playing(0, 190), DURATION).completed  # 95 % exactly
    assert not listen_session(playing(0, 189), DURATION).completed
    # A seek target is not played: seeking to the last second and leaving is no completion.
    assert not listen_session([play(0), seek(10, 199)], DURATION).completed
    # `ended` completes, even heard while paused.
    assert listen_session([play(0), pause(5), ended(200)], DURATION).completed


def test_positions_past_the_end_are_clipped() -> None:
    found = listen_session([play(150), progress(201.5)], DURATION)
    assert found.listened_seconds == 50 and found.covered == ((150, 200),)


def test_several_sessions() -> None:
    sessions = [STRAIGHT, PLAY_PAUSE_PLAY, SEEK_FORWARD, RELISTEN, ABANDONED, BOUNCED]
    found = listening(sessions, DURATION)
    assert found.sessions == 6
    # Listened: 200, 120, 80, 250, 80, 0 → sorted 0, 80, 80, 120, 200, 250.
    assert found.median_listen_seconds == 100
    assert found.completion_rate == round(2 / 6, 4)  # straight and re-listen
    assert found.pauses_per_session == 0.5  # (2 + 1) / 6
    expected = {0: 6}  # 0 s: everyone, the bounce too
    expected |= dict.fromkeys((5, 10, 15, 20), 5)  # not the bounce
    expected |= dict.fromkeys((25, 30, 35, 40), 4)  # the forward seek skips from 20 %
    expected |= dict.fromkeys((45, 50, 55), 3)  # the abandoned one left at 40 %
    expected |= {60: 4}  # the forward seek is back (120 s), play-pause-play stops there
    expected |= dict.fromkeys((65, 70, 75, 80), 3)
    expected |= dict.fromkeys((85, 90, 95, 100), 2)  # straight and re-listen only
    assert [(p.percent, p.share) for p in found.dropoff] == [
        (percent, round(count / 6, 4)) for percent, count in sorted(expected.items())
    ]


def test_no_sessions() -> None:
    found = summarize([], DURATION)
    assert found.sessions == 0
    assert found.median_listen_seconds is None
    assert found.completion_rate is None and found.pauses_per_session is None
    assert [p.percent for p in found.dropoff] == list(range(0, 101, 5))
    assert all(p.share is None for p in found.dropoff)


def test_without_a_duration() -> None:
    found = listening([[play(0), progress(300), ended(310)], [play(0), progress(50)]], None)
    assert found.sessions == 2 and found.dropoff == ()
    assert found.median_listen_seconds == 180  # 310 and 50: nothing clipped
    assert found.completion_rate == 0.5  # only `ended` completes
