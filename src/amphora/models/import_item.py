"""One episode of an import's source, keyed on its guid (see ``show_import``)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from amphora.kit.db import Base, IdMixin


class ImportItem(IdMixin, Base):
    """One episode of the source, keyed on its guid within the import."""

    __tablename__ = "import_items"
    __table_args__ = (UniqueConstraint("import_id", "guid", name="uq_import_items_guid"),)

    import_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("imports.id", ondelete="CASCADE"))
    episode_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("episodes.id", ondelete="SET NULL"), index=True
    )
    guid: Mapped[str] = mapped_column(String(2048))
    # When the source published it: the episode gets it once its media is in place.
    publish_at: Mapped[datetime | None]
    published: Mapped[bool] = mapped_column(default=False)
    # sha256 of the item as parsed: an unchanged item is not written again on a re-read.
    digest: Mapped[str] = mapped_column(String(64))
