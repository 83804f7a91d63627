"""Monthly downloads per episode: long periods (a year of top episodes) are added up from
months, with days only at their ragged ends."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import Date, Index
from sqlalchemy.orm import Mapped, mapped_column

from amphora.kit.db import Base


class DownloadMonth(Base):
    __tablename__ = "download_months"
    __table_args__ = (Index("ix_download_months_show_month", "show_id", "month"),)

    episode_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    month: Mapped[date] = mapped_column(Date, primary_key=True)  # its first day
    show_id: Mapped[uuid.UUID]
    downloads: Mapped[int]
