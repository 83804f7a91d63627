"""Every slug a feed was ever served under, so that old feed URLs keep working.

A renamed show keeps answering on its old slug with a 301; a purged show's slug answers 410
and is never handed out again (a directory that still polls it must not get someone else's show).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from amphora.kit.clock import utcnow
from amphora.kit.db import Base


class FeedSlug(Base):
    __tablename__ = "feed_slugs"

    slug: Mapped[str] = mapped_column(String(80), primary_key=True)
    # None once the show is purged: the slug is retired for good.
    show_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("shows.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    retired_at: Mapped[datetime | None]
