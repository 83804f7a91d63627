"""HTTP routes for show exports: request one, follow it, download the zip (show admins only)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field

from amphora.account.deps import CurrentAuth
from amphora.delivery.files import ServedResponse
from amphora.deps import RuntimeDep, SessionDep
from amphora.feed_import import export as service
from amphora.kit.openapi import errors, get_and_head
from amphora.models import ShowExport
from amphora.show.deps import ShowAdmin

router = APIRouter(tags=["exports"])

EXAMPLE_SHOW = "0190f3b4-7c2a-7d4e-9a51-3f6b2e8c1d00"
EXAMPLE_EXPORT = "0190f3c1-15aa-7b0e-8c3d-5a9e4f2b6c11"


class ExportRead(BaseModel):
    id: uuid.UUID
    show_id: uuid.UUID
    status: Literal["queued", "running", "done", "failed", "expired"] = Field(
        description="`expired`: the zip was deleted after the retention period."
    )
    size: int | None = Field(description="Bytes of the zip, once done.")
    files: int = Field(description="Files in the zip, manifest.json and feed.xml included.")
    error: str | None = Field(description="Why the export failed.")
    created_at: datetime
    finished_at: datetime | None
    download_url: str | None = Field(description="Where to download the zip; null until done.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": EXAMPLE_EXPORT,
                    "show_id": EXAMPLE_SHOW,
                    "status": "done",
                    "size": 48213377,
                    "files": 27,
                    "error": None,
                    "created_at": "2026-12-04T13:20:00Z",
                    "finished_at": "2026-12-04T13:21:42Z",
                    "download_url": "https://podcasts.example.com/api/v1/shows/"
                    f"{EXAMPLE_SHOW}/exports/{EXAMPLE_EXPORT}/download",
                }
            ]
        }
    )


def _read(request: Request, runtime: RuntimeDep, export: ShowExport) -> ExportRead:
    download_url = None
    if export.status == service.ExportStatus.done:
        path = request.app.url_path_for(
            "download_export", show_id=str(export.show_id), export_id=str(export.id)
        )
        download_url = f"{runtime.settings.base_url}{path}"
    return ExportRead(
        id=export.id,
        show_id=export.show_id,
        status=export.status,
        size=export.size,
        files=export.files,
        error=export.error,
        created_at=export.created_at,
        finished_at=export.finished_at,
        download_url=download_url,
    )


@router.post(
    "/shows/{show_id}/export",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ExportRead,
    responses=errors(401, 403, 404),
)
async def request_export(
    access: ShowAdmin,
    auth: CurrentAuth,
    session: SessionDep,
    runtime: RuntimeDep,
    request: Request,
) -> ExportRead:
    """Export everything: a zip with the feed, every episode's media, artwork, transcripts
    and chapters, and a manifest (subscribers are left out: they are other people's data).
    Built in the background; while one is queued or running, that one is answered."""
    export = await service.request_export(session, show=access.show, user=auth.user)
    return _read(request, runtime, export)


@router.get(
    "/shows/{show_id}/exports", response_model=list[ExportRead], responses=errors(401, 403, 404)
)
async def list_exports(
    access: ShowAdmin,
    session: SessionDep,
    runtime: RuntimeDep,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> list[ExportRead]:
    """The show's exports, newest first."""
    rows = await service.list_exports(session, show=access.show, limit=limit)
    return [_read(request, runtime, row) for row in rows]


@router.get(
    "/shows/{show_id}/exports/{export_id}",
    response_model=ExportRead,
    responses=errors(401, 403, 404),
)
async def get_export(
    export_id: uuid.UUID,
    access: ShowAdmin,
    session: SessionDep,
    runtime: RuntimeDep,
    request: Request,
) -> ExportRead:
    export = await service.get_export(session, show=access.show, export_id=export_id)
    return _read(request, runtime, export)


@get_and_head(
    router,
    "/shows/{show_id}/exports/{export_id}/download",
    name="download_export",
    summary="Download an export",
    responses={
        200: {"content": {service.ZIP_CONTENT_TYPE: {}}, "description": "The zip."},
        206: {"description": "One byte range (resuming a download)."},
        302: {"description": "Redirect to object storage (a URL valid for a while)."},
        409: {"description": "Not done yet (`export_not_ready`)."},
        410: {"description": "Deleted after the retention period (`export_expired`)."},
        **errors(401, 403, 404),
    },
)
async def download_export(
    export_id: uuid.UUID,
    access: ShowAdmin,
    session: SessionDep,
    runtime: RuntimeDep,
    request: Request,
) -> ServedResponse:
    """The zip of a finished export, with HEAD and byte ranges; with object storage, a `302`
    to it."""
    export = await service.get_export(session, show=access.show, export_id=export_id)
    return await service.serve_export(
        runtime.storage,
        export,
        show=access.show,
        method=request.method,
        request_headers=request.headers,
        url_lifetime=runtime.settings.media_url_seconds,
    )
