"""Periodic audience jobs: counting new hits, and forgetting raw data past its retention."""

from __future__ import annotations

import logging
from typing import Any

from amphora.analytics import service
from amphora.analytics.errors import UserAgentsMissing
from amphora.kit.clock import utcnow
from amphora.kit.jobs import crontab, periodic

logger = logging.getLogger("amphora.analytics")


@periodic(crontab(minute="*"))
async def process_hits(ctx: Any) -> None:
    """Every AMPHORA_ANALYTICS_INTERVAL_MINUTES: count the hits recorded or imported since."""
    if utcnow().minute % ctx.settings.analytics_interval_minutes:
        return
    try:
        report = await service.process(ctx.db, ctx.cache, ctx.settings, wait=False)
    except UserAgentsMissing as exc:
        logger.warning("audience figures wait: %s", exc.message)
        return
    if report is not None and (report.downloads_added or report.downloads_removed):
        logger.info(
            "counted %d downloads (%d replaced) from %d hits, %d shows",
            report.downloads_added,
            report.downloads_removed,
            report.hits,
            len(report.shows),
        )


@periodic(crontab(minute="47", hour="*"))
async def purge_raw_hits(ctx: Any) -> None:
    """Hourly: raw hits and listening events older than AMPHORA_HIT_RETENTION_DAYS go."""
    removed = await service.purge_old(ctx.db, ctx.settings)
    if removed:
        logger.info("removed %d raw rows past the retention", removed)
