"""Export jobs: build one show's export zip, and remove zips past the retention period.

Both are idempotent (see :mod:`amphora.feed_import.export`): building a done export does
nothing, building any other one starts from scratch; expiring checks again that the export is
done and old before deleting anything.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import anyio.to_thread

from amphora.feed_import import export as service
from amphora.kit.jobs import crontab, job, periodic

# A temporary zip untouched for this long belongs to a worker that died mid-export.
ABANDONED_AFTER = timedelta(days=1)


@job(retries=2, retry_delay=60)
async def export_show(ctx: Any, export_id: str) -> None:
    """Build the zip of one export (retried only for failures a retry may cure)."""
    await service.build_export(ctx, export_id=uuid.UUID(export_id))


@periodic(crontab(minute="23"))
async def expire_exports(ctx: Any) -> None:
    """Hourly: fan out one job per finished export older than AMPHORA_EXPORT_RETENTION_DAYS,
    and sweep temporary zips left behind by dead workers."""
    days = ctx.settings.export_retention_days
    async with ctx.db.session() as session:
        for export_id in await service.expired_exports(session, retention_days=days):
            expire_export.defer(session, str(export_id))
    directory = ctx.settings.resolved_data_dir / service.TEMP_DIR
    await anyio.to_thread.run_sync(
        lambda: service.remove_abandoned_temp_files(directory, older_than=ABANDONED_AFTER)
    )


@job(retries=5, retry_delay=30)
async def expire_export(ctx: Any, export_id: str) -> None:
    await service.expire_export(
        ctx, export_id=uuid.UUID(export_id), retention_days=ctx.settings.export_retention_days
    )
