"""The ``<rss>`` and ``<channel>`` of a show: every channel-level tag, no items.

The show-wide half of the RSS builder. :func:`amphora.feed.builder.assemble` serializes this
shell once per feed and splices the cached item fragments of :mod:`amphora.feed.item` into it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lxml import etree  # type: ignore[import-untyped]

from amphora.feed.data import FeedChannel
from amphora.feed.elements import (
    _attrs,
    _bool,
    _chat,
    _clean,
    _description,
    _funding,
    _images,
    _iso,
    _leaf,
    _license,
    _locations,
    _number,
    _persons,
    _remote_item,
    _rfc2822_any,
    _SubElement,
    _text_el,
    _txt,
    _value,
    rfc2822,
)
from amphora.feed.xmlnames import (
    A_LINK,
    I_AUTHOR,
    I_BLOCK,
    I_CATEGORY,
    I_COMPLETE,
    I_EMAIL,
    I_EXPLICIT,
    I_IMAGE,
    I_NAME,
    I_NEW_FEED_URL,
    I_OWNER,
    I_SUBTITLE,
    I_TYPE,
    NSMAP,
    P_BLOCK,
    P_GUID,
    P_LOCKED,
    P_MEDIUM,
    P_PODPING,
    P_PODROLL,
    P_PUBLISHER,
    P_TRAILER,
    P_UPDATE_FREQUENCY,
)

__all__ = ["channel_element"]


def channel_element(channel: FeedChannel) -> tuple[etree._Element, etree._Element]:
    """``(rss, channel)`` elements with every channel-level tag and no items."""
    rss = etree.Element("rss", {"version": "2.0"}, nsmap=NSMAP)
    ch = _SubElement(rss, "channel")
    sub = _SubElement
    title = _clean(channel.title)
    _leaf(ch, "title", title)
    _leaf(ch, "link", channel.link)
    _description(ch, "description", channel.description_html)
    _leaf(ch, "language", channel.language)
    _leaf(ch, "copyright", channel.copyright)
    _leaf(ch, "generator", channel.generator)
    if channel.last_build_date is not None:
        sub(ch, "lastBuildDate").text = rfc2822(channel.last_build_date)
    sub(ch, A_LINK, href=_clean(channel.self_url), rel="self", type="application/rss+xml")
    for hub in channel.hubs:
        if _clean(hub):
            sub(ch, A_LINK, href=_clean(hub), rel="hub")
    if channel.image_url:
        image = sub(ch, "image")
        sub(image, "url").text = _clean(channel.image_url)
        if title:
            sub(image, "title").text = title
        # RSS 2.0 requires <link> in <image>; without a website the feed is the best target.
        sub(image, "link").text = _clean(channel.link or channel.self_url)
        sub(ch, I_IMAGE, href=_clean(channel.image_url))

    # Apple
    _leaf(ch, I_AUTHOR, channel.author)
    if channel.owner_name or channel.owner_email:
        owner = sub(ch, I_OWNER)
        _leaf(owner, I_NAME, channel.owner_name)
        _leaf(owner, I_EMAIL, channel.owner_email)
    sub(ch, I_EXPLICIT).text = _bool(channel.explicit)
    _leaf(ch, I_TYPE, channel.show_type)
    _categories(ch, channel.categories)
    _leaf(ch, I_SUBTITLE, channel.subtitle)
    _leaf(ch, I_NEW_FEED_URL, channel.new_feed_url)
    if channel.block.get("all") or channel.itunes_block:
        sub(ch, I_BLOCK).text = "Yes"
    if channel.complete:
        sub(ch, I_COMPLETE).text = "Yes"

    # Podcasting 2.0
    sub(ch, P_LOCKED, _attrs((("owner", channel.owner_email),))).text = (
        "yes" if channel.locked else "no"
    )
    _leaf(ch, P_GUID, channel.podcast_guid)
    _leaf(ch, P_MEDIUM, channel.medium)
    _funding(ch, channel.funding)
    _persons(ch, channel.persons)
    _locations(ch, channel.locations)
    _license(ch, channel.license)
    if channel.podroll:
        podroll = sub(ch, P_PODROLL)
        for remote in channel.podroll:
            _remote_item(podroll, remote)
    _update_frequency(ch, channel.update_frequency)
    for trailer in channel.trailers:
        _trailer(ch, trailer)
    _value(ch, channel.value)
    _txt(ch, channel.txt)
    _chat(ch, channel.chat)
    _images(ch, channel.images)
    if channel.block.get("all"):
        sub(ch, P_BLOCK).text = "yes"
    for platform in channel.block.get("platforms") or ():
        if _clean(platform):
            sub(ch, P_BLOCK, id=_clean(platform)).text = "yes"
    if channel.publisher and channel.publisher.get("feed_guid"):
        _remote_item(sub(ch, P_PUBLISHER), channel.publisher, medium="publisher")
    if channel.podping:
        sub(ch, P_PODPING, usesPodping="true")
    return rss, ch


def _categories(ch: etree._Element, categories: Sequence[Mapping[str, Any]]) -> None:
    # Entries sharing a parent become one element with several subcategories; the first
    # parent listed stays first (Apple only reads that one).
    groups: dict[str, list[str]] = {}
    for entry in categories:
        name = _clean(entry.get("category") or "")
        if not name:
            continue
        subs = groups.setdefault(name, [])
        child = _clean(entry.get("subcategory") or "")
        if child and child not in subs:
            subs.append(child)
    for name, subs in groups.items():
        parent = _SubElement(ch, I_CATEGORY, text=name)
        for child in subs:
            _SubElement(parent, I_CATEGORY, text=child)


def _update_frequency(ch: etree._Element, frequency: Mapping[str, Any] | None) -> None:
    if not frequency or not frequency.get("text"):
        return
    dtstart = frequency.get("dtstart")
    _text_el(
        ch,
        P_UPDATE_FREQUENCY,
        frequency["text"],
        _attrs(
            (
                ("complete", "true" if frequency.get("complete") else None),
                ("dtstart", _iso(dtstart) if dtstart is not None else None),
                ("rrule", frequency.get("rrule")),
            )
        ),
    )


def _trailer(ch: etree._Element, trailer: Mapping[str, Any]) -> None:
    if not trailer.get("url"):
        return
    pubdate, length, season = trailer.get("pubdate"), trailer.get("length"), trailer.get("season")
    _text_el(
        ch,
        P_TRAILER,
        trailer.get("title") or "",
        _attrs(
            (
                ("url", trailer.get("url")),
                ("pubdate", _rfc2822_any(pubdate) if pubdate is not None else None),
                ("length", _number(length) if length is not None else None),
                ("type", trailer.get("type")),
                ("season", _number(season) if season is not None else None),
            )
        ),
    )
