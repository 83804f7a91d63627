"""Listening sessions through HTTP on both backends: the web player's beacons (accepted,
refused whole, rate-limited) and the figures read back by the show's team (JSON and CSV)."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import insert, select

from amphora.app import create_app
from amphora.kit.clock import utcnow
from amphora.models import ListenEvent, MediaFile
from amphora.runtime import Runtime
from tests.catalog import Team
from tests.delivery.seed import SeededEpisode, SeededShow, seed_episode, seed_show, set_row
from tests.helpers import API, bearer

BEACONS = f"{API}/listen-events"
DURATION = 200.0
A = "session-a-0123456789"
B = "session-b-0123456789"
C = "session-c-0123456789"


@dataclass
class Listened:
    team: Team
    episode: SeededEpisode

    @property
    def url(self) -> str:
        return f"{API}/shows/{self.team.show['id']}/analytics/episodes/{self.episode.id}/listening"


async def published(runtime: Runtime, show: SeededShow, **options: Any) -> SeededEpisode:
    """A published episode (unless told otherwise) whose audio lasts 200 s."""
    episode = await seed_episode(runtime, show, **options)
    await set_row(runtime, MediaFile, episode.media_id, duration_s=DURATION)
    return episode


@pytest.fixture
async def listened(runtime: Runtime, team: Team) -> Listened:
    show = SeededShow(uuid.UUID(team.show["id"]), team.show["slug"], uuid.UUID(team.owner.id))
    return Listened(team, await published(runtime, show))


def beacon(
    episode: SeededEpisode | uuid.UUID, session: str, event: str, position: Any, **extra: Any
) -> dict[str, Any]:
    episode_id = episode.id if isinstance(episode, SeededEpisode) else episode
    return {
        "session_id": session,
        "episode_id": str(episode_id),
        "event": event,
        "position": position,
        **extra,
    }


async def stored(runtime: Runtime) -> list[ListenEvent]:
    async with runtime.db.session(write=False) as session:
        return list(await session.scalars(select(ListenEvent).order_by(ListenEvent.id)))


async def figures(client: httpx.AsyncClient, url: str, token: str, **params: Any) -> Any:
    response = await client.get(url, params=params, headers=bearer(token))
    assert response.status_code == 200, response.text
    return response.json()


async def test_beacons_and_the_figures_they_make(
    client: httpx.AsyncClient, runtime: Runtime, listened: Listened
) -> None:
    episode = listened.episode
    before = utcnow()
    # A plays from the start, skips 60 s → 120 s and plays to the end; C resumed at 100 s.
    # Their beacons are interleaved in one batch, as a shared queue would send them.
    batch = [
        beacon(episode, A, "play", 0, t=1_765_000_000_000),
        beacon(episode, C, "play", 100),
        beacon(episode, A, "progress", 60),
        beacon(episode, A, "seek", 120, **{"from": 60}),
        beacon(episode, C, "progress", 120),
        beacon(episode, A, "progress", 180),
        beacon(episode, A, "ended", 199.5),
    ]
    response = await client.post(BEACONS, json={"events": batch})
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": 7}
    # B sends one beacon per request, the single-event form.
    for event, position in (("play", 0), ("progress", 30), ("pause", 40)):
        single = await client.post(BEACONS, json=beacon(episode, B, event, position))
        assert single.status_code == 202 and single.json() == {"accepted": 1}

    rows = await stored(runtime)
    assert len(rows) == 10
    assert [(r.session_id, r.event) for r in rows[:7]] == [
        (b["session_id"], b["event"]) for b in batch
    ]
    assert rows[3].from_position == 60 and rows[0].from_position is None
    assert all(r.show_id == episode.show.id and r.episode_id == episode.id for r in rows)
    # Server time, in the order of the batch (the client's `t` is ignored).
    times = [r.at for r in rows]
    assert times == sorted(times) and len(set(times)) == 10
    assert before <= times[0] and times[-1] <= utcnow()

    found = await figures(client, listened.url, listened.team.viewer.token)
    assert found["episode_id"] == str(episode.id)
    assert found["duration_seconds"] == DURATION
    assert found["from"] is None and found["to"] is None
    assert found["sessions"] == 3
    # Listened: A 60 + 80 = 140 (its end snapped to 200), B 40, C 20.
    assert found["median_listen_seconds"] == 40
    assert found["completion_rate"] == round(1 / 3, 4)  # A
    assert found["pauses_per_session"] == round(1 / 3, 4)  # B's one pause
    shares = {point["percent"]: point["share"] for point in found["dropoff"]}
    assert list(shares) == list(range(0, 101, 5))
    third, two_thirds = round(1 / 3, 4), round(2 / 3, 4)
    expected = dict.fromkeys(range(0, 21, 5), two_thirds)  # A and B (B paused at 40 s = 20 %)
    expected |= {25: third, 30: third}  # A, until it skipped at 60 s
    expected |= dict.fromkeys((35, 40, 45), 0.0)  # nobody
    expected |= {50: third, 55: third, 60: two_thirds}  # C from 100 s; A is back at 120 s
    expected |= dict.fromkeys(range(65, 101, 5), third)  # A to the end
    assert shares == expected

    today = utcnow().date()
    day = timedelta(days=1)
    same = await figures(client, listened.url, listened.team.owner.token, **{"from": str(today)})
    assert same["sessions"] == 3 and same["from"] == str(today)
    later = await figures(
        client, listened.url, listened.team.owner.token, **{"from": str(today + day)}
    )
    assert later["sessions"] == 0 and later["median_listen_seconds"] is None
    assert all(point["share"] is None for point in later["dropoff"])
    earlier = await figures(client, listened.url, listened.team.owner.token, to=str(today - day))
    assert earlier["sessions"] == 0
    backwards = await client.get(
        listened.url,
        params={"from": str(today), "to": str(today - day)},
        headers=listened.team.owner.headers,
    )
    assert backwards.status_code == 422


async def test_a_period_takes_the_sessions_that_started_in_it_whole(
    client: httpx.AsyncClient, runtime: Runtime, listened: Listened
) -> None:
    episode = listened.episode
    started = utcnow() - timedelta(days=2)
    async with runtime.db.session() as session:
        await session.execute(
            insert(ListenEvent),
            [
                {
                    "show_id": episode.show.id,
                    "episode_id": episode.id,
                    "session_id": A,
                    "event": event,
                    "position": position,
                    "at": at,
                }
                for event, position, at in (
                    ("play", 0, started),
                    ("progress", 30, utcnow() - timedelta(seconds=5)),
                )
            ],
        )
    response = await client.post(BEACONS, json=beacon(episode, B, "play", 0))
    assert response.status_code == 202
    owner = listened.team.owner.token
    today = utcnow().date()
    recent = await figures(client, listened.url, owner, **{"from": str(today)})
    assert recent["sessions"] == 1 and recent["median_listen_seconds"] == 0  # B only
    since = await figures(client, listened.url, owner, **{"from": str(started.date())})
    assert since["sessions"] == 2
    assert since["median_listen_seconds"] == 15  # A's 30 s whole, B's 0
    then = await figures(client, listened.url, owner, to=str(started.date()))
    assert then["sessions"] == 1 and then["median_listen_seconds"] == 30


@pytest.mark.parametrize(
    "bad",
    [
        {"session_id": "short"},
        {"session_id": "has spaces in it, see"},
        {"session_id": "x" * 65},
        {"session_id": "ünïcödé-session-id-x"},
        {"position": -1},
        {"position": "soon"},
        {"position": None},
        {"event": "stop"},
        {"episode_id": "not-a-uuid"},
        {"event": "seek"},  # without `from`
        {"from": 5},  # `from` on a play
    ],
)
async def test_invalid_beacons(
    client: httpx.AsyncClient, runtime: Runtime, listened: Listened, bad: dict[str, Any]
) -> None:
    event = {**beacon(listened.episode, A, "play", 10), **bad}
    for body in (event, {"events": [beacon(listened.episode, B, "play", 0), event]}):
        response = await client.post(BEACONS, json=body)
        assert response.status_code == 422, (bad, response.text)
        assert response.json()["error"]["code"] == "validation_error"
    assert await stored(runtime) == []


async def test_invalid_batches_and_numbers(
    client: httpx.AsyncClient, runtime: Runtime, listened: Listened
) -> None:
    episode = listened.episode
    play = beacon(episode, A, "play", 0)
    for body in (
        {"events": [play] * 51},
        {"events": []},
        {"events": "play"},
        [play],
        "play",
    ):
        response = await client.post(BEACONS, json=body)
        assert response.status_code == 422, (body, response.text)
    assert (await client.post(BEACONS, json={"events": [play] * 50})).status_code == 202

    # NaN and infinities are not JSON, but Python's parser reads them: refused all the same.
    for number in ("NaN", "Infinity", "-Infinity"):
        raw = json.dumps(beacon(episode, B, "progress", 0)).replace("0}", f"{number}}}")
        assert number in raw
        response = await client.post(
            BEACONS, content=raw, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 422, response.text

    # Past the end (200 s, with 2 s of tolerance): the whole batch is refused.
    assert (await client.post(BEACONS, json=beacon(episode, B, "progress", 202))).status_code == 202
    for late in (
        beacon(episode, B, "progress", 202.5),
        beacon(episode, B, "seek", 10, **{"from": 1e9}),
    ):
        response = await client.post(
            BEACONS, json={"events": [beacon(episode, C, "play", 0), late]}
        )
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "validation_error"
        assert error["details"][0]["loc"][:3] == ["body", "events", 1]
    rows = await stored(runtime)
    assert len(rows) == 51 and {r.session_id for r in rows} == {A, B}


async def test_only_published_episodes_take_beacons(
    client: httpx.AsyncClient, runtime: Runtime, listened: Listened
) -> None:
    show = listened.episode.show
    draft = await published(runtime, show, publish_at=None)
    scheduled = await published(runtime, show, publish_at=timedelta(hours=1))
    deleted = await published(runtime, show, deleted=True)
    premium = await published(runtime, show, premium=True)
    good = beacon(listened.episode, A, "play", 0)
    for episode_id in (draft.id, scheduled.id, deleted.id, uuid.uuid4()):
        for body in (
            beacon(episode_id, B, "play", 0),
            {"events": [good, beacon(episode_id, B, "play", 0)]},
        ):
            response = await client.post(BEACONS, json=body)
            assert response.status_code == 404, response.text
            assert response.json()["error"]["code"] == "not_found"
    assert await stored(runtime) == []
    # A premium episode's audio needs a subscriber key; its beacons need nothing.
    response = await client.post(BEACONS, json=beacon(premium, B, "play", 0))
    assert response.status_code == 202
    assert [r.episode_id for r in await stored(runtime)] == [premium.id]


@asynccontextmanager
async def app_with(settings: Any) -> AsyncIterator[tuple[Runtime, Any]]:
    app = create_app(settings, run_jobs=False)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):
        yield app.state.runtime, app


def client_from(app: Any, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def test_rate_limit_counts_events_per_address(settings_factory: Any) -> None:
    async with app_with(settings_factory(listen_events_per_minute=5)) as (runtime, app):
        episode = await published(runtime, await seed_show(runtime))
        play = beacon(episode, A, "play", 0)
        async with client_from(app, "203.0.113.7") as client:
            assert (await client.post(BEACONS, json={"events": [play] * 3})).status_code == 202
            # Two left: a batch of three is refused whole, then two fit, then nothing does.
            refused = await client.post(BEACONS, json={"events": [play] * 3})
            assert refused.status_code == 429
            assert (await client.post(BEACONS, json={"events": [play] * 2})).status_code == 202
            limited = await client.post(BEACONS, json=play)
            assert limited.status_code == 429
            assert limited.json()["error"]["code"] == "rate_limited"
            assert 1 <= int(limited.headers["Retry-After"]) <= 60
        async with client_from(app, "198.51.100.9") as other:
            assert (await other.post(BEACONS, json=play)).status_code == 202
        assert len(await stored(runtime)) == 6


async def test_who_may_read(
    client: httpx.AsyncClient, runtime: Runtime, listened: Listened
) -> None:
    team, url = listened.team, listened.url
    assert (await client.get(url)).status_code == 401
    assert (await client.get(url, headers=team.stranger.headers)).status_code == 404
    for account in (team.owner, team.editor, team.viewer):
        assert (await client.get(url, headers=account.headers)).status_code == 200
    tokens = {}
    for scope in ("analytics", "write"):
        created = await client.post(
            f"{API}/users/me/tokens",
            json={"name": scope, "scopes": [scope]},
            headers=team.owner.headers,
        )
        assert created.status_code == 201, created.text
        tokens[scope] = created.json()["token"]
    assert (await client.get(url, headers=bearer(tokens["analytics"]))).status_code == 200
    denied = await client.get(url, headers=bearer(tokens["write"]))
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "missing_scope"

    # The stranger's own show and episode: 404 to the team's owner, and through the team's show.
    created = await client.post(
        f"{API}/shows", json={"title": "Elsewhere"}, headers=team.stranger.headers
    )
    assert created.status_code == 201, created.text
    theirs = created.json()
    their_show = SeededShow(uuid.UUID(theirs["id"]), theirs["slug"], uuid.UUID(team.stranger.id))
    their_episode = await published(runtime, their_show)
    theirs_url = f"{API}/shows/{theirs['id']}/analytics/episodes/{their_episode.id}/listening"
    assert (await client.get(theirs_url, headers=team.stranger.headers)).status_code == 200
    assert (await client.get(theirs_url, headers=team.owner.headers)).status_code == 404
    mixed = url.replace(str(listened.episode.id), str(their_episode.id))
    assert (await client.get(mixed, headers=team.owner.headers)).status_code == 404
    unknown = url.replace(str(listened.episode.id), str(uuid.uuid4()))
    response = await client.get(unknown, headers=team.owner.headers)
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


async def test_dropoff_as_csv(client: httpx.AsyncClient, listened: Listened) -> None:
    episode = listened.episode
    batch = [beacon(episode, A, "play", 0), beacon(episode, A, "progress", 100)]
    batch += [beacon(episode, B, "play", 0), beacon(episode, B, "pause", 50)]
    assert (await client.post(BEACONS, json={"events": batch})).status_code == 202
    response = await client.get(
        listened.url, headers={**listened.team.viewer.headers, "Accept": "text/csv"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["percent", "share"] and len(rows) == 22
    shares = {int(percent): float(share) for percent, share in rows[1:]}
    # Both to 25 % (50 s), A alone to 50 % (100 s), nobody after.
    assert shares == {p: 1.0 if p <= 25 else 0.5 if p <= 50 else 0.0 for p in range(0, 101, 5)}
    json_answer = await client.get(
        listened.url, headers={**listened.team.viewer.headers, "Accept": "application/json"}
    )
    assert json_answer.headers["content-type"].startswith("application/json")
    assert {p["percent"]: p["share"] for p in json_answer.json()["dropoff"]} == shares


async def test_openapi_documents_both_routes(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    post = spec["paths"][BEACONS]["post"]
    assert "security" not in post and "202" in post["responses"]
    assert "429" in post["responses"] and "404" in post["responses"]
    listening = spec["paths"][
        f"{API}/shows/{{show_id}}/analytics/episodes/{{episode_id}}/listening"
    ]
    assert "text/csv" in listening["get"]["responses"]["200"]["content"]
    schemas = spec["components"]["schemas"]
    for name in ("ListenEventIn", "ListenBatch", "ListenAccepted", "ListeningRead"):
        assert schemas[name]["examples"], name
