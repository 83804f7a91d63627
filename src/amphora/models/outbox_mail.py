"""Outgoing mail: queued here, delivered by a job; kept as the outbox when no SMTP is set up."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from amphora.kit.clock import utcnow
from amphora.kit.db import Base, IdMixin


class MailStatus(StrEnum):
    queued = "queued"
    sent = "sent"
    outbox = "outbox"  # no SMTP configured: readable with `amphora mail outbox`
    failed = "failed"


class OutboxMail(IdMixin, Base):
    __tablename__ = "outbox_mails"

    to_address: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(300))
    # Bodies carry one-shot links; they are blanked once the mail has been handed to SMTP.
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str] = mapped_column(Text)
    template: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=MailStatus.queued, index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
