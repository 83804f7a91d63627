"""The structured values a show or an episode can carry, shaped after Apple's and the
Podcasting 2.0 namespace's tags (STANDARDS.md §1 and §3). Stored as JSON on the rows; the feed
builder and the importer read and write exactly these shapes.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    field_validator,
    model_validator,
)

from amphora.show.categories import is_valid_category

Short = Annotated[str, Field(min_length=1, max_length=128)]
Label = Annotated[str, Field(max_length=128)]
_HTTP_URL: TypeAdapter[AnyHttpUrl] = TypeAdapter(AnyHttpUrl)


def _http_url(value: str) -> str:
    """An http(s) URL, kept exactly as written: normalising it (pydantic adds a slash to
    ``https://example.com``) would change what feeds say and what an import brings over."""
    _HTTP_URL.validate_python(value)
    return value


Url = Annotated[
    str, Field(max_length=2048, json_schema_extra={"format": "uri"}), AfterValidator(_http_url)
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Category(Strict):
    """An Apple category: ``{"category": "Arts", "subcategory": "Books"}``."""

    category: str
    subcategory: str | None = None

    @model_validator(mode="after")
    def _known(self) -> Category:
        if not is_valid_category(self.category, self.subcategory):
            where = f"{self.category} > {self.subcategory}" if self.subcategory else self.category
            raise ValueError(f"'{where}' is not an Apple Podcasts category")
        return self


class Funding(Strict):
    url: Url
    label: Label = ""


class Person(Strict):
    name: Short
    role: Annotated[str, Field(max_length=64)] = "host"
    group: Annotated[str, Field(max_length=64)] = "cast"
    img: Url | None = None
    href: Url | None = None


class Location(Strict):
    name: Short
    rel: Literal["subject", "creator"] | None = None
    geo: (
        Annotated[str, Field(pattern=r"^geo:-?\d+(\.\d+)?,-?\d+(\.\d+)?(,-?\d+(\.\d+)?)?(;.*)?$")]
        | None
    ) = None
    osm: Annotated[str, Field(pattern=r"^[NWR]\d+(#\d+)?$")] | None = None
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] | None = None


class License(Strict):
    """An SPDX identifier (``cc-by-4.0``) or a custom name, which then needs a URL."""

    identifier: Short
    url: Url | None = None


class RemoteItem(Strict):
    feed_guid: Annotated[str, Field(min_length=1, max_length=64)]
    feed_url: Url | None = None
    item_guid: Annotated[str, Field(max_length=2048)] | None = None
    medium: Annotated[str, Field(max_length=32)] | None = None
    title: Label | None = None


class UpdateFrequency(Strict):
    text: Short
    complete: bool = False
    dtstart: AwareDatetime | None = None
    rrule: Annotated[str, Field(max_length=512)] | None = None


class Trailer(Strict):
    title: Short
    url: Url
    pubdate: AwareDatetime
    length: Annotated[int, Field(ge=0)] | None = None
    type: Annotated[str, Field(max_length=64)] | None = None
    season: Annotated[int, Field(ge=1)] | None = None


class ValueRecipient(Strict):
    name: Label | None = None
    type: Annotated[str, Field(min_length=1, max_length=32)]
    address: Annotated[str, Field(min_length=1, max_length=512)]
    split: Annotated[int, Field(ge=0)]
    custom_key: Annotated[str, Field(max_length=128)] | None = None
    custom_value: Annotated[str, Field(max_length=512)] | None = None
    fee: bool = False


class ValueTimeSplit(Strict):
    """``podcast:valueTimeSplit``: from ``start_time`` for ``duration`` seconds, the value goes
    to another item (``remote_item``, e.g. a song played in the episode) or to ``recipients``."""

    start_time: Annotated[float, Field(ge=0)]
    duration: Annotated[float, Field(gt=0)]
    remote_start_time: Annotated[float, Field(ge=0)] | None = None
    remote_percentage: Annotated[int, Field(ge=0, le=100)] | None = None
    remote_item: RemoteItem | None = None
    recipients: Annotated[list[ValueRecipient], Field(max_length=50)] = []

    @model_validator(mode="after")
    def _one_target(self) -> ValueTimeSplit:
        if (self.remote_item is None) == (not self.recipients):
            raise ValueError("a time split names either a remote_item or recipients")
        return self


class Value(Strict):
    type: Annotated[str, Field(min_length=1, max_length=32)] = "lightning"
    method: Annotated[str, Field(min_length=1, max_length=32)] = "keysend"
    suggested: Decimal | None = None
    recipients: Annotated[list[ValueRecipient], Field(min_length=1, max_length=50)]
    time_splits: Annotated[list[ValueTimeSplit], Field(max_length=1000)] = []


class Txt(Strict):
    value: Annotated[str, Field(min_length=1, max_length=4000)]
    purpose: Label | None = None


class SocialInteract(Strict):
    protocol: Literal[
        "disabled", "activitypub", "twitter", "lightning", "atproto", "nostr", "matrix"
    ]
    uri: Annotated[str, Field(min_length=1, max_length=2048)]
    account_id: Annotated[str, Field(max_length=256)] | None = None
    account_url: Url | None = None
    priority: Annotated[int, Field(ge=1)] | None = None


class Chat(Strict):
    server: Annotated[str, Field(min_length=1, max_length=256)]
    protocol: Annotated[str, Field(min_length=1, max_length=32)]
    account_id: Annotated[str, Field(max_length=256)] | None = None
    space: Annotated[str, Field(max_length=256)] | None = None
    embed_url: Url | None = None  # a web page with the chat, for apps that embed it


class Soundbite(Strict):
    start_time: Annotated[float, Field(ge=0)]
    duration: Annotated[float, Field(gt=0)]
    title: Label = ""


class Medium(StrEnum):
    podcast = "podcast"
    music = "music"
    video = "video"
    film = "film"
    audiobook = "audiobook"
    newsletter = "newsletter"
    blog = "blog"
    publisher = "publisher"
    course = "course"
    podcast_l = "podcastL"
    music_l = "musicL"
    video_l = "videoL"
    film_l = "filmL"
    audiobook_l = "audiobookL"
    newsletter_l = "newsletterL"
    blog_l = "blogL"
    publisher_l = "publisherL"
    course_l = "courseL"
    mixed = "mixed"


class Block(Strict):
    """``block: true`` hides the whole show; ``platforms`` blocks named services only."""

    all: bool = False
    platforms: list[Annotated[str, Field(pattern=r"^[a-z0-9_-]{1,32}$")]] = Field(
        default_factory=list
    )

    @field_validator("platforms")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return sorted(set(value))


class Image(Strict):
    """``podcast:image``: artwork in other shapes than Apple's square (banners, wide art)."""

    href: Url
    alt: Annotated[str, Field(max_length=512)] | None = None
    aspect_ratio: Annotated[str, Field(pattern=r"^\d+/\d+$")] | None = None
    width: Annotated[int, Field(ge=1)] | None = None
    height: Annotated[int, Field(ge=1)] | None = None
    type: Annotated[str, Field(pattern=r"^image/[a-z0-9.+-]+$")] | None = None
    purpose: Annotated[str, Field(max_length=128)] | None = None


class ContentLink(Strict):
    href: Url
    text: Annotated[str, Field(max_length=512)] = ""


class Source(Strict):
    uri: Annotated[str, Field(min_length=1, max_length=2048)]
    content_type: Annotated[str, Field(max_length=128)] | None = None


class Integrity(Strict):
    type: Literal["sri", "pgp-signature"]
    value: Annotated[str, Field(min_length=1, max_length=8192)]


class AlternateEnclosure(Strict):
    """Another rendition of an episode (video, lower bitrate, other language, torrent, IPFS…)."""

    type: Annotated[str, Field(min_length=1, max_length=128)]
    length: Annotated[int, Field(ge=0)] | None = None
    bitrate: Annotated[float, Field(gt=0)] | None = None
    height: Annotated[int, Field(ge=1)] | None = None
    lang: Annotated[str, Field(max_length=16)] | None = None
    title: Annotated[str, Field(max_length=32)] | None = None
    rel: Annotated[str, Field(max_length=32)] | None = None
    codecs: Annotated[str, Field(max_length=128)] | None = None
    default: bool = False
    sources: Annotated[list[Source], Field(min_length=1, max_length=10)]
    integrity: Integrity | None = None


class LiveValue(Strict):
    """``podcast:liveValue``: where apps follow the value splits announced during the show
    (e.g. a socket.io endpoint of a live-value service)."""

    uri: Annotated[str, Field(min_length=1, max_length=2048)]
    protocol: Annotated[str, Field(min_length=1, max_length=64)]


class Live(Strict):
    """A live stream of the episode: the feed carries it as ``podcast:liveItem``."""

    status: Literal["pending", "live", "ended"]
    start: AwareDatetime
    end: AwareDatetime | None = None
    value: LiveValue | None = None
