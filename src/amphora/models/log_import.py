"""One access-log file imported for a show (CLI or API), with what became of its lines."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from amphora.kit.clock import utcnow
from amphora.kit.db import Base, IdMixin


class LogImport(IdMixin, Base):
    __tablename__ = "log_imports"

    show_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("shows.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    format: Mapped[str] = mapped_column(String(16))
    file_name: Mapped[str | None] = mapped_column(String(255))
    lines: Mapped[int] = mapped_column(default=0)
    imported: Mapped[int] = mapped_column(default=0)  # new hits
    duplicates: Mapped[int] = mapped_column(default=0)  # lines already imported before
    unmatched: Mapped[int] = mapped_column(default=0)  # no episode of the show
    malformed: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
