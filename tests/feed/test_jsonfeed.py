"""The export formats next to RSS: JSON Feed 1.1 and OPML 2.0."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import feedparser
from lxml import etree

from amphora.feed.data import FeedChannel, FeedItem
from amphora.feed.jsonfeed import JSON_FEED_VERSION, build_json_feed
from amphora.feed.opml import build_opml
from tests.feed.fixtures import LONG_NOTES, SELF_URL, full_episode, rich_channel, rich_items

JSON_URL = "https://feeds.example.com/shows/ars-nova/feed.json"


def test_json_feed_channel() -> None:
    channel = rich_channel()
    feed = json.loads(build_json_feed(channel, rich_items(), feed_url=JSON_URL))
    assert feed["version"] == JSON_FEED_VERSION == "https://jsonfeed.org/version/1.1"
    assert feed["title"] == channel.title
    assert feed["home_page_url"] == channel.link
    assert feed["feed_url"] == JSON_URL
    assert feed["description"] == "A show about music & code. Ça va?\nWeekly\nWebsite"
    assert feed["icon"] == channel.image_url
    assert feed["authors"] == [{"name": channel.author}]
    assert feed["language"] == "en-us"
    assert feed["hubs"] == [{"type": "WebSub", "url": hub} for hub in channel.hubs]


def test_json_feed_items() -> None:
    feed = json.loads(build_json_feed(rich_channel(), rich_items(), feed_url=JSON_URL))
    # the live item is left out, the order kept
    assert [item["id"] for item in feed["items"]] == [
        "amphora:bonus:0002",
        "https://ars-nova.example.com/?p=2",
        "amphora:ep:0001",
        "amphora:trailer:s1",
    ]
    episode = next(item for item in feed["items"] if item["id"] == "amphora:ep:0001")
    source = full_episode()
    assert episode["url"] == source.link
    assert episode["title"] == source.title
    assert episode["content_html"] == LONG_NOTES
    assert episode["summary"] == source.subtitle
    assert episode["date_published"] == "2024-01-08T09:00:00Z"
    assert episode["image"] == source.image_url
    assert episode["attachments"] == [
        {
            "url": "https://cdn.example.com/ars-nova/media/ep1-fugue.mp3",
            "mime_type": "audio/mpeg",
            "size_in_bytes": 48_123_456,
            "duration_in_seconds": 3008,
        }
    ]
    second = feed["items"][1]
    assert second["summary"] == "Exposition, development, recapitulation."


def test_json_feed_minimal() -> None:
    channel = FeedChannel(title="Bare", self_url=SELF_URL)
    raw = build_json_feed(channel, [FeedItem(guid="g", title="T")], feed_url=JSON_URL)
    feed = json.loads(raw)
    assert feed == {
        "version": JSON_FEED_VERSION,
        "title": "Bare",
        "feed_url": JSON_URL,
        "language": "en",
        "items": [{"id": "g", "title": "T", "content_text": ""}],
    }


def test_json_feed_is_utf8() -> None:
    raw = build_json_feed(rich_channel(), [], feed_url=JSON_URL)
    assert "Música".encode() in raw


def test_opml() -> None:
    created = datetime(2024, 3, 4, 12, 0, tzinfo=UTC)
    xml = build_opml(
        "Zoë's shows & more",
        [
            ("Ars Nova <live>", SELF_URL, "https://ars-nova.example.com"),
            ("No site\x00", "https://feeds.example.com/other.xml", None),
        ],
        created=created,
    )
    assert xml.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<opml version="2.0">')
    root = etree.fromstring(xml)
    assert root.findtext("head/title") == "Zoë's shows & more"
    assert root.findtext("head/dateCreated") == "Mon, 04 Mar 2024 12:00:00 +0000"
    outlines = [o.attrib for o in root.findall("body/outline")]
    assert outlines == [
        {
            "type": "rss",
            "text": "Ars Nova <live>",
            "title": "Ars Nova <live>",
            "xmlUrl": SELF_URL,
            "htmlUrl": "https://ars-nova.example.com",
        },
        {
            "type": "rss",
            "text": "No site",
            "title": "No site",
            "xmlUrl": "https://feeds.example.com/other.xml",
        },
    ]
    # feedparser reads OPML as a (non-RSS) document without choking on it
    assert feedparser.parse(xml).bozo == 0
