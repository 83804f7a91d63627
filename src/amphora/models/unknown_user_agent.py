"""User-Agents that no OPAWG entry matched, with how often they were seen, so the operator can
report them upstream and the data set can grow."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from amphora.kit.db import Base


class UnknownUserAgent(Base):
    __tablename__ = "unknown_user_agents"

    key: Mapped[str] = mapped_column(String(32), primary_key=True)  # hash of the text
    user_agent: Mapped[str] = mapped_column(String(1024))
    hits: Mapped[int] = mapped_column(BigInteger)
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
