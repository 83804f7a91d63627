"""A show built only through the API produces a feed with zero errors under our rule checker,
parses cleanly with feedparser, and reads back through partytime (the Podcast Index parser)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import feedparser
import httpx
from lxml import etree

from amphora.feed.rules import check_feed
from amphora.kit.clock import utcnow
from amphora.media.testaudio import tone_mp3
from tests.catalog import Team, image_bytes
from tests.feed.test_partytime import partytime, value
from tests.helpers import API

SHOW = {
    "description": "<p>Stories from the coast, <a href='https://example.com'>one lamp</a>.</p>",
    "language": "en-us",
    "categories": [{"category": "History"}, {"category": "Arts", "subcategory": "Books"}],
    "explicit": False,
    "show_type": "serial",
    "copyright": "© 2026 Lighthouse Media",
    "link": "https://lighthouse.example.com",
    "funding": [{"url": "https://lighthouse.example.com/support", "label": "Keep the lamp lit"}],
    "persons": [{"name": "Ada Lovelace", "role": "host", "href": "https://example.com/ada"}],
    "locations": [{"name": "Cape Cod", "geo": "geo:41.67,-69.95", "country": "US"}],
    "license": {"identifier": "cc-by-4.0"},
    "podroll": [{"feed_guid": "917393e3-1b1e-5cef-ace4-edaa54e1f810"}],
    "update_frequency": {"text": "Weekly", "rrule": "FREQ=WEEKLY"},
    "value": {
        "type": "lightning",
        "method": "keysend",
        "suggested": "0.00000005",
        "recipients": [
            {"name": "Host", "type": "node", "address": "02" + "ab" * 32, "split": 95},
            {"name": "App", "type": "node", "address": "03" + "cd" * 32, "split": 5, "fee": True},
        ],
    },
    "txt": [{"value": "verify-me-123", "purpose": "applepodcastsverify"}],
    "chat": {"server": "irc.example.com", "protocol": "irc", "space": "#lighthouse"},
    "images": [{"href": "https://lighthouse.example.com/wide.jpg", "aspect_ratio": "16/9"}],
}


async def _rich_show(client: httpx.AsyncClient, team: Team) -> list[dict[str, Any]]:
    headers = team.owner.headers
    updated = await client.patch(team.show_url, json=SHOW, headers=headers)
    assert updated.status_code == 200, updated.text
    art = await client.put(
        f"{team.show_url}/artwork",
        files={"file": ("cover.jpg", image_bytes(1400, 1400))},
        headers=headers,
    )
    assert art.status_code == 200, art.text
    episodes = []
    for number in (1, 2):
        made = await client.post(
            f"{team.show_url}/episodes",
            json={
                "title": f"Chapter {number}: The Keeper's Log",
                "description": "<p>We open the logbook of 1891 &amp; read.</p>",
                "season": 1,
                "number": number,
                "episode_type": "full",
                "publish_at": (utcnow() - timedelta(days=3 - number)).isoformat(),
                "persons": [{"name": "Grace Hopper", "role": "guest"}],
                "soundbites": [{"start_time": 5.0, "duration": 10.0, "title": "The storm"}],
                "content_links": [{"href": "https://lighthouse.example.com/1891", "text": "Log"}],
                "alternate_enclosures": [
                    {
                        "type": "audio/opus",
                        "length": 1000,
                        "bitrate": 32000,
                        "title": "Opus",
                        "sources": [{"uri": "https://cdn.example.com/1.opus"}],
                    }
                ],
            },
            headers=headers,
        )
        assert made.status_code == 201, made.text
        episode = made.json()
        url = f"{API}/episodes/{episode['id']}"
        audio = await client.put(
            f"{url}/audio",
            content=tone_mp3(3),
            headers={**headers, "content-type": "audio/mpeg"},
        )
        assert audio.status_code == 200, audio.text
        transcript = await client.post(
            f"{url}/transcripts",
            files={"file": ("t.vtt", b"WEBVTT\n\n00:00.000 --> 00:02.000\nHi.\n", "text/vtt")},
            data={"language": "en", "captions": "true"},
            headers=headers,
        )
        assert transcript.status_code == 201, transcript.text
        chapters = await client.put(
            f"{url}/chapters",
            json={"version": "1.2.0", "chapters": [{"startTime": 0, "title": "Opening"}]},
            headers=headers,
        )
        assert chapters.status_code in (200, 204), chapters.text
        episodes.append(episode)
    return episodes


async def test_an_api_built_show_has_a_clean_feed(client: httpx.AsyncClient, team: Team) -> None:
    episodes = await _rich_show(client, team)
    response = await client.get(f"/feeds/{team.show['slug']}.xml")
    assert response.status_code == 200
    xml = response.content

    problems = check_feed(xml)
    assert [p for p in problems if p.severity == "error"] == []
    check = await client.get(f"{team.show_url}/feed/check", headers=team.viewer.headers)
    assert check.json()["ok"] is True, check.json()

    parsed = feedparser.parse(xml)
    assert not parsed.bozo, parsed.bozo_exception
    assert [e.id for e in parsed.entries] == [e["guid"] for e in episodes]  # serial: oldest first

    party = partytime(xml)
    assert party["title"] == "The Lighthouse Hour"
    assert party["guid"] == team.show["podcast_guid"]
    assert party["podcastPeople"][0]["name"] == "Ada Lovelace"
    assert party["value"] == value(SHOW["value"])  # type: ignore[arg-type]
    assert party["podcastTxt"] == SHOW["txt"]
    items = party["items"]
    assert [i["guid"] for i in items] == [e["guid"] for e in episodes]
    first = items[0]
    assert first["podcastSeason"]["number"] == 1
    assert first["podcastEpisode"]["number"] == 1
    assert first["podcastTranscripts"][0]["type"] == "text/vtt"
    assert first["podcastChapters"]["type"] == "application/json+chapters"
    assert first["podcastSoundbites"][0]["title"] == "The storm"
    assert first["alternativeEnclosures"][0]["source"][0]["uri"] == "https://cdn.example.com/1.opus"

    # Every URL the feed points at is served, with the type the feed announces.
    root = etree.fromstring(xml)
    ns = {"podcast": "https://podcastindex.org/namespace/1.0"}
    for url, kind in (
        *((u, None) for u in root.xpath("//enclosure/@url")),
        *((t.get("url"), t.get("type")) for t in root.xpath("//podcast:transcript", namespaces=ns)),
        *((c.get("url"), c.get("type")) for c in root.xpath("//podcast:chapters", namespaces=ns)),
    ):
        head = await client.head(url.removeprefix("http://testserver"))
        assert head.status_code in (200, 302), (url, head.status_code)
        if kind and head.status_code == 200:
            assert head.headers["content-type"].split(";")[0] == kind
