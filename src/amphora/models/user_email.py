"""Secondary email addresses of a user (the primary one lives on ``users.email``)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from amphora.kit.clock import utcnow
from amphora.kit.db import Base, IdMixin


class UserEmail(IdMixin, Base):
    __tablename__ = "user_emails"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(320), unique=True)
    verified_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
