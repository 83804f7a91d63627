"""What the feed parser hands to the importer: plain values, already checked.

``show`` and ``fields`` hold only keys of ``ShowFields`` / ``EpisodeFields`` whose values passed
that field's validation, in the JSON shapes of ``amphora.show.podcast_types``; a value that did
not pass is left out and noted in ``problems``. The rest is what the importer downloads or needs to
decide (enclosure, artwork, transcripts, chapters, dates, the lock).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Problem:
    """Something in the source we could not carry over (or had to change)."""

    where: str  # "channel" or "item <guid>" (or "item #<n>" when there is no guid)
    field: str  # the tag or field concerned, e.g. "itunes:category", "enclosure"
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"where": self.where, "field": self.field, "message": self.message}


@dataclass(frozen=True, slots=True)
class RemoteFile:
    url: str
    type: str | None = None  # the declared MIME type, if any
    length: int | None = None  # the declared length in bytes, if any
    filename: str | None = None  # the name it was uploaded under, where the source says


@dataclass(frozen=True, slots=True)
class RemoteTranscript:
    url: str
    type: str
    language: str | None = None
    captions: bool = False


@dataclass(slots=True)
class ParsedItem:
    guid: str  # byte-for-byte as published; the enclosure URL when the item has no guid
    fields: dict[str, Any]  # EpisodeFields keys (never guid, publish_at, series_id)
    pub_date: datetime | None = None  # aware UTC
    enclosure: RemoteFile | None = None
    duration_s: float | None = None
    image_url: str | None = None
    transcripts: list[RemoteTranscript] = field(default_factory=list)
    chapters: RemoteFile | None = None
    draft: bool = False  # an export's draft stays a draft (a feed only lists published items)
    series: str | None = None  # the name of the show's series it belongs to (exports)


@dataclass(slots=True)
class ParsedFeed:
    show: dict[str, Any]  # ShowFields keys (never slug or new_feed_url)
    items: list[ParsedItem]
    problems: list[Problem]
    podcast_guid: str | None = None
    image_url: str | None = None
    self_url: str | None = None  # atom:link rel="self", if any
    new_feed_url: str | None = None  # itunes:new-feed-url: the source says it moved
    locked: bool = False  # podcast:locked yes
    locked_owner: str | None = None  # podcast:locked owner="…" (an email address)
    format: str = "rss"  # rss | atom | archive
    slug: str | None = None  # the slug it had (exports): kept when free here
    series: list[dict[str, Any]] = field(default_factory=list)  # {"name", "description", …}
