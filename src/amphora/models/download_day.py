"""Daily downloads per episode (the rollup every downloads series is drawn from)."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import Date, Index
from sqlalchemy.orm import Mapped, mapped_column

from amphora.kit.db import Base


class DownloadDay(Base):
    __tablename__ = "download_days"
    __table_args__ = (Index("ix_download_days_show_day", "show_id", "day"),)

    episode_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    show_id: Mapped[uuid.UUID]
    downloads: Mapped[int]
