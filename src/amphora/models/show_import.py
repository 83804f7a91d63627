"""An import of a show from another host's feed (or from an Amphora export archive).

One row per import; its items and files are tracked in ``import_items`` and ``import_files``
(modules of their own), so that a re-run or a worker that died half-way continues where it
stopped and never duplicates anything.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from amphora.kit.db import Base, IdMixin, TimestampMixin


class ImportStatus(StrEnum):
    queued = "queued"
    fetching = "fetching"
    parsing = "parsing"
    verifying = "verifying"  # podcast:locked: waiting for the code mailed to the feed's owner
    mirroring = "mirroring"
    done = "done"
    failed = "failed"
    cancelled = "cancelled"


# The states in which a job is (or should be) working on an import.
ACTIVE_STATUSES = (
    ImportStatus.queued,
    ImportStatus.fetching,
    ImportStatus.parsing,
    ImportStatus.mirroring,
)


class ShowImport(IdMixin, TimestampMixin, Base):
    __tablename__ = "imports"
    __table_args__ = (Index("ix_imports_status_updated", "status", "updated_at"),)

    owner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    show_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("shows.id", ondelete="SET NULL"), index=True
    )
    # The feed URL as given; None for an uploaded archive.
    feed_url: Mapped[str | None] = mapped_column(String(2048))
    # An uploaded export archive, staged in the data dir until the import is over.
    archive_path: Mapped[str | None] = mapped_column(String(1024))
    mirror_media: Mapped[bool] = mapped_column(default=True)
    keep_in_sync: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(16), default=ImportStatus.queued)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    problems: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    items_total: Mapped[int] = mapped_column(default=0)
    items_done: Mapped[int] = mapped_column(default=0)
    files_total: Mapped[int] = mapped_column(default=0)
    files_done: Mapped[int] = mapped_column(default=0)
    bytes_total: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_done: Mapped[int] = mapped_column(BigInteger, default=0)
    # podcast:locked: the address the code went to, and its hash (never the code itself).
    verify_email: Mapped[str | None] = mapped_column(String(320))
    verify_code_hash: Mapped[str | None] = mapped_column(String(64))
    verify_expires_at: Mapped[datetime | None]
    verify_attempts: Mapped[int] = mapped_column(default=0)
    verified_at: Mapped[datetime | None]
    # What the old host last answered (conditional re-reads when keeping in sync).
    feed_etag: Mapped[str | None] = mapped_column(String(256))
    feed_last_modified: Mapped[str | None] = mapped_column(String(64))
    feed_sha256: Mapped[str | None] = mapped_column(String(64))
    # Set when this import created the show (a failed first import then removes it again).
    created_show: Mapped[bool] = mapped_column(default=False)
    last_synced_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
