"""The listener keys with a counted download of a show on a UTC day: unique listeners of any
period are counted from these keys (never by adding up days)."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import Date, String
from sqlalchemy.orm import Mapped, mapped_column

from amphora.kit.db import Base


class ListenerDay(Base):
    __tablename__ = "listener_days"

    show_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    listener: Mapped[str] = mapped_column(String(32), primary_key=True)
