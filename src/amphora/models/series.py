"""A named series inside a show (each episode belongs to at most one)."""

from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from amphora.kit.db import Base, IdMixin, TimestampMixin


class Series(IdMixin, TimestampMixin, Base):
    __tablename__ = "series"
    __table_args__ = (UniqueConstraint("show_id", "name", name="uq_series_show_name"),)

    show_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("shows.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(Text, default="")
    position: Mapped[int] = mapped_column(default=0)
