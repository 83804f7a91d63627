"""Cross-parse our feeds with podcast-partytime, the Podcast Index's parser (npm, pinned in
tests/feed/partytime/package-lock.json).

Every Podcasting 2.0 value we emit must come back from partytime as we meant it. Where
partytime 5.0.0 does not read a tag at all, the test asserts what it does expose and says so
in a comment. Not read, or read differently, by partytime 5.0.0:

- ``podcast:image`` (channel, item, live item): partytime only knows the deprecated
  ``podcast:images srcset``; ``podcastImages`` stays absent.
- ``podcast:updateFrequency`` and ``podcast:podping``: not parsed.
- ``podcast:funding`` and ``podcast:contentLink`` on an ``<item>``: only read on the channel
  and on live items respectively.
- ``podcast:location``: only the first one per parent, without ``rel`` and ``country``.
- ``podcast:person`` role and group come back as partytime's display names (``Host``, ``Cast``).
- ``atom:link rel="hub"``: only the first hub (``pubsub.hub``).
- ``podcast:soundbite`` with ``startTime="0"`` is dropped by partytime (it tests the number for
  truthiness); an empty soundbite title comes back as the channel title.

Without node or the installed module the tests skip, except when ``CI=true``: then they fail.
Install with ``npm install --prefix tests/feed/partytime`` (``scripts/test`` does it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from amphora.feed.builder import build_feed
from amphora.feed.data import FeedChannel, FeedItem
from tests.feed.fixtures import (
    ITEM_VALUE,
    OWNER_EMAIL,
    VALUE,
    full_episode,
    live_item,
    rich_channel,
    rich_items,
)

PARTYTIME_DIR = Path(__file__).resolve().parent / "partytime"
MODULE = PARTYTIME_DIR / "node_modules" / "podcast-partytime"


def _node() -> str:
    node = shutil.which("node")
    reason = None
    if node is None:
        reason = "node is not installed"
    elif not (MODULE / "package.json").exists():
        reason = "podcast-partytime is not installed (npm install --prefix tests/feed/partytime)"
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    assert node is not None
    return node


def partytime(xml: bytes) -> dict[str, Any]:
    result = subprocess.run(
        [_node(), str(PARTYTIME_DIR / "parse.mjs")],
        input=xml,
        capture_output=True,
        cwd=PARTYTIME_DIR,
        timeout=60,
        check=True,
    )
    parsed = json.loads(result.stdout)
    assert parsed is not None, result.stderr.decode()
    return parsed  # type: ignore[no-any-return]


def iso(value: datetime | str) -> str:
    """A date as JavaScript's Date.toJSON() writes it."""
    parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@pytest.fixture(scope="module")
def rich() -> dict[str, Any]:
    return partytime(build_feed(rich_channel(), rich_items()))


@pytest.fixture(scope="module")
def items_by_guid(rich: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["guid"]: item for item in rich["items"]}


# --- expectations from our data -------------------------------------------------------------


def person(p: dict[str, Any]) -> dict[str, Any]:
    out = {"name": p["name"], "role": p["role"].title(), "group": p["group"].title()}
    out.update({k: p[k] for k in ("img", "href") if p.get(k)})
    return out


def value(v: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"type": v["type"], "method": v["method"]}
    if v.get("suggested") is not None:
        out["suggested"] = float(v["suggested"])
    out["recipients"] = [
        {
            **({"name": r["name"]} if r.get("name") else {}),
            **({"customKey": r["custom_key"]} if r.get("custom_key") else {}),
            **({"customValue": r["custom_value"]} if r.get("custom_value") else {}),
            "type": r["type"],
            "address": r["address"],
            "split": r["split"],
            "fee": bool(r.get("fee")),
        }
        for r in v["recipients"]
    ]
    return out


def remote(r: dict[str, Any]) -> dict[str, Any]:
    keys = {"feed_guid": "feedGuid", "item_guid": "itemGuid", "feed_url": "feedUrl"}
    keys |= {"title": "title", "medium": "medium"}
    return {camel: r[snake] for snake, camel in keys.items() if r.get(snake)}


def chat(c: dict[str, Any]) -> dict[str, Any]:
    out = {"phase": "7", "protocol": c["protocol"], "server": c["server"]}
    out.update({k: c[s] for s, k in (("account_id", "accountId"), ("space", "space")) if c.get(s)})
    return out


def alternate(a: dict[str, Any], *, live: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": a["type"],
        "length": 0 if live else a["length"],
        "source": [
            {"uri": s["uri"], "contentType": s.get("content_type") or a["type"]}
            for s in a["sources"]
        ],
        "default": bool(a.get("default")),
    }
    if a.get("integrity"):
        out["integrity"] = a["integrity"]
    for key in ("bitrate", "height", "lang", "title", "rel", "codecs"):
        if a.get(key) is not None:
            out[key] = a[key]
    return out


# --- channel --------------------------------------------------------------------------------


def test_channel_basics(rich: dict[str, Any]) -> None:
    channel = rich_channel()
    assert rich["title"] == channel.title
    assert rich["language"] == channel.language
    assert rich["explicit"] is False
    assert rich["itunesType"] == "serial"
    assert rich["itunesImage"] == channel.image_url
    assert rich["itunesNewFeedUrl"] == channel.new_feed_url
    assert rich["itunesCategory"] == [
        "Music > Music Commentary",
        "Music > Music History",
        "Technology",
        "Kids & Family > Education for Kids",
    ]
    assert rich["owner"] == {"name": channel.owner_name, "email": channel.owner_email}
    assert rich["author"] == channel.author
    assert rich["copyright"] == channel.copyright
    assert rich["subtitle"] == channel.subtitle
    assert rich["lastBuildDate"] == iso(channel.last_build_date)  # type: ignore[arg-type]
    # partytime keeps only the first hub
    assert rich["pubsub"] == {"self": channel.self_url, "hub": channel.hubs[0]}


def test_channel_podcast_namespace(rich: dict[str, Any]) -> None:
    channel = rich_channel()
    assert rich["locked"] is True
    assert rich["podcastOwner"] == OWNER_EMAIL
    assert rich["guid"] == channel.podcast_guid
    assert rich["medium"] == "podcast"
    assert rich["podcastFunding"] == [
        {"message": f.get("label", ""), "url": f["url"]} for f in channel.funding
    ]
    assert rich["podcastPeople"] == [person(p) for p in channel.persons]
    # Only the first location, and without rel/country.
    first = channel.locations[0]
    assert rich["podcastLocation"] == {
        "name": first["name"],
        "osm": first["osm"],
        "geo": first["geo"],
    }
    assert rich["license"] == channel.license
    assert rich["podroll"] == [remote(r) for r in channel.podroll]
    assert rich["trailers"] == [
        {
            "title": t["title"],
            "url": t["url"],
            "pubdate": iso(t["pubdate"]),
            **{k: t[k] for k in ("type", "length", "season") if t.get(k) is not None},
        }
        for t in channel.trailers
    ]
    assert rich["value"] == value(VALUE)
    assert rich["podcastTxt"] == [
        {"value": t["value"], **({"purpose": t["purpose"]} if t.get("purpose") else {})}
        for t in channel.txt
    ]
    assert rich["chat"] == chat(channel.chat)  # type: ignore[arg-type]
    assert rich["podcastBlocked"] == "no"
    assert rich["podcastBlockedPlatforms"] == {"spotify": True, "youtube": True}
    assert channel.publisher is not None
    assert rich["podcastPublisher"] == {
        "feedGuid": channel.publisher["feed_guid"],
        "feedUrl": channel.publisher["feed_url"],
    }
    # Not parsed by partytime 5.0.0: podcast:image, podcast:updateFrequency, podcast:podping.
    for key in ("podcastImages", "updateFrequency", "podping", "podcastPodping"):
        assert key not in rich


def test_channel_switches(rich: dict[str, Any]) -> None:
    channel = rich_channel(
        block={"all": True, "platforms": ["spotify"]},
        complete=True,
        locked=False,
        medium="music",
        explicit=True,
        itunes_block=True,
    )
    parsed = partytime(build_feed(channel, rich_items()))
    assert parsed["podcastBlocked"] == "yes"
    assert parsed["podcastBlockedPlatforms"] == {"spotify": True}
    assert parsed["itunesBlock"] is True
    assert parsed["itunesComplete"] is True
    assert parsed["locked"] is False
    assert parsed["medium"] == "music"
    assert parsed["explicit"] is True
    assert rich["itunesBlock"] is False and rich["itunesComplete"] is False


# --- items ----------------------------------------------------------------------------------


def test_every_item_is_read(rich: dict[str, Any]) -> None:
    expected = [item for item in rich_items() if item.live is None]
    assert [i["guid"] for i in rich["items"]] == [item.guid for item in expected]
    for parsed, item in zip(rich["items"], expected, strict=True):
        assert item.enclosure is not None and item.pub_date is not None
        assert parsed["title"] == item.title
        assert parsed["enclosure"] == {
            "url": item.enclosure.url,
            "length": item.enclosure.length,
            "type": item.enclosure.type,
        }
        assert parsed["duration"] == round(item.duration_s or 0)
        assert parsed["pubDate"] == iso(item.pub_date)
        assert parsed["itunesEpisodeType"] == item.episode_type
        assert parsed["itunesSeason"] == item.season
        assert parsed["itunesEpisode"] == int(item.number or 0)
        assert parsed["podcastSeason"]["number"] == item.season
        assert parsed["podcastEpisode"]["number"] == float(item.number or 0)
        assert parsed["podcastTranscripts"] == [
            {
                "url": t.url,
                # partytime names SRT application/srt
                "type": "application/srt" if t.type == "application/x-subrip" else t.type,
                "language": t.language or "en-us",  # falls back to the channel's
                **({"rel": "captions"} if t.captions else {}),
            }
            for t in item.transcripts
        ]
        if item.explicit is not None:
            assert parsed["explicit"] is item.explicit


def test_full_episode_podcast_namespace(items_by_guid: dict[str, dict[str, Any]]) -> None:
    item = full_episode()
    parsed = items_by_guid[item.guid]
    assert parsed["subtitle"] == item.subtitle
    assert parsed["itunesImage"] == item.image_url
    assert parsed["link"] == item.link
    assert parsed["podcastSeason"] == {"number": item.season, "name": item.season_name}
    assert parsed["podcastEpisode"] == {"number": 1, "display": item.number_display}
    assert parsed["podcastChapters"] == {
        "url": item.chapters_url,
        "type": "application/json+chapters",
    }
    assert parsed["podcastSoundbites"] == [
        {
            "duration": b["duration"],
            "startTime": b["start_time"],
            # an empty title comes back as the channel title
            "title": b.get("title") or rich_channel().title,
        }
        for b in item.soundbites
    ]
    assert parsed["podcastPeople"] == [person(p) for p in item.persons]
    location = item.locations[0]
    assert parsed["podcastLocation"] == {"name": location["name"], "geo": location["geo"]}
    # an SPDX identifier without url: partytime supplies the SPDX page
    assert parsed["license"]["identifier"] == item.license["identifier"]  # type: ignore[index]
    assert parsed["value"] == value(ITEM_VALUE)
    assert parsed["podcastSocialInteraction"] == [
        {
            "platform": s["protocol"],
            "id": s.get("account_id", ""),
            "url": s["uri"],
            "priority": s["priority"],
            **({"profileUrl": s["account_url"]} if s.get("account_url") else {}),
        }
        for s in item.social_interact
    ]
    assert parsed["podcastTxt"] == item.txt
    assert parsed["chat"] == chat(item.chat)  # type: ignore[arg-type]
    assert parsed["alternativeEnclosures"] == [alternate(a) for a in item.alternate_enclosures]
    # Not parsed on items by partytime 5.0.0: podcast:funding, podcast:contentLink,
    # podcast:image.
    for key in ("podcastFunding", "contentLinks", "podcastImages"):
        assert key not in parsed


def test_other_items(items_by_guid: dict[str, dict[str, Any]]) -> None:
    bonus = items_by_guid["amphora:bonus:0002"]
    assert bonus["license"] == {
        "identifier": "My Own Licence",
        "url": "https://ars-nova.example.com/licence",
    }
    assert bonus["itunesImage"] == "https://cdn.example.com/ars-nova/artwork/bonus.jpg"
    second = items_by_guid["https://ars-nova.example.com/?p=2"]
    assert second["podcastSoundbites"] == [
        {"duration": 30, "startTime": 12, "title": "State & transition"}
    ]
    # no item value: partytime falls back to the channel's
    assert second["value"] == value(VALUE)


def test_decimal_episode_numbers() -> None:
    item = replace(full_episode(), number=Decimal("12.50"), number_display="12½")
    channel = rich_channel(show_type="episodic")
    (parsed,) = partytime(build_feed(channel, [item]))["items"]
    assert parsed["podcastEpisode"] == {"number": 12.5, "display": "12½"}
    assert "itunesEpisode" not in parsed  # Apple wants integers: none is written


# --- live items -----------------------------------------------------------------------------


def test_live_item(rich: dict[str, Any]) -> None:
    item = live_item()
    assert item.live is not None and item.enclosure is not None
    (parsed,) = rich["podcastLiveItems"]
    assert parsed["status"] == item.live["status"]
    assert parsed["start"] == iso(item.live["start"])
    assert parsed["end"] == iso(item.live["end"])
    assert parsed["guid"] == item.guid
    assert parsed["title"] == item.title
    assert parsed["link"] == item.link
    assert parsed["image"] == item.image_url
    assert parsed["enclosure"] == {
        "url": item.enclosure.url,
        "length": 0,
        "type": item.enclosure.type,
    }
    assert parsed["contentLinks"] == [
        {"title": c["text"], "url": c["href"]} for c in item.content_links
    ]
    assert parsed["podcastPeople"] == [person(p) for p in item.persons]
    assert parsed["chat"] == chat(item.chat)  # type: ignore[arg-type]
    assert parsed["value"] == value(ITEM_VALUE)
    assert parsed["alternativeEnclosures"] == [
        alternate(a, live=True) for a in item.alternate_enclosures
    ]
    # podcast:image on a live item: not parsed (partytime knows only podcast:images).
    assert "podcastImages" not in parsed
    # A live item is not among the regular items.
    assert item.guid not in {i["guid"] for i in rich["items"]}


def test_live_item_without_enclosure_is_dropped_by_partytime() -> None:
    # Why check_feed warns about it (live.no_enclosure).
    item = replace(live_item(), enclosure=None)
    parsed = partytime(build_feed(rich_channel(), [item, full_episode()]))
    assert parsed.get("podcastLiveItems", []) == []


def test_channel_without_pc20_extras() -> None:
    channel = FeedChannel(title="Plain", self_url="https://feeds.example.com/p.xml", locked=False)
    parsed = partytime(
        build_feed(channel, [FeedItem(guid="g", title="t", enclosure=full_episode().enclosure)])
    )
    assert parsed["title"] == "Plain"
    # locked without an owner attribute is not read by partytime (it requires owner=)
    assert "locked" not in parsed
    assert [i["guid"] for i in parsed["items"]] == ["g"]
