"""The same requests give the same figures whether they reached Amphora's enclosure endpoint or
arrived later in an imported access log: two identical shows, one listened to through the
endpoint, the other through a combined log written from the first one's hit log."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import select

from amphora.delivery.hits import client_hash, client_hash_key
from amphora.models import Download, DownloadBreakdown, DownloadDay, Hit, ListenerCount
from amphora.runtime import Runtime
from tests.analytics.test_processing import APPLE, OVERCAST, WATCH, process
from tests.catalog import make_team
from tests.delivery.seed import SeededEpisode, SeededShow, seed_episode
from tests.fakes.smtp import Mailbox
from tests.helpers import API

AppRT = tuple[Runtime, httpx.AsyncClient]
SPOTIFY = "Spotify/8.5.68 iOS/13.4 (iPhone9,3)"
# (address, User-Agent, the Range of each request; {half}: half the file)
LISTENERS: list[tuple[str, str, list[str | None]]] = [
    ("198.51.100.1", APPLE, ["bytes=0-1", None]),
    ("198.51.100.2", APPLE, ["bytes=0-1"]),
    ("198.51.100.3", WATCH, [None]),
    ("2001:db8:7:7::1", OVERCAST, ["bytes=0-{half_1}", "bytes={half}-"]),
    ("2001:db8:7:7::2", SPOTIFY, ["bytes=0-{half_1}"]),
    ("203.0.113.50", SPOTIFY, [None]),
]


def _client(app_client: httpx.AsyncClient, ip: str) -> httpx.AsyncClient:
    transport: Any = app_client._transport  # the same app, seen from another address
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=transport.app, client=(ip, 40000)),
        base_url="http://testserver",
    )


async def _listen(client: httpx.AsyncClient, episode: SeededEpisode) -> None:
    """Six listeners (``LISTENERS``): a probe and the whole file; a probe only; a watch (a
    bot); the file in two ranges; a first part only; another app in one request."""
    half = len(episode.data) // 2
    for ip, agent, ranges in LISTENERS:
        async with _client(client, ip) as listener:
            for range_header in ranges:
                headers = {"User-Agent": agent}
                if range_header:
                    headers["Range"] = range_header.format(half=half, half_1=half - 1)
                response = await listener.get(episode.url(), headers=headers)
                assert response.status_code in (200, 206, 302), response.text


def _combined_line(hit: Hit, ip: str, path: str) -> str:
    stamp = hit.at.strftime("%d/%b/%Y:%H:%M:%S +0000")
    sent = "-" if hit.bytes_sent is None else str(hit.bytes_sent)
    return (
        f'{ip} - - [{stamp}] "{hit.method} {path} HTTP/1.1" {hit.status} {sent} '
        f'"-" "{hit.user_agent}"'
    )


async def _figures(rt: Runtime, show_id: uuid.UUID) -> dict[str, Any]:
    async with rt.db.session(write=False) as session:
        downloads = list(await session.scalars(select(Download).where(Download.show_id == show_id)))
        days = await session.execute(
            select(DownloadDay.day, DownloadDay.downloads).where(DownloadDay.show_id == show_id)
        )
        breakdowns = await session.execute(
            select(
                DownloadBreakdown.dimension, DownloadBreakdown.value, DownloadBreakdown.downloads
            ).where(DownloadBreakdown.show_id == show_id)
        )
        listeners = await session.execute(
            select(ListenerCount.period, ListenerCount.listeners).where(
                ListenerCount.show_id == show_id
            )
        )
        return {
            "downloads": sorted((d.listener, d.app, d.day) for d in downloads),
            "days": sorted((str(day), n) for day, n in days),
            "breakdowns": sorted((d, v, n) for d, v, n in breakdowns),
            "listeners": sorted((p, n) for p, n in listeners),
        }


async def test_delivered_and_imported_requests_give_the_same_figures(
    analytics_app: AppRT, mailbox: Mailbox
) -> None:
    rt, client = analytics_app
    team = await make_team(client, mailbox)
    other = (
        await client.post(f"{API}/shows", json={"title": "The Twin"}, headers=team.owner.headers)
    ).json()
    owner = uuid.UUID(team.owner.id)
    delivered_show = SeededShow(uuid.UUID(team.show["id"]), team.show["slug"], owner)
    imported_show = SeededShow(uuid.UUID(other["id"]), other["slug"], owner)
    delivered = await seed_episode(rt, delivered_show)
    imported = await seed_episode(rt, imported_show)

    await _listen(client, delivered)
    app = client._transport.app  # type: ignore[attr-defined]
    await app.state.hits.flush()
    async with rt.db.session(write=False) as session:
        hits = list(
            await session.scalars(
                select(Hit).where(Hit.show_id == delivered_show.id).order_by(Hit.id)
            )
        )
    assert len(hits) == 8
    # The same requests, as the other show's web server would have logged them.
    key = client_hash_key(rt.settings.resolved_secret_key)
    addresses = {client_hash(key, ip): ip for ip, _, _ in LISTENERS}
    path = imported.url()
    log = "\n".join(_combined_line(hit, addresses[hit.client_hash], path) for hit in hits)
    response = await client.post(
        f"{API}/shows/{imported_show.id}/analytics/logs",
        params={"format": "combined"},
        content=log.encode(),
        headers={**team.owner.headers, "Content-Type": "text/plain"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["imported"] == 8

    await process(rt)
    figures = await _figures(rt, delivered_show.id)
    # Listeners 1 (probe + file), 4 (two halves) and 6 (one request): three downloads.
    assert len(figures["downloads"]) == 3
    assert {app for _, app, _ in figures["downloads"]} == {"Apple Podcasts", "Overcast", "Spotify"}
    assert figures == await _figures(rt, imported_show.id)
