"""The insights API over processed hits: every endpoint's figures on a hand-built audience, CSV,
who may read, the cache (kept until processing changes the show; cleared by superusers), and
the superusers' views."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from amphora.kit.clock import utcnow
from amphora.models import DownloadBreakdown, Episode, User
from amphora.runtime import Runtime
from tests.analytics.test_processing import (
    APPLE,
    MINUTE,
    OVERCAST,
    UNKNOWN,
    Req,
    long_episode,
    process,
    record,
)
from tests.catalog import Team, make_team
from tests.delivery.seed import SeededEpisode, SeededShow
from tests.fakes.smtp import Mailbox
from tests.helpers import API, bearer

AppRT = tuple[Runtime, httpx.AsyncClient]


def days_ago(days: int, hour: int = 9) -> datetime:
    today = utcnow().date()
    return datetime.combine(today - timedelta(days=days), datetime.min.time(), UTC).replace(
        hour=hour
    )


class Audience:
    """A show with three released episodes and a known audience:

    - ``a`` (released 40 days ago): 3 listeners on its release day, 1 more 10 days later, and
      2 listeners 2 days ago (one of them also listened to ``b``);
    - ``b`` (released 5 days ago): 2 listeners on its release day, 1 on the day after;
    - ``c`` (released today): nothing yet.
    """

    def __init__(self, team: Team, episodes: dict[str, SeededEpisode]) -> None:
        self.team = team
        self.episodes = episodes
        self.url = f"{API}/shows/{team.show['id']}/analytics"


async def build_audience(rt: Runtime, client: httpx.AsyncClient, mailbox: Mailbox) -> Audience:
    team = await make_team(client, mailbox)
    show = SeededShow(uuid.UUID(team.show["id"]), team.show["slug"], uuid.UUID(team.owner.id))
    released = {"a": days_ago(40, 6), "b": days_ago(5, 6), "c": utcnow() - timedelta(minutes=5)}
    episodes = {}
    for name, when in released.items():
        episodes[name] = await long_episode(rt, show)
        async with rt.db.session() as session:
            await session.execute(
                update(Episode)
                .where(Episode.id == episodes[name].id)
                .values(publish_at=when, title=f"Episode {name}")
            )
    a, b = episodes["a"], episodes["b"]
    await record(
        rt,
        a,
        *[Req(days_ago(40, 10), MINUTE, ip=f"198.51.100.{n}") for n in (1, 2, 3)],
        Req(days_ago(30), MINUTE, ip="198.51.100.4", ua=OVERCAST),
        Req(days_ago(2), MINUTE, ip="198.51.100.1"),
        Req(days_ago(2), MINUTE, ip="198.51.100.5", ua=UNKNOWN),
    )
    await record(
        rt,
        b,
        Req(days_ago(5, 10), MINUTE, ip="198.51.100.1"),
        Req(days_ago(5, 11), MINUTE, ip="198.51.100.6"),
        Req(days_ago(4), MINUTE, ip="198.51.100.7", ua=OVERCAST),
    )
    await process(rt)
    return Audience(team, episodes)


@pytest.fixture
async def audience(analytics_app: AppRT, mailbox: Mailbox) -> Audience:
    rt, client = analytics_app
    return await build_audience(rt, client, mailbox)


async def get(client: httpx.AsyncClient, url: str, token: str, **params: Any) -> Any:
    response = await client.get(url, params=params, headers=bearer(token))
    assert response.status_code == 200, response.text
    return response.json()


async def test_summary(analytics_app: AppRT, audience: Audience) -> None:
    _, client = analytics_app
    found = await get(client, f"{audience.url}/summary", audience.team.viewer.token)
    assert found["episodes"] == 3
    assert found["downloads"] == {"all_time": 9, "last_7_days": 5, "last_30_days": 5}
    # Listeners .1 (twice), .5, .6, .7 in the last 30 days: four keys.
    assert found["unique_listeners_30_days"] == 4
    averages = found["average_downloads_per_episode"]
    # Day 1: a=3, b=2 (c is out less than a day: left out); day 7: only a (b is 5 days old).
    # Day 30 of a includes its download 10 days after release.
    assert averages == {"day_1": 2.5, "day_7": 3.0, "day_30": 4.0}


async def test_downloads_and_listeners_series(analytics_app: AppRT, audience: Audience) -> None:
    _, client = analytics_app
    token = audience.team.owner.token
    today = utcnow().date()
    daily = await get(
        client, f"{audience.url}/downloads", token, **{"from": str(today - timedelta(days=6))}
    )
    assert len(daily["points"]) == 7 and daily["total"] == 5
    by_day = {p["start"]: p["value"] for p in daily["points"]}
    assert by_day[str(today - timedelta(days=5))] == 2
    assert by_day[str(today - timedelta(days=2))] == 2
    monthly = await get(
        client,
        f"{audience.url}/downloads",
        token,
        interval="month",
        **{"from": str(today - timedelta(days=60))},
    )
    assert sum(p["value"] for p in monthly["points"]) == 9
    assert all(date.fromisoformat(p["start"]).day == 1 for p in monthly["points"])
    episode_b = await get(
        client,
        f"{audience.url}/downloads",
        token,
        episode_id=str(audience.episodes["b"].id),
        **{"from": str(today - timedelta(days=60))},
    )
    assert episode_b["total"] == 3
    # Listeners are never summed: listener .1 on two days is one listener of the month.
    listeners = await get(
        client,
        f"{audience.url}/listeners",
        token,
        interval="month",
        **{"from": str(today - timedelta(days=5)), "to": str(today - timedelta(days=2))},
    )
    assert listeners["total"] is None
    assert sum(p["value"] for p in listeners["points"]) <= 5  # 6 downloads, .1 twice
    per_day = await get(
        client,
        f"{audience.url}/listeners",
        token,
        **{"from": str(today - timedelta(days=5)), "to": str(today - timedelta(days=2))},
    )
    assert [p["value"] for p in per_day["points"]] == [2, 1, 0, 2]


async def test_top_episodes_breakdowns_and_performance(
    analytics_app: AppRT, audience: Audience
) -> None:
    _, client = analytics_app
    token = audience.team.editor.token
    top = await get(client, f"{audience.url}/episodes/top", token, limit=2)
    assert [(e["title"], e["downloads"]) for e in top["episodes"]] == [
        ("Episode a", 6),
        ("Episode b", 3),
    ]
    for bad in (0, 101, "x"):
        response = await client.get(
            f"{audience.url}/episodes/top", params={"limit": bad}, headers=bearer(token)
        )
        assert response.status_code == 422
    window = {"from": str(utcnow().date() - timedelta(days=60))}
    apps = await get(client, f"{audience.url}/apps", token, **window)
    assert apps["total"] == 9
    shares = {item["value"]: item["downloads"] for item in apps["items"]}
    assert shares == {"Apple Podcasts": 6, "Overcast": 2, None: 1}
    countries = await get(client, f"{audience.url}/countries", token, **window)
    assert countries["items"] == [{"value": None, "downloads": 9, "share": 1.0}]
    hours = await get(client, f"{audience.url}/breakdown", token, dimension="hour", **window)
    assert {i["value"]: i["downloads"] for i in hours["items"]} == {"10": 4, "9": 4, "11": 1}
    bad = await client.get(
        f"{audience.url}/breakdown", params={"dimension": "shoe"}, headers=bearer(token)
    )
    assert bad.status_code == 422
    b = audience.episodes["b"]
    performance = await get(client, f"{audience.url}/episodes/{b.id}/performance", token, days=10)
    days = performance["days"]
    assert len(days) == 6  # released 5 days ago: day 1 to day 6 (today)
    assert [d["downloads"] for d in days] == [2, 1, 0, 0, 0, 0]
    assert [d["cumulative"] for d in days] == [2, 3, 3, 3, 3, 3]
    # Compared with the episodes released before it: a had 3 on its first day, 3 by day 6.
    assert performance["episodes_compared"] == 1
    assert days[0]["median_cumulative"] == 3 and days[5]["median_cumulative"] == 3
    # The first episode is compared with those after it: b (2 on day 1) and c (0).
    a = audience.episodes["a"]
    first = await get(client, f"{audience.url}/episodes/{a.id}/performance", token, days=2)
    assert first["episodes_compared"] == 2
    assert [d["median_cumulative"] for d in first["days"]] == [1, 3]  # day 2: only b is out


async def test_csv(analytics_app: AppRT, audience: Audience) -> None:
    _, client = analytics_app
    response = await client.get(
        f"{audience.url}/downloads",
        params={"from": str(utcnow().date() - timedelta(days=6))},
        headers={**bearer(audience.team.viewer.token), "Accept": "text/csv"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["start", "downloads"] and len(rows) == 8
    assert sum(int(value) for _, value in rows[1:]) == 5
    apps = await client.get(
        f"{audience.url}/apps",
        params={"from": str(utcnow().date() - timedelta(days=60))},
        headers={**bearer(audience.team.viewer.token), "Accept": "text/csv"},
    )
    assert apps.text.splitlines()[:2] == ["value,downloads,share", "Apple Podcasts,6,0.6667"]


async def test_who_may_read(analytics_app: AppRT, audience: Audience) -> None:
    _, client = analytics_app
    url = f"{audience.url}/summary"
    assert (await client.get(url)).status_code == 401
    stranger = await client.get(url, headers=bearer(audience.team.stranger.token))
    assert stranger.status_code == 404
    owner = audience.team.owner
    tokens = {}
    for scopes in (["analytics"], ["write"]):
        created = await client.post(
            f"{API}/users/me/tokens",
            json={"name": "+".join(scopes), "scopes": scopes},
            headers=owner.headers,
        )
        assert created.status_code == 201, created.text
        tokens[scopes[0]] = created.json()["token"]
    assert (await client.get(url, headers=bearer(tokens["analytics"]))).status_code == 200
    denied = await client.get(url, headers=bearer(tokens["write"]))
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "missing_scope"
    # An analytics token reads figures, not the catalogue.
    catalogue = await client.get(
        f"{API}/shows/{audience.team.show['id']}", headers=bearer(tokens["analytics"])
    )
    assert catalogue.status_code == 403
    # Another show's episode through this show: 404.
    other = await long_episode(analytics_app[0])
    response = await client.get(
        f"{audience.url}/episodes/{other.id}/performance", headers=owner.headers
    )
    assert response.status_code == 404


async def test_answers_are_cached_until_processing_changes_the_show(
    analytics_app: AppRT, audience: Audience, mailbox: Mailbox
) -> None:
    rt, client = analytics_app
    token = audience.team.owner.token
    url = f"{audience.url}/summary"
    first = await get(client, url, token)
    assert first["downloads"]["all_time"] == 9
    # Rollups changed behind processing's back: the cached answer stays...
    async with rt.db.session() as session:
        await session.execute(
            update(DownloadBreakdown)
            .where(
                DownloadBreakdown.dimension == "total",
                DownloadBreakdown.day == days_ago(40).date(),
            )
            .values(downloads=DownloadBreakdown.downloads + 100)
        )
    assert (await get(client, url, token))["downloads"]["all_time"] == 9
    # ...until processing writes new figures for the show (computed again from the downloads,
    # which also puts the tampered day right).
    await record(rt, audience.episodes["c"], Req(utcnow() - timedelta(minutes=1), MINUTE))
    await process(rt)
    assert (await get(client, url, token))["downloads"]["all_time"] == 10
    # Superusers see and clear the cache.
    admin = audience.team.stranger
    async with rt.db.session() as session:
        await session.execute(
            update(User).where(User.email == admin.email).values(is_superuser=True)
        )
    denied = await client.get(f"{API}/admin/cache", headers=audience.team.owner.headers)
    assert denied.status_code == 403
    stats = await get(client, f"{API}/admin/cache", admin.token)
    assert stats["local"]["entries"] >= 1 and stats["local"]["bytes"] > 0
    async with rt.db.session() as session:
        await session.execute(
            update(DownloadBreakdown)
            .where(
                DownloadBreakdown.dimension == "total",
                DownloadBreakdown.day == days_ago(5).date(),
            )
            .values(downloads=DownloadBreakdown.downloads + 1000)
        )
    assert (await get(client, url, token))["downloads"]["all_time"] == 10
    cleared = await client.delete(f"{API}/admin/cache", headers=bearer(admin.token))
    assert cleared.status_code == 204
    assert (await get(client, url, token))["downloads"]["all_time"] == 1010
    assert (await get(client, f"{API}/admin/cache", admin.token))["local"]["entries"] >= 1


async def test_admin_views(analytics_app: AppRT, audience: Audience) -> None:
    rt, client = analytics_app
    admin = audience.team.stranger
    async with rt.db.session() as session:
        await session.execute(
            update(User).where(User.email == admin.email).values(is_superuser=True)
        )
    assert (
        await client.get(f"{API}/admin/analytics/summary", headers=audience.team.owner.headers)
    ).status_code == 403
    summary = await get(
        client,
        f"{API}/admin/analytics/summary",
        admin.token,
        **{"from": str(utcnow().date() - timedelta(days=60))},
    )
    assert (summary["downloads"], summary["shows"], summary["episodes"]) == (9, 1, 2)
    assert summary["top_shows"][0]["downloads"] == 9
    assert summary["top_apps"][0] == {"value": "Apple Podcasts", "downloads": 6}
    unknown = await get(client, f"{API}/admin/analytics/unknown-user-agents", admin.token)
    assert [(u["user_agent"], u["hits"]) for u in unknown] == [(UNKNOWN, 1)]
    assert APPLE not in {u["user_agent"] for u in unknown}
