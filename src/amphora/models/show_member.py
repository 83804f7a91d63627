"""Who may do what with a show: admin, editor or viewer (the owner is an admin)."""

from __future__ import annotations

import uuid
from enum import StrEnum

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from amphora.kit.db import Base, IdMixin, TimestampMixin


class Role(StrEnum):
    viewer = "viewer"
    editor = "editor"
    admin = "admin"

    @property
    def rank(self) -> int:
        return ("viewer", "editor", "admin").index(self.value)


class ShowMember(IdMixin, TimestampMixin, Base):
    __tablename__ = "show_members"
    __table_args__ = (UniqueConstraint("show_id", "user_id", name="uq_show_members_show_user"),)

    show_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("shows.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(16))
