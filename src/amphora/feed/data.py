"""The plain data a feed is built from: no ORM, no HTTP, no settings.

The serving layer turns rows into these values (absolute URLs already resolved); the builders in
this package turn them into bytes. The structured values (persons, funding, value, …) are the
JSON shapes of ``amphora.show.podcast_types`` exactly as stored on the rows: snake_case keys,
optional keys possibly absent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

JSONDict = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Enclosure:
    url: str
    length: int  # bytes
    type: str  # audio/mpeg, audio/x-m4a, video/mp4, …


@dataclass(frozen=True, slots=True)
class TranscriptLink:
    url: str
    type: str  # text/vtt, application/x-subrip, application/json, text/html, text/plain
    language: str | None = None
    captions: bool = False  # rel="captions"


@dataclass(frozen=True, slots=True)
class FeedItem:
    """One ``<item>`` (or ``<podcast:liveItem>`` when ``live`` is set)."""

    guid: str  # exactly as stored; never rewritten
    title: str
    description_html: str = ""  # sanitised HTML (show notes)
    subtitle: str | None = None
    link: str | None = None
    pub_date: datetime | None = None  # aware UTC
    enclosure: Enclosure | None = None
    duration_s: float | None = None
    explicit: bool | None = None  # None: as the show
    image_url: str | None = None  # itunes:image of the episode
    episode_type: str = "full"  # full | trailer | bonus
    season: int | None = None
    season_name: str | None = None
    number: Decimal | None = None
    number_display: str | None = None
    block: bool = False
    persons: list[JSONDict] = field(default_factory=list)
    locations: list[JSONDict] = field(default_factory=list)
    funding: list[JSONDict] = field(default_factory=list)
    soundbites: list[JSONDict] = field(default_factory=list)
    license: JSONDict | None = None
    value: JSONDict | None = None
    social_interact: list[JSONDict] = field(default_factory=list)
    chat: JSONDict | None = None
    txt: list[JSONDict] = field(default_factory=list)
    images: list[JSONDict] = field(default_factory=list)
    content_links: list[JSONDict] = field(default_factory=list)
    alternate_enclosures: list[JSONDict] = field(default_factory=list)
    transcripts: tuple[TranscriptLink, ...] = ()
    chapters_url: str | None = None
    live: JSONDict | None = None  # {"status", "start", "end"} (ISO 8601 strings)


@dataclass(frozen=True, slots=True)
class FeedChannel:
    """Everything about the ``<channel>`` except its items."""

    title: str
    self_url: str  # the canonical feed URL (atom:link rel="self")
    description_html: str = ""
    subtitle: str | None = None
    language: str = "en"
    link: str | None = None
    hubs: tuple[str, ...] = ()  # WebSub hubs (atom:link rel="hub")
    image_url: str | None = None  # itunes:image / <image>
    categories: list[JSONDict] = field(default_factory=list)  # [{"category", "subcategory"}]
    explicit: bool = False
    show_type: str = "episodic"  # episodic | serial
    author: str | None = None
    owner_name: str | None = None
    owner_email: str | None = None
    copyright: str | None = None
    new_feed_url: str | None = None
    block: JSONDict = field(default_factory=dict)  # {"all": bool, "platforms": [slug, …]}
    itunes_block: bool = False  # forced (private feeds) in addition to block["all"]
    complete: bool = False
    locked: bool = True
    podcast_guid: str | None = None
    medium: str = "podcast"
    funding: list[JSONDict] = field(default_factory=list)
    persons: list[JSONDict] = field(default_factory=list)
    locations: list[JSONDict] = field(default_factory=list)
    license: JSONDict | None = None
    podroll: list[JSONDict] = field(default_factory=list)
    update_frequency: JSONDict | None = None
    trailers: list[JSONDict] = field(default_factory=list)
    value: JSONDict | None = None
    txt: list[JSONDict] = field(default_factory=list)
    chat: JSONDict | None = None
    images: list[JSONDict] = field(default_factory=list)
    publisher: JSONDict | None = None  # a remoteItem (medium=publisher)
    podping: bool = False
    last_build_date: datetime | None = None
    generator: str = "Amphora"
