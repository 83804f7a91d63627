"""The ``<item>`` (and ``<podcast:liveItem>``) of one episode, built and serialized.

:func:`render_item` is the per-episode half of the RSS builder: the serving layer caches its
bytes keyed on the episode's state, and :func:`amphora.feed.builder.assemble` splices them into
the channel. Items are built from a pre-made skeleton for speed (see ``_SKELETON_TAGS``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lxml import etree  # type: ignore[import-untyped]

from amphora.feed.data import FeedItem
from amphora.feed.elements import (
    DESCRIPTION_MAX_BYTES,
    _attrs,
    _bool,
    _cdata,
    _chat,
    _clean,
    _funding,
    _images,
    _int_or_none,
    _iso,
    _license,
    _locations,
    _new,
    _number,
    _persons,
    _set_text,
    _SubElement,
    _text_el,
    _txt,
    _value,
    rfc2822,
)
from amphora.feed.xmlnames import (
    C_ENCODED,
    I_BLOCK,
    I_DURATION,
    I_EPISODE,
    I_EPISODE_TYPE,
    I_EXPLICIT,
    I_IMAGE,
    I_SEASON,
    I_SUBTITLE,
    I_TITLE,
    NSMAP,
    P_ALTERNATE_ENCLOSURE,
    P_CHAPTERS,
    P_CONTENT_LINK,
    P_EPISODE,
    P_INTEGRITY,
    P_LIVE_ITEM,
    P_LIVE_VALUE,
    P_SEASON,
    P_SOCIAL_INTERACT,
    P_SOUNDBITE,
    P_SOURCE,
    P_TRANSCRIPT,
)
from amphora.kit.html import truncate_html

__all__ = ["item_element", "render_item"]

# What lxml writes on a detached element created with NSMAP: the exact bytes to strip from a
# fragment's opening tag, since the same declarations are made once on <rss>.
_NS_DECLARATIONS = etree.tostring(etree.Element("x", nsmap=NSMAP))[2:-2]
_ITEM_OPEN = b"<item" + _NS_DECLARATIONS
_LIVE_OPEN = b"<podcast:liveItem" + _NS_DECLARATIONS


# Every <item> starts as a copy of this skeleton of its single-valued children, in feed order:
# one C-level deep copy is three times faster than creating the elements one by one, which
# matters at 10,000 items. Children without a value are removed again; repeatable tags are
# appended after the skeleton.
_SKELETON_TAGS = (
    "title",
    I_TITLE,
    "link",
    "description",
    C_ENCODED,
    "guid",
    "pubDate",
    "enclosure",
    I_DURATION,
    I_EXPLICIT,
    I_IMAGE,
    I_EPISODE_TYPE,
    I_SEASON,
    I_EPISODE,
    I_BLOCK,
    I_SUBTITLE,
    P_SEASON,
    P_EPISODE,
    P_CHAPTERS,
)


def _skeleton(tag: str) -> etree._Element:
    root = etree.Element(tag, nsmap=NSMAP)
    for child in _SKELETON_TAGS:
        _SubElement(root, child)
    root.find("guid").set("isPermaLink", "false")
    root.find(P_CHAPTERS).set("type", "application/json+chapters")
    return root


_ITEM_SKELETON = _skeleton("item")
_LIVE_SKELETON = _skeleton(P_LIVE_ITEM)


def _fill_item(el: etree._Element, item: FeedItem) -> None:
    """Fill a copy of the skeleton with ``item`` and append its repeatable children."""
    (
        title_el,
        itunes_title_el,
        link_el,
        description_el,
        content_el,
        guid_el,
        pub_date_el,
        enclosure_el,
        duration_el,
        explicit_el,
        image_el,
        episode_type_el,
        season_el,
        episode_el,
        block_el,
        subtitle_el,
        podcast_season_el,
        podcast_episode_el,
        chapters_el,
    ) = el
    drop: list[etree._Element] = []
    title = _clean(item.title)
    if title:
        title_el.text = itunes_title_el.text = title
    else:
        drop += (title_el, itunes_title_el)
    _set_text(link_el, item.link, drop)
    html = _clean(item.description_html) if item.description_html else ""
    if html:
        description_el.text = _cdata(truncate_html(html, DESCRIPTION_MAX_BYTES))
        content_el.text = _cdata(html)
    else:
        drop += (description_el, content_el)
    _set_text(guid_el, item.guid, drop)
    if item.pub_date is not None:
        pub_date_el.text = rfc2822(item.pub_date)
    else:
        drop.append(pub_date_el)
    enclosure = item.enclosure
    if enclosure is not None:
        enclosure_el.set("url", _clean(enclosure.url))
        enclosure_el.set("length", str(int(enclosure.length)))
        enclosure_el.set("type", _clean(enclosure.type))
    else:
        drop.append(enclosure_el)
    if item.duration_s is not None:
        duration_el.text = str(int(item.duration_s + 0.5))
    else:
        drop.append(duration_el)
    if item.explicit is not None:
        explicit_el.text = _bool(item.explicit)
    else:
        drop.append(explicit_el)
    image = _clean(item.image_url) if item.image_url else ""
    if image:
        image_el.set("href", image)
    else:
        drop.append(image_el)
    _set_text(episode_type_el, item.episode_type, drop)
    # Apple wants integers from 1; podcast:season/episode carry whatever was stored.
    if item.season is not None and item.season >= 1:
        season_el.text = str(item.season)
    else:
        drop.append(season_el)
    number = _int_or_none(item.number)
    if number is not None and number >= 1:
        episode_el.text = str(number)
    else:
        drop.append(episode_el)
    if item.block:
        block_el.text = "Yes"
    else:
        drop.append(block_el)
    _set_text(subtitle_el, item.subtitle, drop)
    if item.season is not None:
        podcast_season_el.text = str(item.season)
        if item.season_name and _clean(item.season_name):
            podcast_season_el.set("name", _clean(item.season_name))
    else:
        drop.append(podcast_season_el)
    if item.number is not None:
        podcast_episode_el.text = _number(item.number)
        if item.number_display and _clean(item.number_display):
            podcast_episode_el.set("display", _clean(item.number_display))
    else:
        drop.append(podcast_episode_el)
    chapters = _clean(item.chapters_url) if item.chapters_url else ""
    if chapters:
        chapters_el.set("url", chapters)
    else:
        drop.append(chapters_el)
    for child in drop:
        el.remove(child)

    for transcript in item.transcripts:
        _new(
            el,
            P_TRANSCRIPT,
            _attrs(
                (
                    ("url", transcript.url),
                    ("type", transcript.type),
                    ("language", transcript.language),
                    ("rel", "captions" if transcript.captions else None),
                )
            ),
        )
    for bite in item.soundbites:
        start, duration = bite.get("start_time"), bite.get("duration")
        if start is None or duration is None:
            continue
        _text_el(
            el,
            P_SOUNDBITE,
            bite.get("title") or "",
            {"startTime": _number(start), "duration": _number(duration)},
        )
    _persons(el, item.persons)
    _locations(el, item.locations)
    _funding(el, item.funding)
    _license(el, item.license)
    _value(el, item.value)
    for social in item.social_interact:
        priority = social.get("priority")
        _new(
            el,
            P_SOCIAL_INTERACT,
            _attrs(
                (
                    ("protocol", social.get("protocol")),
                    ("uri", social.get("uri")),
                    ("accountId", social.get("account_id")),
                    ("accountUrl", social.get("account_url")),
                    ("priority", _number(priority) if priority is not None else None),
                )
            ),
        )
    _chat(el, item.chat)
    _txt(el, item.txt)
    _images(el, item.images)
    for link in item.content_links:
        if link.get("href"):
            # The namespace wants link text; the address stands in when the creator gave none.
            _text_el(
                el,
                P_CONTENT_LINK,
                link.get("text") or link["href"],
                _attrs((("href", link["href"]),)),
            )
    for alt in item.alternate_enclosures:
        _alternate_enclosure(el, alt)
    live_value = (item.live or {}).get("value")
    if live_value and live_value.get("uri") and live_value.get("protocol"):
        _new(
            el,
            P_LIVE_VALUE,
            _attrs((("uri", live_value["uri"]), ("protocol", live_value["protocol"]))),
        )


def _alternate_enclosure(parent: etree._Element, alt: Mapping[str, Any]) -> None:
    length, bitrate, height = alt.get("length"), alt.get("bitrate"), alt.get("height")
    el = _new(
        parent,
        P_ALTERNATE_ENCLOSURE,
        _attrs(
            (
                ("type", alt.get("type")),
                ("length", _number(length) if length is not None else None),
                ("bitrate", _number(bitrate) if bitrate is not None else None),
                ("height", _number(height) if height is not None else None),
                ("lang", alt.get("lang")),
                ("title", alt.get("title")),
                ("rel", alt.get("rel")),
                ("codecs", alt.get("codecs")),
                ("default", "true" if alt.get("default") else None),
            )
        ),
    )
    for source in alt.get("sources") or ():
        if source.get("uri"):
            _new(
                el,
                P_SOURCE,
                _attrs((("uri", source.get("uri")), ("contentType", source.get("content_type")))),
            )
    integrity = alt.get("integrity")
    if integrity and integrity.get("type") and integrity.get("value"):
        _new(el, P_INTEGRITY, _attrs((("type", integrity["type"]), ("value", integrity["value"]))))


def _live_attrs(live: Mapping[str, Any]) -> dict[str, str]:
    end = live.get("end")
    return _attrs(
        (
            ("status", live.get("status")),
            ("start", _iso(live["start"]) if live.get("start") is not None else None),
            ("end", _iso(end) if end is not None else None),
        )
    )


def item_element(item: FeedItem) -> etree._Element:
    """The ``<item>`` (``<podcast:liveItem>`` when ``item.live`` is set) of one episode."""
    if item.live is not None:
        el = _LIVE_SKELETON.__deepcopy__(None)
        for name, value in _live_attrs(item.live).items():
            el.set(name, value)
    else:
        el = _ITEM_SKELETON.__deepcopy__(None)
    _fill_item(el, item)
    return el


def render_item(item: FeedItem) -> bytes:
    """The serialized ``<item>`` (``<podcast:liveItem>`` when ``item.live`` is set) of one
    episode, UTF-8, without namespace declarations: they are made once on ``<rss>`` by
    :func:`~amphora.feed.builder.assemble`. A pure function of ``item``: cache it keyed on the
    episode's state."""
    raw: bytes = etree.tostring(item_element(item), encoding="UTF-8")
    if raw.startswith(_ITEM_OPEN):
        return b"<item" + raw[len(_ITEM_OPEN) :]
    if raw.startswith(_LIVE_OPEN):
        return b"<podcast:liveItem" + raw[len(_LIVE_OPEN) :]
    raise AssertionError("unexpected namespace declarations on a rendered item")  # pragma: no cover
