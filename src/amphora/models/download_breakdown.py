"""Daily downloads of a show by one dimension: app, device, os, referrer, country, region,
hour (of day, UTC) or subscriber (premium feeds)."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import Date, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from amphora.kit.db import Base


class DownloadBreakdown(Base):
    __tablename__ = "download_breakdowns"
    # Across shows (superusers' views): one dimension over a period.
    __table_args__ = (Index("ix_download_breakdowns_dimension_day", "dimension", "day"),)

    show_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    dimension: Mapped[str] = mapped_column(String(16), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    value: Mapped[str] = mapped_column(String(128), primary_key=True)  # "" for unknown
    downloads: Mapped[int]
