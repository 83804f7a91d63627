"""Apple's rules and PSP-1: the channel, the items and their enclosures, artwork, dates.

What Apple Podcasts would reject or ignore and what PSP-1 recommends (STANDARDS.md §1), read
from the plain RSS and iTunes tags. The Podcasting 2.0 tags are checked in :mod:`.namespace`.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

from lxml import etree  # type: ignore[import-untyped]

from amphora.feed.rules.catalogue import _Report
from amphora.feed.rules.reading import (
    _A,
    _I,
    _P,
    _POSITIVE_INT,
    CONTENT_NS,
    _check_date,
    _is_url,
    _text,
    _where_of,
)
from amphora.show.categories import APPLE_CATEGORIES

__all__ = ["APPLE_ENCLOSURE_TYPES", "check_channel", "check_items", "check_surrounding_spaces"]

# Apple's enclosure types and the file extensions that may carry them.
APPLE_ENCLOSURE_TYPES: dict[str, tuple[str, ...]] = {
    "audio/mpeg": (".mp3",),
    "audio/x-m4a": (".m4a",),
    "video/mp4": (".mp4", ".m4v"),
    "video/quicktime": (".mov",),
    "video/x-m4v": (".m4v",),
    "application/pdf": (".pdf",),
}
_ARTWORK_EXTENSIONS = (".jpg", ".jpeg", ".png")
_MAX_DESCRIPTION_BYTES = 4000
_APPLE_SHORT = {"title": "title", _I + "title": "itunes:title", _I + "author": "itunes:author"}
_APPLE_SHORT |= {_I + "subtitle": "itunes:subtitle", "copyright": "copyright"}
_HTML_TAGS = frozenset({"description", "{" + CONTENT_NS + "}encoded"})
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
_DURATION = re.compile(r"^([0-9]+|([0-9]+:)?[0-5]?[0-9]:[0-5][0-9])$")


# --- channel ------------------------------------------------------------------------------------


def check_channel(ch: etree._Element, report: _Report) -> None:
    """Apple's channel rules, then PSP-1's."""

    def add(code: str, **values: Any) -> None:
        report.add("channel", code, **values)

    if not _text(ch.find("title")):
        add("channel.no_title")
    description = _text(ch.find("description"))
    if not description:
        add("channel.no_description")
    elif len(description.encode()) > _MAX_DESCRIPTION_BYTES:
        add("channel.description_too_long", size=len(description.encode()))
    language = _text(ch.find("language"))
    if not language:
        add("channel.no_language")
    elif not _LANGUAGE.match(language):
        add("channel.bad_language", value=language)
    if not _text(ch.find("link")):
        add("channel.no_link")
    image = ch.find(_I + "image")
    if image is None or not (image.get("href") or "").strip():
        add("channel.no_image")
    else:
        _check_artwork(image.get("href") or "", "channel", "show", report)
    _check_categories(ch, report)
    explicit = ch.find(_I + "explicit")
    if explicit is None:
        add("channel.no_explicit")
    elif _text(explicit) not in ("true", "false"):
        add("channel.bad_explicit", value=_text(explicit))
    show_type = ch.find(_I + "type")
    if show_type is not None and _text(show_type) not in ("episodic", "serial"):
        add("channel.bad_type", value=_text(show_type))
    if not _text(ch.find(_I + "author")):
        add("channel.no_author")
    owner = ch.find(_I + "owner")
    if owner is None or not _text(owner.find(_I + "email")):
        add("channel.no_owner_email")
    for tag in ("block", "complete"):
        el = ch.find(_I + tag)
        if el is not None and _text(el) != "Yes":
            add("channel.yes_only", name=f"itunes:{tag}", value=_text(el))
    new_url = ch.find(_I + "new-feed-url")
    if new_url is not None and not _is_url(_text(new_url)):
        add("channel.bad_new_feed_url", value=_text(new_url))
    for tag in ("lastBuildDate", "pubDate"):
        if ch.find(tag) is not None:
            _check_date(_text(ch.find(tag)), tag, "channel", report)
    _check_apple_lengths(ch, "channel", report)
    # PSP-1
    selfs = [link for link in ch.findall(_A + "link") if link.get("rel") == "self"]
    if len(selfs) != 1 or not _is_url(selfs[0].get("href") or ""):
        add("channel.self_link", count=sum(_is_url(link.get("href") or "") for link in selfs))
    if ch.find(_P + "locked") is None:
        add("channel.no_locked")
    if ch.find(_P + "guid") is None:
        add("channel.no_podcast_guid")


def _check_artwork(href: str, where: str, subject: str, report: _Report) -> None:
    if not _is_url(href):
        report.add(where, "image.bad_url", subject=subject, value=href)
        return
    if not href.isascii():
        report.add(where, "image.url_not_ascii", subject=subject)
    if not urlsplit(href).path.lower().endswith(_ARTWORK_EXTENSIONS):
        report.add(where, "image.extension", subject=subject, value=href)
    if not href.startswith("https://"):
        report.add(where, "image.not_https", subject=subject)


def _check_categories(ch: etree._Element, report: _Report) -> None:
    categories = ch.findall(_I + "category")
    if not categories:
        report.add("channel", "channel.no_category")
    for category in categories:
        name = category.get("text") or ""
        if name not in APPLE_CATEGORIES:
            report.add("channel", "channel.unknown_category", value=name)
            continue
        for sub in category.findall(_I + "category"):
            if (sub.get("text") or "") not in APPLE_CATEGORIES[name]:
                report.add(
                    "channel", "channel.unknown_subcategory", value=sub.get("text"), parent=name
                )


def _check_apple_lengths(parent: etree._Element, where: str, report: _Report) -> None:
    for tag, name in _APPLE_SHORT.items():
        length = len(_text(parent.find(tag)))
        if length > 255:
            report.add(where, "apple.too_long", name=name, length=length)


# --- items --------------------------------------------------------------------------------------


def _where(el: etree._Element, index: int) -> str:
    guid = _text(el.find("guid"))
    return f"item {guid}" if guid else f"item #{index + 1} ({_text(el.find('title'))})"


def check_items(ch: etree._Element, report: _Report) -> dict[etree._Element, str]:
    """Apple's item rules; returns the ``where`` label of every item and live item."""
    serial = _text(ch.find(_I + "type")) == "serial"
    wheres: dict[etree._Element, str] = {}
    guids: Counter[str] = Counter()
    enclosures: Counter[str] = Counter()
    for index, item in enumerate(ch.findall("item")):
        wheres[item] = where = _where(item, index)
        guids[_text(item.find("guid"))] += 1
        enclosure = item.find("enclosure")
        if enclosure is not None and enclosure.get("url"):
            enclosures[enclosure.get("url") or ""] += 1
        _check_item(item, where, serial, report)
    for index, live in enumerate(ch.findall(_P + "liveItem")):
        wheres[live] = _where(live, index)
    for guid, count in guids.items():
        if guid and count > 1:
            report.add(f"item {guid}", "item.duplicate_guid", count=count, value=guid)
    for url, count in enclosures.items():
        if count > 1:
            report.add("channel", "item.duplicate_enclosure", count=count, value=url)
    return wheres


def _check_item(item: etree._Element, where: str, serial: bool, report: _Report) -> None:
    def add(code: str, **values: Any) -> None:
        report.add(where, code, **values)

    if not _text(item.find("title")):
        add("item.no_title")
    if not _text(item.find("guid")):
        add("item.no_guid")
    _check_enclosure(item.find("enclosure"), where, report)
    if item.find("pubDate") is None:
        add("item.no_pub_date")
    else:
        _check_date(_text(item.find("pubDate")), "pubDate", where, report)
    description = _text(item.find("description"))
    if len(description.encode()) > _MAX_DESCRIPTION_BYTES:
        add("item.description_too_long", size=len(description.encode()))
    duration = item.find(_I + "duration")
    if duration is not None and not _DURATION.match(_text(duration)):
        add("item.bad_duration", value=_text(duration))
    explicit = item.find(_I + "explicit")
    if explicit is not None and _text(explicit) not in ("true", "false"):
        add("item.bad_explicit", value=_text(explicit))
    image = item.find(_I + "image")
    if image is not None:
        _check_artwork(image.get("href") or "", where, "episode", report)
    episode_type = item.find(_I + "episodeType")
    if episode_type is not None and _text(episode_type) not in ("full", "trailer", "bonus"):
        add("item.bad_episode_type", value=_text(episode_type))
    for tag, label in (("episode", "episode number"), ("season", "season number")):
        el = item.find(_I + tag)
        if el is not None and not _POSITIVE_INT.match(_text(el)):
            add("item.bad_number", label=label, value=_text(el))
    if serial and item.find(_I + "episode") is None:
        add("item.serial_no_episode")
    block = item.find(_I + "block")
    if block is not None and _text(block) != "Yes":
        add("item.yes_only", value=_text(block))
    if item.find(_P + "transcript") is None:
        add("item.no_transcript")
    _check_apple_lengths(item, where, report)


def _check_enclosure(enclosure: etree._Element | None, where: str, report: _Report) -> None:
    if enclosure is None:
        report.add(where, "item.no_enclosure")
        return
    url, length, type_ = (enclosure.get(name) or "" for name in ("url", "length", "type"))
    if not _is_url(url):
        report.add(where, "item.bad_enclosure_url", value=url)
    elif not url.isascii():
        report.add(where, "item.enclosure_url_not_ascii")
    if not _POSITIVE_INT.match(length):
        report.add(where, "item.bad_enclosure_length", value=length)
    extensions = APPLE_ENCLOSURE_TYPES.get(type_)
    if extensions is None:
        report.add(where, "item.bad_enclosure_type", value=type_)
    elif _is_url(url) and not urlsplit(url).path.lower().endswith(extensions):
        report.add(
            where, "item.enclosure_extension", extensions=" or ".join(extensions), value=type_
        )


def check_surrounding_spaces(
    ch: etree._Element, wheres: dict[etree._Element, str], report: _Report
) -> None:
    """Apple: no leading or trailing spaces in values (HTML descriptions excepted)."""
    for el in ch.iter():
        if not isinstance(el.tag, str) or el.tag in _HTML_TAGS:
            continue
        values = [el.text] if len(el) == 0 and el.text else []
        values += list(el.attrib.values())
        if any(value != value.strip() for value in values):
            where = _where_of(el, wheres)
            name = el.tag.replace(_I, "itunes:").replace(_P, "podcast:").replace(_A, "atom:")
            report.add(where, "apple.surrounding_spaces", name=name)
