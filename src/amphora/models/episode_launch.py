"""Downloads of an episode in its first 1, 7 and 30 days since release (UTC days, the release
day being day 1): what a show's summary averages, kept by processing."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Mapped, mapped_column

from amphora.kit.db import Base


class EpisodeLaunch(Base):
    __tablename__ = "episode_launches"

    episode_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    show_id: Mapped[uuid.UUID] = mapped_column(index=True)
    day_1: Mapped[int]
    day_7: Mapped[int]
    day_30: Mapped[int]
