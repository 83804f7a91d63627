"""Request and response bodies for episodes, their media, transcripts and chapters."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from amphora.account.schemas import Input
from amphora.show.podcast_types import (
    AlternateEnclosure,
    Chat,
    ContentLink,
    Funding,
    Image,
    License,
    Live,
    Location,
    Person,
    SocialInteract,
    Soundbite,
    Txt,
    Url,
    Value,
)
from amphora.show.schemas import ArtworkRead, Html, Text255, Title

EpisodeType = Literal["full", "trailer", "bonus"]
Status = Literal["draft", "scheduled", "published"]
Guid = Annotated[str, Field(min_length=1, max_length=2048)]


class EpisodeFields(Input):
    title: Title | None = None
    subtitle: Text255 | None = None
    description: Html | None = Field(None, description="Show notes; HTML is sanitised.")
    guid: Guid | None = Field(
        None, description="Generated once if not given; fixed once published."
    )
    episode_type: EpisodeType | None = None
    season: Annotated[int, Field(ge=1, le=100_000)] | None = None
    season_name: Annotated[str, Field(max_length=128)] | None = None
    number: Annotated[Decimal, Field(gt=0, max_digits=12, decimal_places=3)] | None = None
    number_display: Annotated[str, Field(max_length=32)] | None = None
    explicit: bool | None = None
    link: Url | None = None
    publish_at: AwareDatetime | None = Field(
        None, description="null: draft; in the future: scheduled; past: published."
    )
    series_id: uuid.UUID | None = None
    persons: Annotated[list[Person], Field(max_length=50)] | None = None
    locations: Annotated[list[Location], Field(max_length=10)] | None = None
    funding: Annotated[list[Funding], Field(max_length=20)] | None = None
    soundbites: Annotated[list[Soundbite], Field(max_length=20)] | None = None
    license: License | None = None
    block: bool | None = None
    value: Value | None = None
    social_interact: Annotated[list[SocialInteract], Field(max_length=10)] | None = None
    chat: Chat | None = None
    premium: bool | None = Field(None, description="Only in subscriber feeds.")
    alternate_enclosures: Annotated[list[AlternateEnclosure], Field(max_length=20)] | None = None
    content_links: Annotated[list[ContentLink], Field(max_length=10)] | None = None
    txt: Annotated[list[Txt], Field(max_length=20)] | None = None
    images: Annotated[list[Image], Field(max_length=10)] | None = None
    live: Live | None = Field(None, description="A live stream: the feed lists a liveItem.")


class EpisodeCreate(EpisodeFields):
    title: Title

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "title": "The Keeper's Log",
                    "description": "<p>We open the logbook of 1891.</p>",
                    "season": 1,
                    "number": 3,
                    "episode_type": "full",
                    "publish_at": "2026-12-01T06:00:00Z",
                    "persons": [{"name": "Ada Lovelace", "role": "host"}],
                    "soundbites": [{"start_time": 73.0, "duration": 45.0, "title": "The storm"}],
                }
            ]
        }
    )


class EpisodeUpdate(EpisodeFields):
    pass


class MediaRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: str
    content_type: str
    extension: str
    size: int
    sha256: str
    duration_s: float
    bitrate: int
    id3_size: int
    channels: int | None
    sample_rate: int | None
    original_filename: str | None
    created_at: datetime


class TranscriptRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    content_type: str
    language: str | None
    captions: bool
    size: int
    created_at: datetime


class EpisodeRead(BaseModel):
    id: uuid.UUID
    show_id: uuid.UUID
    guid: str
    status: Status
    title: str
    subtitle: str | None
    description: str
    episode_type: str
    season: int | None
    season_name: str | None
    number: Decimal | None
    number_display: str | None
    explicit: bool | None
    link: str | None
    publish_at: datetime | None
    series_id: uuid.UUID | None
    persons: list[dict[str, Any]]
    locations: list[dict[str, Any]]
    funding: list[dict[str, Any]]
    soundbites: list[dict[str, Any]]
    license: dict[str, Any] | None
    block: bool
    value: dict[str, Any] | None
    social_interact: list[dict[str, Any]]
    chat: dict[str, Any] | None
    premium: bool
    alternate_enclosures: list[dict[str, Any]]
    content_links: list[dict[str, Any]]
    txt: list[dict[str, Any]]
    images: list[dict[str, Any]]
    live: dict[str, Any] | None
    has_chapters: bool
    media: MediaRead | None
    artwork: ArtworkRead | None
    transcripts: list[TranscriptRead]
    version: int
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    purge_after: datetime | None


class NextNumber(BaseModel):
    season: int | None
    next_number: int
