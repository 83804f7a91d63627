"""Unique listeners of a show per calendar day, ISO week (starting Monday) and month, counted
from ``listener_days`` whenever processing changes one of their days."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import Date, String
from sqlalchemy.orm import Mapped, mapped_column

from amphora.kit.db import Base


class ListenerCount(Base):
    __tablename__ = "listener_counts"

    show_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    period: Mapped[str] = mapped_column(String(8), primary_key=True)  # day, week, month
    start: Mapped[date] = mapped_column(Date, primary_key=True)
    listeners: Mapped[int]
