"""A podcast: everything Apple and the Podcasting 2.0 namespace say about a channel."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from amphora.kit.db import Base, IdMixin, OptionalJSON, TimestampMixin


class Show(IdMixin, TimestampMixin, Base):
    __tablename__ = "shows"

    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    title: Mapped[str] = mapped_column(String(255))
    subtitle: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    language: Mapped[str] = mapped_column(String(16), default="en")
    categories: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    explicit: Mapped[bool] = mapped_column(default=False)
    show_type: Mapped[str] = mapped_column(String(16), default="episodic")
    author: Mapped[str | None] = mapped_column(String(255))
    owner_name: Mapped[str | None] = mapped_column(String(255))
    owner_email: Mapped[str | None] = mapped_column(String(320))
    copyright: Mapped[str | None] = mapped_column(String(255))
    link: Mapped[str | None] = mapped_column(String(2048))
    medium: Mapped[str] = mapped_column(String(16), default="podcast")
    locked: Mapped[bool] = mapped_column(default=True)
    complete: Mapped[bool] = mapped_column(default=False)
    block: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    funding: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    persons: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    locations: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    license: Mapped[dict[str, Any] | None] = mapped_column(OptionalJSON)
    podroll: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    update_frequency: Mapped[dict[str, Any] | None] = mapped_column(OptionalJSON)
    trailers: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    value: Mapped[dict[str, Any] | None] = mapped_column(OptionalJSON)
    txt: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    social_interact: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    chat: Mapped[dict[str, Any] | None] = mapped_column(OptionalJSON)
    images: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    publisher: Mapped[dict[str, Any] | None] = mapped_column(OptionalJSON)
    # Assigned once (from the canonical feed URL, or kept from an import); never recomputed.
    podcast_guid: Mapped[str | None] = mapped_column(String(64))
    new_feed_url: Mapped[str | None] = mapped_column(String(2048))
    artwork_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("artworks.id", use_alter=True, ondelete="SET NULL")
    )
    # Bumped on every change: the ETag for If-Match, and the feed cache key.
    version: Mapped[int] = mapped_column(default=1)
    # The ETag of the public feed when aggregators were last told about it (pings).
    announced_etag: Mapped[str | None] = mapped_column(String(64))
    deleted_at: Mapped[datetime | None] = mapped_column(index=True)
    purge_after: Mapped[datetime | None]
