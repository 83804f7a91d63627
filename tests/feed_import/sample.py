"""A feed as a typical old host publishes it, served by the fake old host, and the API steps
of an import."""

from __future__ import annotations

from datetime import timedelta
from email.utils import format_datetime
from typing import Any

import httpx

from amphora.kit.clock import utcnow
from amphora.media.testaudio import tone_mp3
from tests.catalog import image_bytes
from tests.fakes.oldhost import OldHost
from tests.helpers import API, Account, eventually

PODCAST_GUID = "917393e3-1b1e-5cef-ace4-edaa54e1f810"
VTT = "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nHello from the lighthouse.\n"
CHAPTERS = '{"version": "1.2.0", "chapters": [{"startTime": 0, "title": "Opening"}]}'


def item_xml(host: OldHost, n: int, *, extra: str = "", media: bytes | None = None) -> str:
    audio = media if media is not None else tone_mp3(1.0 + n / 10, title=f"Episode {n}")
    url = host.put(f"/media/ep{n}.mp3", audio, content_type="audio/mpeg")
    day = utcnow().replace(microsecond=0) - timedelta(days=10 - n)
    return f"""
    <item>
      <title>Episode {n}: the keeper's log</title>
      <guid isPermaLink="false">old-host:episode/{n}</guid>
      <pubDate>{format_datetime(day)}</pubDate>
      <description><![CDATA[<p>Notes for episode {n}. <script>alert(1)</script></p>]]></description>
      <enclosure url="{url}" length="{len(audio)}" type="audio/mpeg"/>
      <itunes:duration>00:00:0{n}</itunes:duration>
      <itunes:episode>{n}</itunes:episode>
      <itunes:season>1</itunes:season>
      <itunes:episodeType>full</itunes:episodeType>
      <itunes:explicit>no</itunes:explicit>
      <podcast:person role="guest" href="https://example.com/grace">Grace Hopper</podcast:person>
      <podcast:soundbite startTime="0.5" duration="0.4">The storm</podcast:soundbite>
      {extra}
    </item>"""


def feed_xml(host: OldHost, items: str, *, channel_extra: str = "") -> str:
    art = host.put("/art/show.jpg", image_bytes(1400, 1400), content_type="image/jpeg")
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"
     xmlns:podcast="https://podcastindex.org/namespace/1.0"
     xmlns:content="http://purl.org/rss/1.0/modules/content/">
  <channel>
    <title>The Lighthouse Hour</title>
    <link>https://lighthouse.example.com/</link>
    <description>Stories from the coast.</description>
    <language>en-US</language>
    <itunes:author>Ada Lovelace</itunes:author>
    <itunes:owner>
      <itunes:name>Ada</itunes:name><itunes:email>ada@lighthouse.example.com</itunes:email>
    </itunes:owner>
    <itunes:image href="{art}"/>
    <itunes:category text="Games &amp; Hobbies">
      <itunes:category text="Video Games"/>
    </itunes:category>
    <itunes:category text="History"/>
    <itunes:explicit>false</itunes:explicit>
    <podcast:guid>{PODCAST_GUID}</podcast:guid>
    <podcast:funding url="https://lighthouse.example.com/support">Support us</podcast:funding>
    {channel_extra}
    {items}
  </channel>
</rss>"""


async def start_import(
    client: httpx.AsyncClient, account: Account, feed_url: str, **options: Any
) -> dict[str, Any]:
    response = await client.post(
        f"{API}/imports", json={"feed_url": feed_url, **options}, headers=account.headers
    )
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


async def wait_for_status(
    client: httpx.AsyncClient, account: Account, import_id: str, *statuses: str
) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def reached() -> bool:
        response = await client.get(f"{API}/imports/{import_id}", headers=account.headers)
        seen.update(response.json())
        return seen["status"] in statuses

    await eventually(reached, timeout=60)
    return seen
