"""The feed checker: the rich feed is clean, and each rule fires on a feed broken on purpose."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from lxml import etree

from amphora.feed.builder import ITUNES_NS, PODCAST_NS, build_feed
from amphora.feed.data import Enclosure, FeedItem, TranscriptLink
from amphora.feed.rules import RULES, check_feed
from tests.feed.fixtures import full_episode, live_item, rich_channel, rich_items

IT = "{" + ITUNES_NS + "}"
P = "{" + PODCAST_NS + "}"
EP1 = "amphora:ep:0001"


def rich_xml() -> bytes:
    return build_feed(rich_channel(), rich_items())


def test_rich_feed_has_no_problems() -> None:
    problems = check_feed(rich_xml())
    assert [p for p in problems if p.severity == "error"] == []
    # Nothing to recommend either: every recommended tag is present in the fixture.
    assert [p for p in problems if p.severity == "warning"] == []


def test_problem_fields() -> None:
    problems = check_feed(build_feed(rich_channel(categories=[]), rich_items()))
    assert len(problems) == 1
    problem = problems[0]
    assert problem.code == "channel.no_category"
    assert problem.severity == "error"
    assert problem.where == "channel"
    assert problem.message == "The show has no category."
    assert problem.hint == (
        "Choose a category in the show settings (Apple lists only the first one)."
    )


def test_item_problems_name_the_item() -> None:
    feed = build_feed(rich_channel(), [replace(full_episode(), transcripts=())])
    (problem,) = check_feed(feed)
    assert (problem.code, problem.severity, problem.where) == (
        "item.no_transcript",
        "warning",
        f"item {EP1}",
    )


# --- ways to break the rich feed ------------------------------------------------------------


def channel(**changes: Any) -> Callable[[], bytes]:
    return lambda: build_feed(rich_channel(**changes), rich_items())


def episode(**changes: Any) -> Callable[[], bytes]:
    """The rich feed with episode 1 changed."""

    def build() -> bytes:
        items = [replace(i, **changes) if i.guid == EP1 else i for i in rich_items()]
        return build_feed(rich_channel(), items)

    return build


def live(**changes: Any) -> Callable[[], bytes]:
    def build() -> bytes:
        items = [replace(i, **changes) if i.live is not None else i for i in rich_items()]
        return build_feed(rich_channel(), items)

    return build


def items(*extra: FeedItem) -> Callable[[], bytes]:
    return lambda: build_feed(rich_channel(), [*rich_items(), *extra])


def xml(mutate: Callable[[etree._Element], object]) -> Callable[[], bytes]:
    """The rich feed with its XML tree changed by ``mutate(rss)``."""

    def build() -> bytes:
        rss = etree.fromstring(rich_xml())
        mutate(rss)
        return etree.tostring(rss, encoding="UTF-8", xml_declaration=True)

    return build


def ch(rss: etree._Element) -> etree._Element:
    return rss.find("channel")


def ep(rss: etree._Element) -> etree._Element:
    return next(i for i in ch(rss).findall("item") if i.findtext("guid") == EP1)


def live_el(rss: etree._Element) -> etree._Element:
    return ch(rss).find(P + "liveItem")


def set_text(parent: etree._Element, tag: str, text: str) -> None:
    el = parent.find(tag)
    if el is None:
        el = etree.SubElement(parent, tag)
    el.text = text


def remove(parent: etree._Element, tag: str) -> None:
    for el in parent.findall(tag):
        parent.remove(el)


def add(parent: etree._Element, tag: str, text: str | None = None, **attrib: str) -> None:
    etree.SubElement(parent, tag, attrib).text = text


def move(rss: etree._Element, tag: str, source: etree._Element, target: etree._Element) -> None:
    target.append(source.find(tag))


def duplicate(el: etree._Element) -> None:
    el.getparent().append(etree.fromstring(etree.tostring(el)))


def clone_of_ep1(**changes: Any) -> FeedItem:
    return replace(full_episode(), **changes)


ENC = "https://cdn.example.com/ars-nova/media/"

CASES: list[tuple[str, str, Callable[[], bytes]]] = [
    # the document
    ("feed.not_xml", "channel", lambda: b"<rss version='2.0'><channel></rss>"),
    ("feed.not_rss", "channel", lambda: b"<feed xmlns='http://www.w3.org/2005/Atom'/>"),
    (
        "feed.namespace_uri",
        "channel",
        lambda: rich_xml().replace(
            ITUNES_NS.encode(), b"http://www.itunes.com/DTDs/Podcast-1.0.dtd"
        ),
    ),
    # channel: Apple
    ("channel.no_title", "channel", channel(title="")),
    ("channel.no_description", "channel", channel(description_html="")),
    (
        "channel.description_too_long",
        "channel",
        xml(lambda r: set_text(ch(r), "description", "é" * 2001)),
    ),
    ("channel.no_language", "channel", channel(language="")),
    ("channel.bad_language", "channel", channel(language="English")),
    ("channel.no_link", "channel", channel(link=None)),
    ("channel.no_image", "channel", channel(image_url=None)),
    ("image.extension", "channel", channel(image_url="https://cdn.example.com/art.webp")),
    ("image.not_https", "channel", channel(image_url="http://cdn.example.com/art.jpg")),
    ("image.url_not_ascii", "channel", channel(image_url="https://cdn.example.com/künstler.jpg")),
    ("image.bad_url", "channel", channel(image_url="art.jpg")),
    ("image.extension", f"item {EP1}", episode(image_url="https://cdn.example.com/ep.gif")),
    ("channel.no_category", "channel", channel(categories=[])),
    ("channel.unknown_category", "channel", channel(categories=[{"category": "Tech"}])),
    (
        "channel.unknown_subcategory",
        "channel",
        channel(categories=[{"category": "Arts", "subcategory": "Cooking"}]),
    ),
    ("channel.no_explicit", "channel", xml(lambda r: remove(ch(r), IT + "explicit"))),
    ("channel.bad_explicit", "channel", xml(lambda r: set_text(ch(r), IT + "explicit", "yes"))),
    ("channel.bad_type", "channel", channel(show_type="seasonal")),
    ("channel.no_author", "channel", channel(author=None)),
    ("channel.no_owner_email", "channel", channel(owner_email=None)),
    ("channel.yes_only", "channel", xml(lambda r: add(ch(r), IT + "complete", "No"))),
    ("channel.bad_new_feed_url", "channel", channel(new_feed_url="the new one")),
    (
        "date.bad",
        "channel",
        xml(lambda r: set_text(ch(r), "lastBuildDate", "Tue, 04 Mar 2024 12:00:00 +0000")),
    ),
    ("date.bad", f"item {EP1}", xml(lambda r: set_text(ep(r), "pubDate", "2024-01-08T09:00Z"))),
    ("date.bad", "channel", xml(lambda r: ch(r).find(P + "trailer").set("pubdate", "soon"))),
    ("apple.too_long", "channel", channel(title="x" * 256)),
    ("apple.too_long", f"item {EP1}", episode(title="y" * 256)),
    (
        "apple.surrounding_spaces",
        "channel",
        xml(lambda r: set_text(ch(r), IT + "author", " Zoë ")),
    ),
    (
        "apple.surrounding_spaces",
        f"item {EP1}",
        xml(lambda r: ep(r).find("enclosure").set("type", "audio/mpeg ")),
    ),
    # channel: PSP-1
    (
        "channel.self_link",
        "channel",
        xml(lambda r: ch(r).remove(ch(r).find("{*}link[@rel='self']"))),
    ),
    ("channel.self_link", "channel", xml(lambda r: duplicate(ch(r).find("{*}link[@rel='self']")))),
    ("channel.no_locked", "channel", xml(lambda r: remove(ch(r), P + "locked"))),
    ("channel.no_podcast_guid", "channel", channel(podcast_guid=None)),
    # items: Apple
    ("item.no_title", f"item {EP1}", episode(title="")),
    ("item.no_guid", f"item #3 ({full_episode().title})", xml(lambda r: remove(ep(r), "guid"))),
    (
        "item.duplicate_guid",
        f"item {EP1}",
        items(clone_of_ep1(enclosure=Enclosure(f"{ENC}x.mp3", 1, "audio/mpeg"))),
    ),
    ("item.no_enclosure", f"item {EP1}", episode(enclosure=None)),
    (
        "item.bad_enclosure_url",
        f"item {EP1}",
        episode(enclosure=Enclosure("ftp://x/a.mp3", 1, "audio/mpeg")),
    ),
    (
        "item.enclosure_url_not_ascii",
        f"item {EP1}",
        episode(enclosure=Enclosure(f"{ENC}größe.mp3", 1, "audio/mpeg")),
    ),
    (
        "item.bad_enclosure_length",
        f"item {EP1}",
        episode(enclosure=Enclosure(f"{ENC}a.mp3", 0, "audio/mpeg")),
    ),
    (
        "item.bad_enclosure_type",
        f"item {EP1}",
        episode(enclosure=Enclosure(f"{ENC}a.ogg", 9, "audio/ogg")),
    ),
    (
        "item.enclosure_extension",
        f"item {EP1}",
        episode(enclosure=Enclosure(f"{ENC}a.mp3?x=.m4a", 9, "audio/x-m4a")),
    ),
    ("item.duplicate_enclosure", "channel", items(clone_of_ep1(guid="another"))),
    ("item.no_pub_date", f"item {EP1}", episode(pub_date=None)),
    (
        "item.description_too_long",
        f"item {EP1}",
        xml(lambda r: set_text(ep(r), "description", "x" * 4001)),
    ),
    ("item.bad_duration", f"item {EP1}", xml(lambda r: set_text(ep(r), IT + "duration", "1h"))),
    ("item.bad_explicit", f"item {EP1}", xml(lambda r: set_text(ep(r), IT + "explicit", "clean"))),
    ("item.bad_episode_type", f"item {EP1}", episode(episode_type="special")),
    ("item.bad_number", f"item {EP1}", xml(lambda r: set_text(ep(r), IT + "episode", "0"))),
    ("item.bad_number", f"item {EP1}", xml(lambda r: set_text(ep(r), IT + "season", "1.5"))),
    ("item.serial_no_episode", f"item {EP1}", episode(number=None)),
    ("item.yes_only", f"item {EP1}", xml(lambda r: set_text(ep(r), IT + "block", "No"))),
    ("item.no_transcript", f"item {EP1}", episode(transcripts=())),
    # Podcasting 2.0: every tag
    ("podcast.unknown_tag", "channel", xml(lambda r: add(ch(r), P + "lockd", "yes"))),
    ("podcast.misplaced", f"item {EP1}", xml(lambda r: move(r, P + "locked", ch(r), ep(r)))),
    ("podcast.misplaced", "channel", xml(lambda r: move(r, P + "transcript", ep(r), ch(r)))),
    ("podcast.too_many", "channel", xml(lambda r: duplicate(ch(r).find(P + "guid")))),
    ("podcast.too_many", f"item {EP1}", xml(lambda r: duplicate(ep(r).find(P + "chapters")))),
    (
        "podcast.missing_attribute",
        f"item {EP1}",
        xml(lambda r: ep(r).find(P + "transcript").attrib.pop("type")),
    ),
    ("podcast.empty", "channel", xml(lambda r: set_text(ch(r), P + "person", " "))),
    (
        "podcast.too_long",
        f"item {EP1}",
        episode(soundbites=[{"start_time": 1, "duration": 5, "title": "s" * 129}]),
    ),
    ("podcast.too_long", "channel", channel(persons=[{"name": "n" * 129}])),
    ("podcast.too_long", "channel", channel(txt=[{"value": "t" * 4001}])),
    ("podcast.too_long", f"item {EP1}", episode(number_display="d" * 33)),
    (
        "podcast.not_https",
        "channel",
        channel(funding=[{"url": "http://ko-fi.com/x", "label": "x"}]),
    ),
    ("podcast.guid_version", "channel", channel(podcast_guid=str(uuid.UUID(int=7, version=4)))),
    ("podcast.bad_guid", "channel", channel(podcast_guid="ars-nova")),
    ("podcast.bad_medium", "channel", channel(medium="radio")),
    ("podcast.bad_locked", "channel", xml(lambda r: set_text(ch(r), P + "locked", "maybe"))),
    (
        "podcast.transcript_type",
        f"item {EP1}",
        episode(transcripts=(TranscriptLink("https://x.example/t.srt", "application/srt"),)),
    ),
    (
        "podcast.bad_transcript",
        f"item {EP1}",
        xml(lambda r: ep(r).find(P + "transcript").set("rel", "subs")),
    ),
    (
        "podcast.chapters_type",
        f"item {EP1}",
        xml(lambda r: ep(r).find(P + "chapters").set("type", "application/json")),
    ),
    (
        "podcast.deprecated_images",
        "channel",
        xml(lambda r: add(ch(r), P + "images", srcset="a.jpg 1000w")),
    ),
    (
        "podcast.bad_podroll",
        "channel",
        xml(lambda r: remove(ch(r).find(P + "podroll"), P + "remoteItem")),
    ),
    ("podcast.bad_remoteItem", "channel", channel(podroll=[{"feed_guid": "x", "medium": "radio"}])),
    (
        "podcast.bad_publisher",
        "channel",
        xml(lambda r: ch(r).find(P + "publisher")[0].set("medium", "music")),
    ),
    (
        "podcast.bad_liveItem",
        "item amphora:live:2024-03-04",
        live(live={"status": "on-air", "start": "2024-03-04T18:00:00Z"}),
    ),
    (
        "podcast.bad_liveItem",
        "item amphora:live:2024-03-04",
        live(live={"status": "live", "start": "yesterday"}),
    ),
    ("podcast.missing_attribute", "item amphora:live:2024-03-04", live(live={"status": "pending"})),
    ("live.no_content_link", "item amphora:live:2024-03-04", live(content_links=[])),
    ("live.no_title_or_guid", "item amphora:live:2024-03-04", live(title="")),
    ("live.no_enclosure", "item amphora:live:2024-03-04", live(enclosure=None)),
    (
        "podcast.bad_alternateEnclosure",
        f"item {EP1}",
        episode(alternate_enclosures=[{"type": "video/mp4", "sources": []}]),
    ),
    (
        "podcast.bad_integrity",
        f"item {EP1}",
        xml(lambda r: ep(r).find(f"{P}alternateEnclosure/{P}integrity").set("type", "md5")),
    ),
    (
        "podcast.bad_value",
        "channel",
        channel(value={"recipients": [{"type": "node", "address": "a", "split": 0}]}),
    ),
    ("podcast.bad_value", "channel", channel(value={"type": "lightning", "recipients": []})),
    ("podcast.bad_location", "channel", channel(locations=[{"name": "Zürich", "geo": "47,8"}])),
    ("podcast.bad_license", "channel", channel(license={"identifier": "My own licence"})),
    ("podcast.bad_block", "channel", xml(lambda r: set_text(ch(r), P + "block", "maybe"))),
    (
        "podcast.bad_soundbite",
        f"item {EP1}",
        episode(soundbites=[{"start_time": 3, "duration": 0}]),
    ),
    ("podcast.bad_season", f"item {EP1}", xml(lambda r: set_text(ep(r), P + "season", "one"))),
    ("podcast.bad_episode", f"item {EP1}", xml(lambda r: set_text(ep(r), P + "episode", "two"))),
    (
        "podcast.bad_trailer",
        "channel",
        xml(lambda r: ch(r).find(P + "trailer").set("length", "big")),
    ),
    (
        "podcast.bad_socialInteract",
        f"item {EP1}",
        episode(social_interact=[{"protocol": "activitypub"}]),
    ),
    (
        "podcast.bad_updateFrequency",
        "channel",
        xml(lambda r: ch(r).find(P + "updateFrequency").set("dtstart", "soon")),
    ),
    (
        "podcast.bad_podping",
        "channel",
        xml(lambda r: ch(r).find(P + "podping").set("usesPodping", "yes")),
    ),
    (
        "podcast.bad_image",
        "channel",
        channel(images=[{"href": "https://x.example/a.jpg", "aspect_ratio": "wide"}]),
    ),
    (
        "podcast.bad_valueTimeSplit",
        "channel",
        xml(
            lambda r: add(
                ch(r).find(P + "value"), P + "valueTimeSplit", startTime="x", duration="1"
            )
        ),
    ),
]


@pytest.mark.parametrize(
    ("code", "where", "build"), CASES, ids=[f"{code}-{n}" for n, (code, _, _) in enumerate(CASES)]
)
def test_rule_fires(code: str, where: str, build: Callable[[], bytes]) -> None:
    problems = check_feed(build())
    found = [(p.code, p.where) for p in problems]
    assert (code, where) in found, found
    rule = RULES.get(code)
    problem = next(p for p in problems if p.code == code)
    assert problem.severity == (rule.severity if rule else "error")
    assert problem.message and problem.hint
    assert "{" not in problem.message + problem.hint  # every template was filled


def test_every_rule_has_a_case() -> None:
    assert set(RULES) <= {code for code, _, _ in CASES}


def test_hostile_input_is_not_expanded() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">'
        b'<!ENTITY ext SYSTEM "file:///etc/passwd">]>'
        b'<rss version="2.0"><channel><title>&c;&ext;</title></channel></rss>'
    )
    problems = check_feed(bomb)
    assert all("root:" not in p.message for p in problems)
    assert "channel.no_description" in {p.code for p in problems}


def test_weekday_must_match_the_date() -> None:
    good = datetime(2024, 1, 8, 9, 0, tzinfo=UTC)
    assert not [p for p in check_feed(episode(pub_date=good)()) if p.code == "date.bad"]
    broken = xml(lambda r: set_text(ep(r), "pubDate", "Sun, 08 Jan 2024 09:00:00 +0000"))()
    (problem,) = [p for p in check_feed(broken) if p.code == "date.bad"]
    assert "Monday" in problem.message


def test_episodic_show_needs_no_episode_numbers() -> None:
    items = [replace(i, number=None) for i in rich_items()]
    feed = build_feed(rich_channel(show_type="episodic"), items)
    assert "item.serial_no_episode" not in {p.code for p in check_feed(feed)}


def test_live_item_needs_no_apple_enclosure_rules() -> None:
    stream = Enclosure("https://stream.example.com/live", 0, "audio/aac")
    feed = live(enclosure=stream)()
    assert [p for p in check_feed(feed) if p.severity == "error"] == []
    assert live_item().live is not None
