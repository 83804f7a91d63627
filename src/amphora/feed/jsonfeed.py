"""JSON Feed 1.1 (``application/feed+json``) export of a show, from the same plain data as RSS.

Live items are left out: JSON Feed has no notion of a stream that is on air now. Episode
descriptions keep their full HTML in ``content_html``; ``summary`` is the subtitle or the
notes as plain text.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from amphora.feed.data import FeedChannel, FeedItem
from amphora.kit.html import html_to_text

__all__ = ["JSON_FEED_VERSION", "build_json_feed"]

JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
_SUMMARY_MAX_CHARS = 500


def _rfc3339(value: datetime) -> str:
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.isoformat().replace("+00:00", "Z")


def _summary(item: FeedItem) -> str | None:
    if item.subtitle:
        return item.subtitle
    text = html_to_text(item.description_html) if item.description_html else ""
    if len(text) > _SUMMARY_MAX_CHARS:
        text = text[: _SUMMARY_MAX_CHARS - 1].rstrip() + "…"
    return text or None


def _item(item: FeedItem) -> dict[str, Any]:
    out: dict[str, Any] = {"id": item.guid, "title": item.title}
    if item.link:
        out["url"] = item.link
    # JSON Feed requires content_html or content_text on every item.
    if item.description_html:
        out["content_html"] = item.description_html
    else:
        out["content_text"] = ""
    summary = _summary(item)
    if summary:
        out["summary"] = summary
    if item.pub_date is not None:
        out["date_published"] = _rfc3339(item.pub_date)
    if item.image_url:
        out["image"] = item.image_url
    if item.enclosure is not None:
        attachment: dict[str, Any] = {
            "url": item.enclosure.url,
            "mime_type": item.enclosure.type,
            "size_in_bytes": item.enclosure.length,
        }
        if item.duration_s is not None:
            attachment["duration_in_seconds"] = int(item.duration_s + 0.5)
        out["attachments"] = [attachment]
    return out


def build_json_feed(channel: FeedChannel, items: Sequence[FeedItem], *, feed_url: str) -> bytes:
    """The JSON Feed document (UTF-8 bytes) of ``channel`` with its non-live ``items``."""
    feed: dict[str, Any] = {"version": JSON_FEED_VERSION, "title": channel.title}
    if channel.link:
        feed["home_page_url"] = channel.link
    feed["feed_url"] = feed_url
    if channel.description_html:
        feed["description"] = html_to_text(channel.description_html)
    if channel.image_url:
        feed["icon"] = channel.image_url
    if channel.author:
        feed["authors"] = [{"name": channel.author}]
    if channel.language:
        feed["language"] = channel.language
    if channel.hubs:
        feed["hubs"] = [{"type": "WebSub", "url": hub} for hub in channel.hubs]
    feed["items"] = [_item(item) for item in items if item.live is None]
    return json.dumps(feed, ensure_ascii=False, separators=(",", ":")).encode()
