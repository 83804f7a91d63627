"""An episode: an item of a show's feed, with everything Apple and Podcasting 2.0 define."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Numeric, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from amphora.kit.db import Base, IdMixin, OptionalJSON, TimestampMixin


class Episode(IdMixin, TimestampMixin, Base):
    __tablename__ = "episodes"
    __table_args__ = (
        UniqueConstraint("show_id", "guid", name="uq_episodes_show_guid"),
        Index("ix_episodes_show_publish", "show_id", "deleted_at", "publish_at"),
        # The episode list's default order (newest first; PostgreSQL puts drafts first too).
        Index(
            "ix_episodes_show_listing",
            "show_id",
            text("publish_at DESC"),
            text("id DESC"),
            postgresql_where=text("deleted_at IS NULL"),
            sqlite_where=text("deleted_at IS NULL"),
        ),
    )

    show_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shows.id", ondelete="CASCADE"))
    guid: Mapped[str] = mapped_column(String(2048))
    title: Mapped[str] = mapped_column(String(255))
    subtitle: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    episode_type: Mapped[str] = mapped_column(String(8), default="full")
    season: Mapped[int | None]
    season_name: Mapped[str | None] = mapped_column(String(128))
    number: Mapped[Decimal | None] = mapped_column(Numeric(12, 3))
    number_display: Mapped[str | None] = mapped_column(String(32))
    explicit: Mapped[bool | None]  # None: as the show
    link: Mapped[str | None] = mapped_column(String(2048))
    publish_at: Mapped[datetime | None]  # None: draft; future: scheduled
    series_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("series.id", ondelete="SET NULL"), index=True
    )
    persons: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    locations: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    funding: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    soundbites: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    license: Mapped[dict[str, Any] | None] = mapped_column(OptionalJSON)
    block: Mapped[bool] = mapped_column(default=False)
    value: Mapped[dict[str, Any] | None] = mapped_column(OptionalJSON)
    social_interact: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    chat: Mapped[dict[str, Any] | None] = mapped_column(OptionalJSON)
    premium: Mapped[bool] = mapped_column(default=False)
    chapters: Mapped[dict[str, Any] | None] = mapped_column(OptionalJSON)
    alternate_enclosures: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    content_links: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    txt: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    images: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # A live stream ({"status", "start", "end"}): the feed carries it as a podcast:liveItem.
    live: Mapped[dict[str, Any] | None] = mapped_column(OptionalJSON)
    # Imported without mirroring: the old host's enclosure, kept as published
    # ({"url", "length", "type", "duration_s"}); a media file of our own takes precedence.
    remote_media: Mapped[dict[str, Any] | None] = mapped_column(OptionalJSON)
    media_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("media_files.id", use_alter=True, ondelete="SET NULL")
    )
    artwork_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("artworks.id", use_alter=True, ondelete="SET NULL")
    )
    version: Mapped[int] = mapped_column(default=1)
    deleted_at: Mapped[datetime | None]
    purge_after: Mapped[datetime | None]
    # When the feed's subscribers were told about this episode (pings); None: not yet.
    announced_at: Mapped[datetime | None] = mapped_column(index=True)
    # Deleted together with its show (so restoring the show brings it back).
    deleted_with_show: Mapped[bool] = mapped_column(default=False)
