"""Counted downloads: one row per download that met the IAB rules (STANDARDS.md §5).

Rows are derived from the raw hit log by ``amphora.analytics.processing`` and can always be
derived again: reprocessing deletes the rows of the listeners and episodes it replays and
writes them anew. ``listener`` is a hash of the client hash and the User-Agent (the listener
key), never an address.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, Date, Index, Integer, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from amphora.kit.db import Base


class Download(Base):
    __tablename__ = "downloads"
    __table_args__ = (
        Index("ix_downloads_episode_listener_at", "episode_id", "listener", "at"),
        Index("ix_downloads_show_day", "show_id", "day"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    show_id: Mapped[uuid.UUID]
    episode_id: Mapped[uuid.UUID]
    listener: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime]  # when the threshold was reached
    day: Mapped[date] = mapped_column(Date)  # its UTC day
    hour: Mapped[int] = mapped_column(SmallInteger)  # its UTC hour
    app: Mapped[str | None] = mapped_column(String(128))
    device: Mapped[str | None] = mapped_column(String(64))
    os: Mapped[str | None] = mapped_column(String(64))
    referrer: Mapped[str | None] = mapped_column(String(128))
    country: Mapped[str | None] = mapped_column(String(2))
    region: Mapped[str | None] = mapped_column(String(8))
    subscriber_id: Mapped[uuid.UUID | None]
