"""Request and response bodies for shows, series and team members."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from amphora.account.schemas import Email, Input, Output
from amphora.show.podcast_types import (
    Block,
    Category,
    Chat,
    Funding,
    Image,
    License,
    Location,
    Medium,
    Person,
    RemoteItem,
    SocialInteract,
    Trailer,
    Txt,
    UpdateFrequency,
    Url,
    Value,
)

Slug = Annotated[str, Field(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,78}[a-z0-9])?$")]
Title = Annotated[str, Field(min_length=1, max_length=255)]
Text255 = Annotated[str, Field(max_length=255)]
Html = Annotated[str, Field(max_length=50_000)]
Language = Annotated[str, Field(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")]
ShowType = Literal["episodic", "serial"]
RoleName = Literal["admin", "editor", "viewer"]


class ShowFields(Input):
    """Every editable field of a show; all optional here (PATCH semantics)."""

    title: Title | None = None
    slug: Slug | None = None
    subtitle: Text255 | None = None
    description: Html | None = Field(None, description="HTML; sanitised to p, ol, ul, li, a, …")
    language: Language | None = None
    categories: Annotated[list[Category], Field(max_length=5)] | None = Field(
        None, description="Apple categories; the first one is the primary category."
    )
    explicit: bool | None = None
    show_type: ShowType | None = None
    author: Text255 | None = None
    owner_name: Text255 | None = None
    owner_email: EmailStr | None = None
    copyright: Text255 | None = None
    link: Url | None = None
    medium: Medium | None = None
    locked: bool | None = None
    complete: bool | None = None
    block: Block | None = None
    funding: Annotated[list[Funding], Field(max_length=20)] | None = None
    persons: Annotated[list[Person], Field(max_length=50)] | None = None
    locations: Annotated[list[Location], Field(max_length=10)] | None = None
    license: License | None = None
    podroll: Annotated[list[RemoteItem], Field(max_length=100)] | None = None
    update_frequency: UpdateFrequency | None = None
    trailers: Annotated[list[Trailer], Field(max_length=20)] | None = None
    value: Value | None = None
    txt: Annotated[list[Txt], Field(max_length=20)] | None = None
    social_interact: Annotated[list[SocialInteract], Field(max_length=10)] | None = None
    chat: Chat | None = None
    images: Annotated[list[Image], Field(max_length=10)] | None = None
    publisher: RemoteItem | None = Field(
        None, description="The publisher feed (podcast:publisher); medium is set to publisher."
    )
    new_feed_url: Url | None = Field(None, description="Set when the show moves away (301).")


class ShowCreate(ShowFields):
    title: Title

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "title": "The Lighthouse Hour",
                    "description": "<p>Stories from the coast.</p>",
                    "language": "en-us",
                    "categories": [
                        {"category": "History"},
                        {"category": "Arts", "subcategory": "Books"},
                    ],
                    "author": "Ada Lovelace",
                    "owner_email": "ada@example.com",
                    "persons": [{"name": "Ada Lovelace", "role": "host"}],
                    "funding": [
                        {"url": "https://example.com/support", "label": "Support the show"}
                    ],
                }
            ]
        }
    )


class ShowUpdate(ShowFields):
    pass


class ArtworkRead(BaseModel):
    id: uuid.UUID
    url: str
    width: int
    content_type: str
    variants: dict[str, str]


class ShowRead(Output):
    id: uuid.UUID
    slug: str
    owner_id: uuid.UUID
    role: RoleName
    title: str
    subtitle: str | None
    description: str
    language: str
    categories: list[dict[str, Any]]
    explicit: bool
    show_type: str
    author: str | None
    owner_name: str | None
    owner_email: str | None
    copyright: str | None
    link: str | None
    medium: str
    locked: bool
    complete: bool
    block: dict[str, Any]
    funding: list[dict[str, Any]]
    persons: list[dict[str, Any]]
    locations: list[dict[str, Any]]
    license: dict[str, Any] | None
    podroll: list[dict[str, Any]]
    update_frequency: dict[str, Any] | None
    trailers: list[dict[str, Any]]
    value: dict[str, Any] | None
    txt: list[dict[str, Any]]
    social_interact: list[dict[str, Any]]
    chat: dict[str, Any] | None
    images: list[dict[str, Any]]
    publisher: dict[str, Any] | None
    podcast_guid: str | None
    new_feed_url: str | None
    artwork: ArtworkRead | None
    version: int
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    purge_after: datetime | None


class SeriesCreate(Input):
    name: Annotated[str, Field(min_length=1, max_length=128)]
    description: Annotated[str, Field(max_length=4000)] = ""
    position: int = 0


class SeriesUpdate(Input):
    name: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    description: Annotated[str, Field(max_length=4000)] | None = None
    position: int | None = None


class SeriesRead(Output):
    id: uuid.UUID
    show_id: uuid.UUID
    name: str
    description: str
    position: int


class MemberCreate(Input):
    email: Email
    role: RoleName


class MemberUpdate(Input):
    role: RoleName


class MemberRead(BaseModel):
    user_id: uuid.UUID
    email: str
    display_name: str
    role: RoleName
    is_owner: bool
