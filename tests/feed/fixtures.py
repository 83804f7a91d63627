"""Feed data for the builder, rule and cross-parser tests.

``rich_channel()`` sets every field of ``FeedChannel``; ``rich_items()`` covers every field of
``FeedItem`` across a full episode, a second episode, a trailer, a bonus episode and a live
item. Text carries non-ASCII characters and ``& < >``; the first episode's notes are over
Apple's 4000-byte limit. Structured values use the stored JSON shapes of
``amphora.show.podcast_types`` (snake_case keys, optional keys absent or set).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from amphora.feed.data import Enclosure, FeedChannel, FeedItem, TranscriptLink
from amphora.feed.guid import podcast_guid
from amphora.kit.html import sanitize_html

SELF_URL = "https://feeds.example.com/shows/ars-nova/rss.xml"
SITE = "https://ars-nova.example.com"
CDN = "https://cdn.example.com/ars-nova"
SHOW_GUID = podcast_guid(SELF_URL)
OWNER_EMAIL = "owner@ars-nova.example.com"

SHOW_TITLE = "Ars Nova — Música & <Code> 🎧"
SHOW_NOTES = (
    "<p>A show about <strong>music</strong> &amp; code. Ça va?</p>"
    '<ul><li>Weekly</li><li><a href="https://ars-nova.example.com">Website</a></li></ul>'
)

LONG_NOTES_SOURCE = "".join(
    f"<p>Part {n}: Grüße from Zürich &amp; “quotes” — tags like &lt;b&gt; stay text. "
    f"Intervals, tempo & timbre explained; café, naïve, 日本語.</p>"
    for n in range(1, 60)
)
LONG_NOTES = sanitize_html(LONG_NOTES_SOURCE)
assert len(LONG_NOTES.encode()) > 4000

PERSON_HOST: dict[str, Any] = {
    "name": "Zoë Ångström",
    "role": "host",
    "group": "cast",
    "img": f"{CDN}/people/zoe.jpg",
    "href": "https://zoe.example.com",
}
PERSON_PRODUCER: dict[str, Any] = {"name": "Ben O'Neil & Co", "role": "producer", "group": "cast"}
PERSON_GUEST: dict[str, Any] = {
    "name": "Dr. Ada <Lovelace>",
    "role": "guest",
    "group": "cast",
    "href": "https://ada.example.com",
}

VALUE: dict[str, Any] = {
    "type": "lightning",
    "method": "keysend",
    "suggested": "0.00000005000",
    "recipients": [
        {
            "name": "Zoë (host)",
            "type": "node",
            "address": "03ae9f91a0cb8ff43840e3c322c4c61f019d8c1c3cea15a25cfc425ac605e61a4a",
            "split": 95,
            "custom_key": "696969",
            "custom_value": "eChoVKtO1KujpAA5HCoB",
        },
        {
            "name": "Amphora hosting fee",
            "type": "node",
            "address": "02d5c1bf8b940dc9cadca86d1b0a3c37fbe39cee4c7e839e33bef9174531d27f52",
            "split": 5,
            "fee": True,
        },
    ],
}

ITEM_VALUE: dict[str, Any] = {
    "type": "lightning",
    "method": "keysend",
    "recipients": [
        {
            "name": "Guest Ada",
            "type": "node",
            "address": "032f4ffbbafffbe51726ad3c164a3d0d37ec27bc67b29a159b0f49ae8ac21b8508",
            "split": 50,
        },
        {
            "name": "Zoë (host)",
            "type": "node",
            "address": "03ae9f91a0cb8ff43840e3c322c4c61f019d8c1c3cea15a25cfc425ac605e61a4a",
            "split": 50,
        },
    ],
}


def rich_channel(**changes: Any) -> FeedChannel:
    """A channel with every field set (``changes`` override single fields)."""
    channel = FeedChannel(
        title=SHOW_TITLE,
        self_url=SELF_URL,
        description_html=SHOW_NOTES,
        subtitle="Music theory for programmers & friends",
        language="en-us",
        link=SITE,
        hubs=("https://pubsubhubbub.appspot.com/", "https://websub.example.com/hub"),
        image_url=f"{CDN}/artwork/show-3000.jpg",
        categories=[
            {"category": "Music", "subcategory": "Music Commentary"},
            {"category": "Technology"},
            {"category": "Kids & Family", "subcategory": "Education for Kids"},
            {"category": "Music", "subcategory": "Music History"},
        ],
        explicit=False,
        show_type="serial",
        author="Zoë Ångström & Friends",
        owner_name="Zoë Ångström",
        owner_email=OWNER_EMAIL,
        copyright="© 2024 Ars Nova Media",
        new_feed_url=SELF_URL,
        block={"all": False, "platforms": ["spotify", "youtube"]},
        itunes_block=False,
        complete=False,
        locked=True,
        podcast_guid=SHOW_GUID,
        medium="podcast",
        funding=[
            {"url": "https://ko-fi.com/arsnova", "label": "Buy us a coffee ☕"},
            {"url": "https://patreon.com/arsnova", "label": "Support on Patreon & get extras"},
            {"url": "https://ars-nova.example.com/support"},
        ],
        persons=[PERSON_HOST, PERSON_PRODUCER],
        locations=[
            {
                "name": "Zürich, Switzerland",
                "rel": "creator",
                "geo": "geo:47.3769,8.5417",
                "osm": "R1682248",
                "country": "CH",
            },
            {"name": "Vienna & surroundings", "rel": "subject", "country": "AT"},
        ],
        license={"identifier": "cc-by-4.0", "url": "https://creativecommons.org/licenses/by/4.0/"},
        podroll=[
            {
                "feed_guid": "917393e3-1b1e-5cef-ace4-edaa54e1f810",
                "feed_url": "https://mp3s.nashownotes.com/pc20rss.xml",
                "title": "Podcasting 2.0",
            },
            {"feed_guid": "9b024349-ccf0-5f69-a609-6b82873eab3c", "medium": "podcast"},
        ],
        update_frequency={
            "text": "Every other Monday",
            "complete": False,
            "dtstart": "2024-01-01T09:00:00+00:00",
            "rrule": "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO",
        },
        trailers=[
            {
                "title": "Season one trailer",
                "url": f"{CDN}/trailers/s1.mp3",
                "pubdate": "2024-01-01T08:00:00+00:00",
                "length": 498537,
                "type": "audio/mpeg",
                "season": 1,
            },
            {
                "title": "The show in a minute",
                "url": f"{CDN}/trailers/show.m4a",
                "pubdate": datetime(2023, 12, 24, 18, 30, tzinfo=UTC),
            },
        ],
        value=VALUE,
        txt=[
            {"value": "naj3eEZaWVVY9a38uhX8FekACyhtqP4JN", "purpose": "applepodcastsverify"},
            {"value": "Ownership proof for Amphora: zoë & friends"},
        ],
        chat={
            "server": "irc.zeronode.net",
            "protocol": "irc",
            "account_id": "@arsnova",
            "space": "#arsnova",
        },
        images=[
            {
                "href": f"{CDN}/artwork/banner.jpg",
                "alt": "Ars Nova banner: a piano keyboard & code",
                "aspect_ratio": "16/9",
                "width": 1920,
                "height": 1080,
                "type": "image/jpeg",
                "purpose": "social cover",
            },
            {"href": f"{CDN}/artwork/show-3000.jpg", "aspect_ratio": "1/1", "width": 3000},
        ],
        publisher={
            "feed_guid": "003af0a0-6a45-55cf-b765-68e3d349551a",
            "feed_url": "https://publisher.example.com/rss.xml",
        },
        podping=True,
        last_build_date=datetime(2024, 3, 4, 12, 0, tzinfo=UTC),
        generator="Amphora 0.1.0",
    )
    return replace(channel, **changes)


def _enclosure(name: str, length: int, type_: str = "audio/mpeg") -> Enclosure:
    return Enclosure(url=f"{CDN}/media/{name}", length=length, type=type_)


def full_episode() -> FeedItem:
    """Episode 1: every item field, long notes, captions, alternate enclosures."""
    return FeedItem(
        guid="amphora:ep:0001",
        title="Fugue & <Function>: “Bach” für Programmierer 🎹",
        description_html=LONG_NOTES,
        subtitle="Counterpoint as recursion",
        link=f"{SITE}/episodes/1",
        pub_date=datetime(2024, 1, 8, 9, 0, tzinfo=UTC),
        enclosure=_enclosure("ep1-fugue.mp3", 48_123_456),
        duration_s=3007.6,
        explicit=True,
        image_url=f"{CDN}/artwork/ep1.png",
        episode_type="full",
        season=1,
        season_name="Baroque & Beyond",
        number=Decimal("1"),
        number_display="Ep. 1 — Fugue",
        block=False,
        persons=[PERSON_HOST, PERSON_GUEST],
        locations=[{"name": "Thomaskirche, Leipzig", "geo": "geo:51.3396,12.3729"}],
        funding=[{"url": "https://ko-fi.com/ada", "label": "Tip Ada"}],
        soundbites=[
            {"start_time": 73.5, "duration": 60, "title": "Why fugues & loops rhyme"},
            {"start_time": 1234, "duration": 42.25},
        ],
        license={"identifier": "cc-by-sa-4.0"},
        value=ITEM_VALUE,
        social_interact=[
            {
                "protocol": "activitypub",
                "uri": "https://podcastindex.social/@arsnova/111111111111111111",
                "account_id": "@arsnova@podcastindex.social",
                "account_url": "https://podcastindex.social/@arsnova",
                "priority": 1,
            },
            {
                "protocol": "atproto",
                "uri": "at://did:plc:abc123/app.bsky.feed.post/3k",
                "priority": 2,
            },
        ],
        chat={"server": "matrix.example.com", "protocol": "matrix", "space": "#ep1:example.com"},
        txt=[{"value": "Recorded live at Leipzig & streamed", "purpose": "note"}],
        images=[
            {
                "href": f"{CDN}/artwork/ep1-wide.jpg",
                "alt": "Fugue diagram",
                "aspect_ratio": "16/9",
                "width": 1600,
            }
        ],
        content_links=[
            {"href": "https://www.youtube.com/watch?v=abcdefghijk", "text": "Watch on YouTube"},
            {"href": f"{SITE}/episodes/1/score"},
        ],
        alternate_enclosures=[
            {
                "type": "video/mp4",
                "length": 512_000_000,
                "bitrate": 2_500_000.0,
                "height": 1080,
                "lang": "en-US",
                "title": "Video 1080p",
                "rel": "video",
                "codecs": "avc1.640028,mp4a.40.2",
                "default": False,
                "sources": [
                    {"uri": f"{CDN}/media/ep1-1080.mp4"},
                    {
                        "uri": "ipfs://QmX33h1yrc5ZTmHGETP2X1kQWdKKj7Lh5rZBG6TF9d4EQ6",
                        "content_type": "video/mp4",
                    },
                ],
                "integrity": {
                    "type": "sri",
                    "value": "sha384-ExVqijgYHm15PqQqdXfW95x+Rs6C+d6E/"
                    "ICxyQOeFevnxNLR/wtJNrNYTjIysUBo",
                },
            },
            {
                "type": "audio/opus",
                "length": 12_000_000,
                "bitrate": 32000,
                "title": "Low bandwidth",
                "default": True,
                "sources": [{"uri": f"{CDN}/media/ep1-32k.opus"}],
            },
        ],
        transcripts=(
            TranscriptLink(f"{CDN}/transcripts/ep1.vtt", "text/vtt", "en", captions=True),
            TranscriptLink(f"{CDN}/transcripts/ep1.srt", "application/x-subrip", "en"),
            TranscriptLink(f"{CDN}/transcripts/ep1.json", "application/json", "de"),
            TranscriptLink(f"{CDN}/transcripts/ep1.html", "text/html"),
        ),
        chapters_url=f"{CDN}/chapters/ep1.json",
    )


def second_episode() -> FeedItem:
    """Episode 2: the numbers as stored Decimals with trailing zeros, m4a audio."""
    return FeedItem(
        guid="https://ars-nova.example.com/?p=2",
        title="Sonata form, or: the state machine",
        description_html="<p>Exposition, development, recapitulation.</p>",
        link=f"{SITE}/episodes/2",
        pub_date=datetime(2024, 1, 22, 9, 0, tzinfo=UTC),
        enclosure=_enclosure("ep2-sonata.m4a", 31_000_000, "audio/x-m4a"),
        duration_s=1800.4,
        explicit=False,
        season=1,
        number=Decimal("2.00"),
        transcripts=(TranscriptLink(f"{CDN}/transcripts/ep2.txt", "text/plain"),),
        persons=[PERSON_HOST],
        soundbites=[{"start_time": 12, "duration": 30, "title": "State & transition"}],
    )


def trailer_episode() -> FeedItem:
    """A season trailer (Apple: trailer + season + episode = a trailer for that episode)."""
    return FeedItem(
        guid="amphora:trailer:s1",
        title="Coming soon: Season 1",
        description_html="<p>What to expect.</p>",
        pub_date=datetime(2024, 1, 1, 8, 0, tzinfo=UTC),
        enclosure=_enclosure("s1-trailer.mp3", 498_537),
        duration_s=59.5,
        episode_type="trailer",
        season=1,
        number=Decimal(1),
        transcripts=(TranscriptLink(f"{CDN}/transcripts/trailer.vtt", "text/vtt"),),
    )


def bonus_episode() -> FeedItem:
    """A bonus episode, video, blocked from Apple."""
    return FeedItem(
        guid="amphora:bonus:0002",
        title="Bonus: Q&A with listeners",
        description_html="<p>Your questions, our answers &amp; a <em>lot</em> of tangents.</p>",
        pub_date=datetime(2024, 2, 29, 17, 45, 30, tzinfo=UTC),
        enclosure=_enclosure("bonus-qa.mp4", 210_000_000, "video/mp4"),
        duration_s=2400,
        episode_type="bonus",
        season=1,
        number=Decimal(2),
        block=True,
        image_url=f"{CDN}/artwork/bonus.jpg",
        transcripts=(TranscriptLink(f"{CDN}/transcripts/bonus.srt", "application/x-subrip"),),
        license={"identifier": "My Own Licence", "url": f"{SITE}/licence"},
    )


def live_item() -> FeedItem:
    """A live stream carried as ``podcast:liveItem``."""
    return FeedItem(
        guid="amphora:live:2024-03-04",
        title="Live: building a synth in Rust",
        description_html="<p>Join us live &amp; ask questions.</p>",
        link=f"{SITE}/live",
        enclosure=Enclosure(
            url="https://stream.example.com/live/arsnova.mp3", length=0, type="audio/mpeg"
        ),
        image_url=f"{CDN}/artwork/live.jpg",
        persons=[PERSON_HOST, PERSON_GUEST],
        chat={"server": "irc.zeronode.net", "protocol": "irc", "space": "#arsnova-live"},
        images=[{"href": f"{CDN}/artwork/live-wide.jpg", "aspect_ratio": "16/9"}],
        content_links=[
            {"href": "https://www.youtube.com/live/arsnova", "text": "Watch on YouTube"},
            {"href": f"{SITE}/live", "text": "Listen on our site"},
        ],
        alternate_enclosures=[
            {
                "type": "application/x-mpegURL",
                "title": "HLS",
                "sources": [{"uri": "https://stream.example.com/live/arsnova.m3u8"}],
            }
        ],
        value=ITEM_VALUE,
        live={
            "status": "live",
            "start": "2024-03-04T18:00:00+00:00",
            "end": "2024-03-04T19:30:00+00:00",
        },
    )


def rich_items() -> list[FeedItem]:
    """Newest first, as the serving layer orders an episodic feed; the live item among them
    (the builders move it first)."""
    return [
        bonus_episode(),
        live_item(),
        second_episode(),
        full_episode(),
        trailer_episode(),
    ]


def plain_item(n: int) -> FeedItem:
    """A typical episode (the shape of most of a large feed)."""
    return FeedItem(
        guid=f"amphora:ep:{n:05d}",
        title=f"Episode {n}: notes & news",
        description_html=f'<p>Show notes for episode {n} with a <a href="{SITE}/{n}">link</a>.</p>',
        link=f"{SITE}/episodes/{n}",
        pub_date=datetime(2020, 1, 1, 9, 0, tzinfo=UTC) + timedelta(days=n),
        enclosure=_enclosure(f"ep{n}.mp3", 20_000_000 + n),
        duration_s=1800 + n,
        explicit=False,
        season=1 + n // 100,
        number=Decimal(n),
        transcripts=(TranscriptLink(f"{CDN}/transcripts/{n}.vtt", "text/vtt"),),
        persons=[PERSON_HOST],
    )
