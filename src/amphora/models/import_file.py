"""A file an import brings over (see ``show_import``)."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from amphora.kit.db import Base, IdMixin


class FileKind(StrEnum):
    media = "media"
    artwork = "artwork"  # an episode's itunes:image
    show_artwork = "show_artwork"
    transcript = "transcript"
    chapters = "chapters"


class FileState(StrEnum):
    pending = "pending"
    done = "done"
    failed = "failed"


class ImportFile(IdMixin, Base):
    """A file to bring over: media, artwork, a transcript or chapters."""

    __tablename__ = "import_files"
    __table_args__ = (
        UniqueConstraint("import_id", "key", name="uq_import_files_key"),
        Index("ix_import_files_state", "import_id", "state"),
    )

    import_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("imports.id", ondelete="CASCADE"))
    item_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("import_items.id", ondelete="CASCADE"), index=True
    )
    # Unique per import: what the file is for and where it comes from (a hash of both).
    key: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    url: Mapped[str] = mapped_column(String(2048))
    declared_type: Mapped[str | None] = mapped_column(String(128))
    declared_length: Mapped[int | None] = mapped_column(BigInteger)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(8), default=FileState.pending)
    size: Mapped[int | None] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text)
