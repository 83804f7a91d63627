"""The raw, append-only log of requests for published files (enclosures first of all).

Audience figures are computed from these rows (STANDARDS.md §5), so a row keeps what the IAB
rules need and nothing that identifies a person: the client address only as a salted hash.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from amphora.kit.db import Base


class Hit(Base):
    __tablename__ = "hits"
    __table_args__ = (
        Index("ix_hits_episode_at", "episode_id", "at"),
        # Imported log lines: the same line imported twice is one hit.
        Index("ix_hits_dedupe_key", "dedupe_key", unique=True),
    )

    # A sequence, not a UUID: processing reads "every hit after the last one it saw".
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    at: Mapped[datetime] = mapped_column(index=True)
    source: Mapped[str] = mapped_column(String(16), default="delivery")
    show_id: Mapped[uuid.UUID | None]
    episode_id: Mapped[uuid.UUID | None]
    media_id: Mapped[uuid.UUID | None]
    subscriber_id: Mapped[uuid.UUID | None]
    method: Mapped[str] = mapped_column(String(8))
    status: Mapped[int] = mapped_column(SmallInteger)
    range: Mapped[str | None] = mapped_column(String(64))
    bytes_sent: Mapped[int | None] = mapped_column(BigInteger)
    client_hash: Mapped[str] = mapped_column(String(32))
    user_agent: Mapped[str | None] = mapped_column(String(1024))
    referer: Mapped[str | None] = mapped_column(String(2048))
    session_id: Mapped[str | None] = mapped_column(String(64))
    # Resolved from the address when the hit is recorded (the address itself is not kept).
    country: Mapped[str | None] = mapped_column(String(2))
    region: Mapped[str | None] = mapped_column(String(8))
    dedupe_key: Mapped[str | None] = mapped_column(String(32))
