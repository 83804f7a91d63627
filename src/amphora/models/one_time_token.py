"""Single-use secrets sent by mail: email verification and password reset links."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from amphora.kit.clock import utcnow
from amphora.kit.db import Base, IdMixin


class TokenPurpose(StrEnum):
    verify_email = "verify_email"  # the primary address given at sign-up
    change_email = "change_email"  # a new primary address
    verify_secondary = "verify_secondary"  # an additional address
    reset_password = "reset_password"  # noqa: S105 (a purpose name, not a secret)


class OneTimeToken(IdMixin, Base):
    __tablename__ = "one_time_tokens"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    purpose: Mapped[str] = mapped_column(String(32))
    email: Mapped[str] = mapped_column(String(320))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
