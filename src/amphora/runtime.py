"""The shared resources of one process side (web app or job runner), built from the settings."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import amphora.feed.changes  # noqa: F401  (feed changes are noticed on every flush)
from amphora.kit.cache import CACHE_KEY, Cache
from amphora.kit.db import Database
from amphora.kit.jobs import Jobs
from amphora.kit.ratelimit import RateLimiter
from amphora.kit.storage import S3Options, Storage, create_storage
from amphora.settings import Settings

# Every module that declares jobs: imported before a Huey instance is built, so that producers
# and consumers know the same tasks whatever else a process happened to import.
JOB_MODULES = (
    "amphora.kit.mail",
    "amphora.account.tasks",
    "amphora.media.router",
    "amphora.show.tasks",
    "amphora.feed.pings",
    "amphora.feed.tasks",
    "amphora.feed_import.tasks",
    "amphora.feed_import.export_tasks",
    "amphora.analytics.tasks",
)


def make_jobs(settings: Settings) -> Jobs:
    for module in JOB_MODULES:
        importlib.import_module(module)
    return Jobs(settings)


@dataclass
class Runtime:
    settings: Settings
    db: Database
    storage: Storage
    jobs: Jobs
    limiter: RateLimiter
    cache: Cache

    async def aclose(self) -> None:
        await self.cache.close()
        await self.storage.close()
        await self.db.dispose()


def build_storage(settings: Settings) -> Storage:
    secret = settings.s3_secret_access_key
    options = S3Options(
        endpoint_url=settings.s3_endpoint_url,
        region=settings.s3_region,
        access_key_id=settings.s3_access_key_id,
        secret_access_key=secret.get_secret_value() if secret else None,
        public_base_url=settings.public_media_base_url,
        allow_http=settings.s3_allow_http,
    )
    return create_storage(settings.storage_url, s3=options, data_dir=settings.resolved_data_dir)


def open_runtime(settings: Settings, jobs: Jobs) -> Runtime:
    """Build (but do not yet use) every resource; connections open lazily on first use."""
    cache = build_cache(settings)
    return Runtime(
        settings=settings,
        db=Database(
            settings.resolved_database_url,
            session_info={**jobs.session_info(), CACHE_KEY: cache},
        ),
        storage=build_storage(settings),
        jobs=jobs,
        limiter=RateLimiter(settings.redis_url),
        cache=cache,
    )


def build_cache(settings: Settings) -> Cache:
    # One cache per database and public address: rendered bytes embed the base URL.
    return Cache(
        namespace=f"{settings.resolved_database_url}|{settings.base_url}",
        redis_url=settings.redis_url,
        max_local_bytes=settings.cache_max_bytes,
    )
