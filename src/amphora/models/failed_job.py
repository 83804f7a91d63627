"""Jobs that used up their retries, kept so an operator can inspect and retry them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from amphora.kit.clock import utcnow
from amphora.kit.db import Base, IdMixin


class FailedJob(IdMixin, Base):
    __tablename__ = "failed_jobs"

    task_name: Mapped[str] = mapped_column(String(200))
    task_id: Mapped[str] = mapped_column(String(64))
    args: Mapped[list[object]] = mapped_column(JSON, default=list)
    error: Mapped[str] = mapped_column(Text)
    failed_at: Mapped[datetime] = mapped_column(default=utcnow)
    retried_at: Mapped[datetime | None]
