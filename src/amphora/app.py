"""create_app(settings) -> FastAPI: routers, health and metrics, back office, lifespan."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

import amphora
from amphora.account.router import admin_router, auth_router, users_router
from amphora.analytics.listening_router import public_router as listening_public_router
from amphora.analytics.listening_router import router as listening_router
from amphora.analytics.logs_router import router as logs_router
from amphora.analytics.router import admin_router as analytics_admin_router
from amphora.analytics.router import router as analytics_router
from amphora.delivery.hits import recorder_for
from amphora.delivery.router import router as delivery_router
from amphora.episode.router import router as episode_router
from amphora.feed.api import router as feed_api_router
from amphora.feed.router import FeedFastPath
from amphora.feed.router import router as feed_router
from amphora.feed_import.export_router import router as export_router
from amphora.feed_import.router import router as import_router
from amphora.kit.asgi import RequestMiddleware
from amphora.kit.errors import install_error_handlers
from amphora.kit.jobs import Jobs
from amphora.media.router import router as upload_router
from amphora.runtime import Runtime, make_jobs, open_runtime
from amphora.settings import Settings
from amphora.show.browse import router as browse_router
from amphora.show.router import router as show_router
from amphora.web.admin import mount_admin
from amphora.web.pages import router as pages_router

logger = logging.getLogger("amphora.app")

API_PREFIX = "/api/v1"
# Routes that stream large bodies themselves (uploads) are exempt from the JSON body cap.
UNLIMITED_BODY_PATHS: tuple[str, ...] = (
    r"^/api/v1/(shows|episodes)/[^/]+/artwork$",
    r"^/api/v1/episodes/[^/]+/(audio|transcripts)$",
    r"^/api/v1/uploads/[^/]+$",
    r"^/api/v1/imports$",  # an export zip as the body (JSON bodies are capped by the route)
    r"^/api/v1/shows/[^/]+/analytics/logs$",  # access logs (the route caps them)
)


def create_app(
    settings: Settings, *, run_jobs: bool | None = None, jobs: Jobs | None = None
) -> FastAPI:
    """``run_jobs`` defaults to the embedded mode: the job consumer runs inside this process."""
    jobs = jobs or make_jobs(settings)
    consume = settings.embedded_jobs if run_jobs is None else run_jobs
    runtime = open_runtime(settings, jobs)
    hits = recorder_for(settings, runtime.db)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if consume:

            async def job_context() -> Runtime:
                return open_runtime(settings, jobs)

            await anyio.to_thread.run_sync(
                lambda: jobs.start_consumer(job_context, workers=settings.job_workers)
            )
        await runtime.cache.start_listener()
        await hits.start()
        release_startup_memory()
        try:
            yield
        finally:
            await hits.stop()  # writes every hit still waiting, while the database is open
            if consume:
                await anyio.to_thread.run_sync(jobs.stop_consumer)
            await runtime.aclose()

    app = FastAPI(
        title="Amphora",
        version=amphora.__version__,
        summary="Self-hostable podcast hosting hub.",
        description=(
            "Private routes take `Authorization: Bearer <token>` (a login session from "
            "`POST /api/v1/auth/login`, or a personal API token). Errors always have the shape "
            '`{"error": {"code", "message", "details", "request_id"}}`.'
        ),
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.state.settings = settings
    app.state.hits = hits
    install_error_handlers(app)
    # Added first, so it runs inside RequestMiddleware (request ids, metrics, access log).
    app.add_middleware(FeedFastPath, runtime=runtime)
    app.add_middleware(
        RequestMiddleware,
        max_body_bytes=settings.max_json_body_bytes,
        unlimited_paths=UNLIMITED_BODY_PATHS,
    )

    api = APIRouter(prefix=API_PREFIX)
    for router in (
        auth_router,
        users_router,
        admin_router,
        show_router,
        episode_router,
        upload_router,
        browse_router,
        feed_api_router,
        import_router,
        export_router,
        analytics_router,
        analytics_admin_router,
        logs_router,
        listening_public_router,
        listening_router,
    ):
        api.include_router(router)
    # Public file and feed routes first: they take most of the traffic, and routes are matched
    # in order.
    app.include_router(delivery_router)
    app.include_router(feed_router)
    app.include_router(api)
    app.include_router(_ops_router(runtime))
    app.include_router(pages_router)
    mount_admin(app, runtime)
    return app


def release_startup_memory() -> None:
    """Imports and schema building leave much garbage; hand the freed pages back to the OS so
    an idle server's memory is what it really uses (glibc keeps them otherwise)."""
    gc.collect()
    # What is alive now lives as long as the process: keep it out of every later collection,
    # so a full collection during a big feed render scans only what the render allocated.
    gc.freeze()
    # Rendering a big feed allocates hundreds of thousands of short-lived objects; with the
    # default threshold (700) that means hundreds of young collections per render.
    gc.set_threshold(20_000, 20, 20)
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _ops_router(runtime: Runtime) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz() -> JSONResponse:
        """Database, job storage and object storage all answer."""
        checks: dict[str, str] = {}

        async def probe(name: str, call: object) -> None:
            try:
                with anyio.fail_after(5):
                    await call  # type: ignore[misc]
                checks[name] = "ok"
            except Exception as exc:
                logger.warning("readiness check %s failed: %r", name, exc)
                checks[name] = f"error: {type(exc).__name__}"

        await probe("database", runtime.db.ping())
        await probe("jobs", anyio.to_thread.run_sync(runtime.jobs.ping))
        await probe("storage", runtime.storage.check())
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ok" if ready else "unavailable", "checks": checks},
            status_code=200 if ready else 503,
        )

    @router.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router
