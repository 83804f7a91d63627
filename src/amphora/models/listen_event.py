"""Beacons from Amphora's own web player: play, pause, seek, progress and end, per random
listening session id (no address, no account)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from amphora.kit.db import Base


class ListenEvent(Base):
    __tablename__ = "listen_events"
    __table_args__ = (Index("ix_listen_events_episode_session", "episode_id", "session_id"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    show_id: Mapped[uuid.UUID] = mapped_column(index=True)
    episode_id: Mapped[uuid.UUID]
    session_id: Mapped[str] = mapped_column(String(64))
    event: Mapped[str] = mapped_column(String(16))
    position: Mapped[float] = mapped_column(Float)  # seconds into the episode
    from_position: Mapped[float | None] = mapped_column(Float)  # seeks: where from
    at: Mapped[datetime]
