"""One attempt to tell an aggregator that a show's feed changed (WebSub, Podcast Index, podping)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from amphora.kit.clock import utcnow
from amphora.kit.db import Base, IdMixin


class PingAttempt(IdMixin, Base):
    __tablename__ = "ping_attempts"

    show_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("shows.id", ondelete="CASCADE"), index=True
    )
    target: Mapped[str] = mapped_column(String(16))  # websub | podcastindex | podping
    endpoint: Mapped[str] = mapped_column(String(2048))
    feed_url: Mapped[str] = mapped_column(String(2048))
    reason: Mapped[str] = mapped_column(String(16), default="update")
    attempt: Mapped[int] = mapped_column(SmallInteger, default=1)
    status_code: Mapped[int | None] = mapped_column(SmallInteger)
    ok: Mapped[bool] = mapped_column(default=False)
    error: Mapped[str | None] = mapped_column(String(512))
    at: Mapped[datetime] = mapped_column(default=utcnow)
